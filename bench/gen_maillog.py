#!/usr/bin/env python3
"""Writes a realistic Postfix mail.log of N lines with a fixed seed:
sessions through smtpd (connect, TLS, queue file, disconnect counters),
cleanup/qmgr/smtp delivery lines, rejects, lost connections, timeouts,
improper pipelining, postscreen verdicts, anvil statistics and some other
programs' lines. Usage: gen_maillog.py LINES OUTPUT [SEED]"""
import random
import sys

MONTH = "Nov"


def main():
    total, path = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    seconds = 0
    written = 0
    queue_counter = 0x10000
    with open(path, "w") as out:
        def emit(program, pid, text):
            nonlocal written
            day, rest = divmod(seconds, 86400)
            out.write(f"{MONTH} {day % 28 + 1:2d} {rest // 3600:02d}:{rest // 60 % 60:02d}:"
                      f"{rest % 60:02d} mx1 {program}[{pid}]: {text}\n")
            written += 1

        while written < total:
            seconds += rng.choice((0, 0, 1, 1, 2))
            pid = rng.randint(1000, 30000)
            addr = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            name = rng.choice(("unknown", f"mail{rng.randint(1, 99)}.example{rng.randint(1, 500)}.net"))
            client = f"{name}[{addr}]:{rng.randint(1024, 65535)}"
            kind = rng.random()
            if kind < 0.05:
                emit("postfix/postscreen", 900, f"CONNECT from [{addr}]:{rng.randint(1024, 65535)} to [198.51.100.1]:25")
                emit("postfix/postscreen", 900, rng.choice((
                    f"PREGREET 11 after 0.1 from [{addr}]:4000: EHLO x\\r\\n",
                    f"PASS NEW [{addr}]:4000", f"DNSBL rank 3 for [{addr}]:4000",
                    f"HANGUP after 0.5 from [{addr}]:4000 in tests before SMTP handshake")))
                continue
            emit("postfix/smtpd", pid, f"connect from {client}")
            if rng.random() < 0.6:
                emit("postfix/smtpd", pid, f"Anonymous TLS connection established from {client}: "
                     "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")
            if kind < 0.15:
                emit("postfix/smtpd", pid, f"NOQUEUE: reject: RCPT from {client}: 554 5.7.1 "
                     f"<u{rng.randint(1, 999)}@example.org>: Recipient address rejected: Access "
                     f"denied; from=<s@x{rng.randint(1, 99)}.example> to=<u@example.org> "
                     f"proto=ESMTP helo=<h{rng.randint(1, 999)}.example>")
                emit("postfix/smtpd", pid, f"disconnect from {client} ehlo=1 mail=1 rcpt=0/1 "
                     "rset=1 quit=1 commands=4/5")
            elif kind < 0.20:
                emit("postfix/smtpd", pid, f"lost connection after {rng.choice(('RCPT', 'MAIL', 'DATA (31 bytes)', 'EHLO'))} from {client}")
                emit("postfix/smtpd", pid, f"disconnect from {client} ehlo=1 mail=1 rcpt=1 commands=3")
            elif kind < 0.22:
                emit("postfix/smtpd", pid, f"improper command pipelining after EHLO from {client}: MAIL FROM:<a@b>\\r\\n")
                emit("postfix/smtpd", pid, f"timeout after EHLO from {client}")
                emit("postfix/smtpd", pid, f"disconnect from {client} ehlo=1 commands=1")
            else:
                messages = rng.choice((1, 1, 1, 2, 3))
                for _ in range(messages):
                    queue_counter += rng.randint(1, 50)
                    qid = f"{queue_counter:010X}"
                    emit("postfix/smtpd", pid, f"{qid}: client={client}")
                    emit("postfix/cleanup", pid + 1, f"{qid}: message-id=<{rng.getrandbits(48):x}@{name}>")
                    emit("postfix/qmgr", 800, f"{qid}: from=<sender{rng.randint(1, 9999)}@example.com>, size={rng.randint(900, 90000)}, nrcpt=1 (queue active)")
                    emit("postfix/smtp", pid + 2, f"{qid}: to=<user{rng.randint(1, 9999)}@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=0.{rng.randint(1, 99)}, delays=0.01/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {rng.getrandbits(40):X})")
                    emit("postfix/qmgr", 800, f"{qid}: removed")
                rset = "" if messages == 1 else f" rset={messages - 1}"
                emit("postfix/smtpd", pid, f"disconnect from {client} ehlo=1 mail={messages} rcpt={messages} data={messages}{rset} quit=1 commands={3 * messages + 2 + (messages - 1)}")
            if rng.random() < 0.01:
                emit("postfix/anvil", 700, f"statistics: max connection rate 3/60s for (smtp:{addr}) at {MONTH} 1 00:00:00")
            if rng.random() < 0.02:
                emit("dovecot", 0, f"imap-login: Login: user=<u{rng.randint(1, 99)}>, method=PLAIN, rip={addr}")


if __name__ == "__main__":
    main()
