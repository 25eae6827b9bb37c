#!/usr/bin/env python3
"""Fills a fresh smtpscope database with N generated sessions (fixed seed):
clients with 100 sessions each, most ordinary (connect, helo, mail, rcpt,
data, eom, close), every 50th client resetting and retrying as an
intercepting proxy does, every 40th greeting with a bare IP. Written with
SQL in batches; the schema comes from `smtpscope` itself.
Usage: gen_sessions.py SMTPSCOPE_BINARY DATABASE SESSIONS"""
import random
import sqlite3
import subprocess
import sys


def main():
    binary, path, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # Any smtpscope command that opens the database creates the schema.
    subprocess.run([binary, "--db", path, "ingest", "/dev/null"], capture_output=True)
    rng = random.Random(7)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    t0 = 1_790_000_000_000_000
    sessions, transactions, events = [], [], []
    event_id = transaction_id = 0
    for sid in range(1, total + 1):
        client = (sid - 1) // 100
        addr = f"10.{client // 65536 % 256}.{client // 256 % 256}.{client % 256}"
        connect = t0 + sid * 1_000_000
        proxy = client % 50 == 7
        helo = addr if client % 40 == 3 else f"mail{client}.example.net"
        sessions.append((sid, f"milter:1:{sid}", addr, 10000 + sid % 50000, "unknown", "unknown",
                         "198.51.100.1", 25, connect, None, helo, 1,
                         2 if proxy else 1, 0, "ESMTP", "milter", None))
        shape = [("connect", 0, "", 0), ("helo", 1000, helo, 0)]
        seqs = [1, 2] if proxy else [1]
        at = 2000
        for seq in seqs:
            transaction_id += 1
            aborted = proxy and seq == 1
            transactions.append((transaction_id, sid, seq, "<a@example.net>", connect + at,
                                 connect + at + 5000, 1, 0, None if aborted else connect + at + 3000,
                                 None if aborted else f"Q{sid:09X}", None,
                                 "aborted" if aborted else "delivered", None))
            shape += [("mail", at, "<a@example.net>", transaction_id),
                      ("rcpt", at + 1000, "<b@example.org>", transaction_id)]
            if aborted:
                # RSET, then a pause of up to 10 s before the same envelope again
                shape.append(("abort", at + 2000, "", transaction_id))
                at += rng.randint(2_000_000, 10_000_000)
            else:
                shape += [("data", at + 3000, "", transaction_id), ("eom", at + 5000, "", transaction_id)]
            at += 20_000
        shape.append(("close", at + 900_000, "", 0))
        db_close = connect + shape[-1][1]
        sessions[-1] = sessions[-1][:9] + (db_close,) + sessions[-1][10:]
        for stage, offset, argument, tid in shape:
            event_id += 1
            events.append((event_id, sid, tid or None, "milter", stage, connect + offset, argument,
                           '{"j":"mx.example.org"}' if stage == "connect" else "{}"))
        if len(events) > 200_000:
            flush(db, sessions, transactions, events)
    flush(db, sessions, transactions, events)
    db.close()


def flush(db, sessions, transactions, events):
    db.executemany("INSERT INTO sessions (id, stream, client_addr, client_port, client_name,"
                   " client_ptr, server_addr, server_port, connect_us, close_us, helo, helo_count,"
                   " transactions, partial, protocol, sources, join_method)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", sessions)
    db.executemany("INSERT INTO transactions (id, session_id, seq, mail_from, started_us, ended_us,"
                   " rcpt_accepted, rcpt_rejected, data_us, queue_id, body_bytes, outcome,"
                   " message_bytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", transactions)
    db.executemany("INSERT INTO event_rows (id, session_id, transaction_id, source, stage, time_us,"
                   " argument, attributes) VALUES (?,?,?,?,?,?,?,?)", events)
    db.commit()
    sessions.clear()
    transactions.clear()
    events.clear()


if __name__ == "__main__":
    main()
