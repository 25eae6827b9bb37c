"""Signals and broken connections around the daemons, with a real Postfix
under smtp-source load: the policy server killed with -9 (Postfix's default
action keeps mail flowing, the restarted server records again); the milter
stopped with SIGTERM (every event it accepted is committed, checked against
the maillog's deliveries); Postfix's smtpd killed mid-session, which closes
the milter connection without QUIT; and a milter too slow for Postfix's
milter_command_timeout."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402


def delivered_queue_ids(postfix):
    return {line.split(": ")[1] for line in postfix.log_lines() if "status=sent" in line}


def smtp_source_load(postfix, messages, sessions=5):
    """smtp-source in a thread: `messages` over `sessions` concurrent sessions."""
    load = threading.Thread(target=lambda: subprocess.run(
        ["smtp-source", "-s", str(sessions), "-m", str(messages), "-f", "a@load.example",
         "-t", "b@test.example", f"127.0.0.1:{postfix.port}"], check=True, timeout=300))
    load.start()
    return load


def counters(stderr, marker):
    line = [line for line in stderr.splitlines() if marker in line][-1]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


class PolicyServerKilled(unittest.TestCase):
    def test_kill_9_under_load_keeps_mail_flowing_and_restart_resumes(self):
        work = harness.Workdir()
        db, socket = work.join("smtpscope.db"), work.join("policy.sock")
        policy = harness.policy_daemon(work, db, [f"unix:{socket}"]).start()
        postfix = harness.PostfixInstance(work, policy_service=f"unix:{socket}").start()
        try:
            load = smtp_source_load(postfix, 200)
            harness.wait_for(lambda: len(delivered_queue_ids(postfix)) >= 20, 60,
                             "some deliveries")
            os.kill(policy.process.pid, signal.SIGKILL)
            policy.process.wait()
            time.sleep(1)  # Postfix meets a dead server and takes its default action
            policy.process = None
            policy.start()  # removes the dead server's socket file and binds anew
            load.join()
            postfix.wait_for_log("status=sent", count=200, timeout=60)
            self.assertTrue(any("smtpscope" in line or "policy" in line
                                for line in postfix.log_lines() if "warning" in line),
                            "Postfix noticed the dead policy server")
            scenarios.ordinary_sender(postfix.port, "127.0.0.141")
            harness.wait_for(lambda: harness.query(
                db, "SELECT count(*) FROM events JOIN sessions ON sessions.id = session_id"
                    " WHERE client_addr = '127.0.0.141' AND source = 'policy'")[0][0] >= 5,
                10, "the restarted server's records")
            self.assertEqual(policy.stop(), 0)
            self.assertEqual(harness.query(db, "PRAGMA integrity_check"), [("ok",)])
        finally:
            postfix.stop()
            policy.stop()
            work.remove()


class MilterUnderLoad(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("m.sock")
        self.milter = harness.milter_daemon(self.work, self.db, self.socket).start()
        self.postfix = harness.PostfixInstance(
            self.work, milter_socket=f"unix:{self.socket}",
            extra={"milter_command_timeout": "2s", "milter_content_timeout": "2s",
                   # a killed smtpd makes master pause the service this long
                   "service_throttle_time": "1s"}).start()

    def tearDown(self):
        self.postfix.stop()
        self.milter.stop()
        self.work.remove()

    def test_sigterm_under_load_commits_every_accepted_event(self):
        load = smtp_source_load(self.postfix, 300)
        harness.wait_for(lambda: len(delivered_queue_ids(self.postfix)) >= 50, 60,
                         "some deliveries")
        delivered_before_stop = delivered_queue_ids(self.postfix)
        self.assertEqual(self.milter.stop(), 0)
        load.join()
        self.postfix.wait_for_log("status=sent", count=300, timeout=60)  # mail kept flowing
        stopped = counters(self.milter.stderr(), "milter event=stopped")
        self.assertEqual(stopped["lost"], 0)
        self.assertEqual(stopped["enqueued"], stopped["written"])
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM events"),
                         [(stopped["written"],)])
        recorded = {row[0] for row in harness.query(
            self.db, "SELECT queue_id FROM transactions WHERE queue_id IS NOT NULL")}
        # Every message delivered before the signal passed the milter's end of
        # message, and each of those is committed; nothing recorded is invented.
        self.assertLessEqual(delivered_before_stop, recorded)
        self.assertLessEqual(recorded, delivered_queue_ids(self.postfix))
        self.assertEqual(harness.query(self.db, "PRAGMA integrity_check"), [("ok",)])

    def test_smtpd_killed_mid_session_closes_the_milter_session(self):
        client = SmtpClient(self.postfix.port, "127.0.0.142")
        client.command("EHLO killed.example")
        client.command("MAIL FROM:<a@killed.example>")
        client.command("RCPT TO:<b@test.example>")
        self.postfix.wait_for_log("connect from unknown[127.0.0.142]")
        smtpd = [int(m.group(1)) for line in self.postfix.log_lines()
                 if (m := re.search(r"smtpd\[(\d+)\]: connect from unknown\[127\.0\.0\.142\]",
                                    line))][0]
        os.kill(smtpd, signal.SIGKILL)  # the milter's connection closes without QUIT
        client.sock.close()
        harness.wait_for_closed(self.db, ["127.0.0.142"])
        self.assertEqual(harness.session_stages(self.db, "127.0.0.142")[0][:4],
                         ["connect", "helo", "mail", "rcpt"])
        scenarios.ordinary_sender(self.postfix.port, "127.0.0.143")  # the next one as usual
        harness.wait_for_closed(self.db, ["127.0.0.143"])
        self.assertEqual(self.milter.process.poll(), None)

    def test_a_milter_slower_than_postfix_s_timeout_does_not_hold_mail(self):
        os.kill(self.milter.process.pid, signal.SIGSTOP)  # answers nothing now
        try:
            started = time.monotonic()
            replies = scenarios.ordinary_sender(self.postfix.port, "127.0.0.144")
            waited = time.monotonic() - started
        finally:
            os.kill(self.milter.process.pid, signal.SIGCONT)
        self.assertTrue(all(200 <= reply < 400 for reply in replies), replies)
        self.assertLess(waited, 10, "Postfix gave up on the milter after its timeout")
        self.postfix.wait_for_log("status=sent")
        self.assertTrue(any("milter" in line and "timed out" in line.lower()
                            for line in self.postfix.log_lines()))
        # The milter catches up on the stale connection, then serves as before.
        scenarios.ordinary_sender(self.postfix.port, "127.0.0.145")
        harness.wait_for_closed(self.db, ["127.0.0.145"])
        self.assertEqual(harness.session_stages(self.db, "127.0.0.145"),
                         [["connect", "helo", "mail", "rcpt", "data", "eom", "close"]])
        self.assertEqual(self.milter.stop(), 0)
        self.assertEqual(harness.query(self.db, "PRAGMA integrity_check"), [("ok",)])


if __name__ == "__main__":
    unittest.main()
