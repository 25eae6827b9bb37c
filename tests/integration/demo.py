"""The live demo: a private Postfix on loopback with smtpscope-milter,
real clients replaying the cases smtpscope explains, then the recorded
sessions as timelines. Everything started here is stopped again."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

CLIENTS = [
    ("127.0.0.11", "intercepting proxy: MAIL, RCPT, RSET, RSET, pause, MAIL, RCPT, DATA, QUIT",
     lambda port, src: scenarios.intercepting_proxy(port, src, pause=3.0)),
    ("127.0.0.12", "address verification probe: MAIL FROM:<>, RCPT, RSET, QUIT",
     scenarios.verification_probe),
    ("127.0.0.13", "empty HELO (Postfix answers 501), then QUIT", scenarios.empty_helo),
    ("127.0.0.14", "connection lost after RCPT", scenarios.lost_after_rcpt),
    ("127.0.0.15", "pipelined MAIL, RCPT, RSET, QUIT in one TCP segment",
     scenarios.pipelined_probe),
    ("127.0.0.16", "recipient rejected by Postfix, then RSET, NOOP, QUIT",
     scenarios.rejected_recipient),
    ("127.0.0.18", "EHLO, STARTTLS, EHLO again over TLS, MAIL, RCPT, QUIT",
     scenarios.starttls_client),
    ("127.0.0.19", "an old client greeting with HELO, one message", scenarios.helo_client),
]
REUSE = "127.0.0.17"


def main():
    work = harness.Workdir("smtpscope-demo-")
    db = work.join("smtpscope.db")
    socket_path = work.join("milter.sock")
    policy_socket = work.join("policy.sock")
    milter = harness.milter_daemon(work, db, socket_path)
    policy = harness.policy_daemon(work, db, [f"unix:{policy_socket}"])
    postfix = harness.PostfixInstance(work, milter_socket=f"unix:{socket_path}",
                                      policy_service=f"unix:{policy_socket}", tls=True)
    try:
        milter.start()
        policy.start()
        postfix.start()
        print(f"Private Postfix on 127.0.0.1:{postfix.port} with smtpscope-milter and "
              f"smtpscope-policyd (database {db})\n")
        for source, title, play in CLIENTS:
            print(f"  {source}  {title}")
            play(postfix.port, source)
        print(f"  {REUSE}  Postfix's own smtp client: 4 messages over a cached connection")
        reuse_work = harness.Workdir("smtpscope-demo-client-")
        try:
            scenarios.connection_reuse(postfix, reuse_work, REUSE, messages=4)
        finally:
            reuse_work.remove()
        for source, _, _ in CLIENTS:
            postfix.wait_for_log(f"disconnect from unknown[{source}]")
        harness.wait_for_closed(db, [source for source, _, _ in CLIENTS] + [REUSE])
        milter.stop()  # a clean stop commits every queued event
        policy.stop()
        print("\nPostfix's log, read into the same sessions (smtpscope ingest):", flush=True)
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", postfix.maillog],
                       check=True)
        print("\nWhat smtpscope recorded (smtpscope sessions): milter, policy server and log"
              " in one timeline per connection\n", flush=True)
        subprocess.run([harness.binary("smtpscope"), "--db", db, "sessions"], check=True)
        print("\nEvery client, worst first (smtpscope clients):\n", flush=True)
        subprocess.run([harness.binary("smtpscope"), "--db", db, "clients"], check=True)
        print("\nThe report on the client behind an intercepting proxy "
              "(smtpscope report --client 127.0.0.11):\n", flush=True)
        subprocess.run([harness.binary("smtpscope"), "--db", db, "report", "--client",
                        "127.0.0.11"], check=True)
    finally:
        postfix.stop()
        milter.stop()
        policy.stop()
        work.remove()


if __name__ == "__main__":
    main()
