"""The SMTP sessions of BACKGROUND.md, driven by real clients through a
private Postfix. Each scenario plays its own client address (127.0.0.x),
so its sessions can be found in the database. Shared by the integration
tests and the live demo.
"""
import subprocess
import time

import harness
from smtp_client import SmtpClient


def intercepting_proxy(port, source, pause=2.0, helo="ws7.corp.example"):
    """Case 1: MAIL, RCPT, RSET, RSET, pause, MAIL, RCPT, DATA, QUIT."""
    c = SmtpClient(port, source)
    c.command(f"EHLO {helo}")
    replies = [c.command("MAIL FROM:<clerk@corp.example>")[0],
               c.command("RCPT TO:<boss@test.example>")[0],
               c.command("RSET")[0], c.command("RSET")[0]]
    time.sleep(pause)
    replies += [c.command("MAIL FROM:<clerk@corp.example>")[0],
                c.command("RCPT TO:<boss@test.example>")[0],
                c.message("Subject: report\nX-Mailer: Blat v3.2.24\n\nquarterly figures\n"),
                c.quit()]
    return replies


def verification_probe(port, source):
    """Case 3: MAIL FROM:<>, RCPT, RSET, QUIT, never DATA."""
    c = SmtpClient(port, source)
    c.command("EHLO verifier.example.net")
    return [c.command("MAIL FROM:<>")[0], c.command("RCPT TO:<someone@test.example>")[0],
            c.command("RSET")[0], c.quit()]


def empty_helo(port, source):
    """Case 2: `HELO` with no name (Postfix answers 501), then QUIT."""
    c = SmtpClient(port, source)
    return [c.command("HELO")[0], c.quit()]


def lost_after_rcpt(port, source):
    """Case 5: the client closes the socket after RCPT."""
    c = SmtpClient(port, source)
    c.command("EHLO flaky.example")
    replies = [c.command("MAIL FROM:<a@flaky.example>")[0],
               c.command("RCPT TO:<b@test.example>")[0]]
    c.drop()
    return replies


def pipelined_probe(port, source):
    """Case 3 with PIPELINING: MAIL, RCPT, RSET, QUIT in one TCP segment."""
    c = SmtpClient(port, source)
    c.command("EHLO pipeliner.example")
    replies = c.pipeline(["MAIL FROM:<>", "RCPT TO:<postmaster@test.example>", "RSET", "QUIT"])
    c.sock.close()
    return [code for code, _ in replies]


def rejected_recipient(port, source):
    """Case 5: a recipient Postfix rejects, then RSET, NOOP, QUIT."""
    c = SmtpClient(port, source)
    c.command("EHLO rejected.example")
    return [c.command("MAIL FROM:<a@rejected.example>")[0],
            c.command(f"RCPT TO:<{harness.REJECTED_RECIPIENT}>")[0],
            c.command("RSET")[0], c.command("NOOP")[0], c.quit()]


def ordinary_sender(port, source):
    """EHLO with a proper name, one message, QUIT."""
    c = SmtpClient(port, source)
    return [c.command("EHLO mail.sender.example")[0], c.command("MAIL FROM:<a@sender.example>")[0],
            c.command("RCPT TO:<b@test.example>")[0], c.message("Subject: hi\n\nhello\n"),
            c.quit()]


def helo_client(port, source):
    """An old client that greets with HELO (not EHLO) and sends one message."""
    c = SmtpClient(port, source)
    return [c.command("HELO old.example")[0], c.command("MAIL FROM:<a@old.example>")[0],
            c.command("RCPT TO:<b@test.example>")[0], c.message("Subject: old\n\nhello\n"),
            c.quit()]


def starttls_client(port, source):
    """EHLO, STARTTLS, EHLO again over TLS, MAIL, RCPT, QUIT."""
    c = SmtpClient(port, source)
    c.command("EHLO tls.example")
    replies = [c.starttls(), c.command("EHLO tls.example")[0],
               c.command("MAIL FROM:<a@tls.example>")[0],
               c.command("RCPT TO:<b@test.example>")[0], c.quit()]
    return replies


def connection_reuse(server, workdir, source, messages=3):
    """Case 4: Postfix's own smtp client delivers several messages over one
    cached connection, sending RSET before each further MAIL. A second
    private Postfix, bound to `source`, holds the messages and releases them
    together so they share the connection."""
    client = harness.PostfixInstance(workdir, extra={
        "myhostname": "relay.client.example",
        "mydestination": "",
        "relayhost": f"[127.0.0.1]:{server.port}",
        "default_transport": "smtp",
        "relay_transport": "smtp",
        "smtp_bind_address": source,
        "smtp_connection_cache_destinations": f"[127.0.0.1]:{server.port}",
        "smtp_destination_concurrency_limit": "1",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        "smtpd_end_of_data_restrictions": "check_client_access static:HOLD",
    }).start()
    delivered_before = sum("status=sent" in line for line in server.log_lines())
    try:
        c = SmtpClient(client.port)
        c.command("EHLO submitter.example")
        for i in range(messages):
            c.command("MAIL FROM:<batch@corp.example>")
            c.command("RCPT TO:<archive@test.example>")
            c.message(f"Subject: batch {i}\n\nmessage {i}\n")
        c.quit()
        client.wait_for_log("HOLD", count=messages)
        # Released mail goes to the deferred queue; the flush sends it now.
        subprocess.run(["postsuper", "-c", client.etc, "-H", "ALL"], check=True,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["postqueue", "-c", client.etc, "-f"], check=True)
        server.wait_for_log("status=sent", timeout=30, count=delivered_before + messages)
    finally:
        client.stop()  # closes the cached connection: the session ends without QUIT
    return messages


def concurrent_load(port, sessions=200):
    """smtp-source: `sessions` concurrent sessions, one message each."""
    subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(sessions),
                    "-f", "load@corp.example", "-t", "sink@test.example",
                    f"127.0.0.1:{port}"], check=True, timeout=120)
