"""Faults around the daemons, with a real Postfix: mail keeps flowing when
the milter is killed (milter_default_action = accept) and recording resumes
on restart; a database locked by another writer delays recording but loses
nothing and stays intact (milter and policy server); a corrupt database is
refused without damage."""
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402
from policy_client import PolicyClient  # noqa: E402


def delivered(postfix):
    return sum("status=sent" in line for line in postfix.log_lines())


def assert_recovered_from_the_lock(test, db, daemon):
    """After a lock held beyond the busy timeout: the database is intact,
    nothing was dropped, and the daemon logged the cause once per 10 s."""
    test.assertEqual(harness.query(db, "PRAGMA integrity_check"), [("ok",)])
    test.assertEqual(harness.query(db, "SELECT coalesce(sum(dropped), 0) FROM drops"), [(0,)])
    test.assertIn(daemon.stderr().count("event=write-failed"), (1, 2),
                  "the cause is logged once per 10 s, not per retry")


class Faults(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("m.sock")
        self.milter = harness.milter_daemon(self.work, self.db, self.socket).start()
        self.postfix = harness.PostfixInstance(self.work, milter_socket=f"unix:{self.socket}").start()

    def tearDown(self):
        self.postfix.stop()
        self.milter.stop()
        self.work.remove()

    def test_kill_9_under_load_keeps_mail_flowing_and_restart_resumes(self):
        load = threading.Thread(target=lambda: subprocess.run(
            ["smtp-source", "-s", "5", "-m", "200", "-f", "a@load.example", "-t", "b@test.example",
             f"127.0.0.1:{self.postfix.port}"], check=True, timeout=120))
        load.start()
        harness.wait_for(lambda: delivered(self.postfix) >= 20, 30, "some deliveries")
        os.kill(self.milter.process.pid, signal.SIGKILL)
        self.milter.process.wait()
        load.join()
        self.postfix.wait_for_log("status=sent", count=200, timeout=60)  # every message
        # Restarted, it records again. The killed milter left its socket file
        # behind; it goes, so that "listening" means the new one is.
        os.unlink(self.socket)
        self.milter.process = None
        self.milter.start()
        scenarios.ordinary_sender(self.postfix.port, "127.0.0.101")
        self.postfix.wait_for_log("disconnect from unknown[127.0.0.101]")
        harness.wait_for_closed(self.db, ["127.0.0.101"])
        self.assertEqual(self.milter.stop(), 0)
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM sessions WHERE"
                                       " client_addr = '127.0.0.101'"), [(1,)])
        self.assertEqual(harness.query(self.db, "PRAGMA integrity_check"), [("ok",)])

    def test_a_locked_database_delays_recording_but_loses_nothing(self):
        blocker = sqlite3.connect(self.db, timeout=1, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        started = time.monotonic()
        for i in range(5):
            scenarios.ordinary_sender(self.postfix.port, f"127.0.0.{110 + i}")
        self.assertLess(time.monotonic() - started, 10, "mail was not delayed by the lock")
        self.postfix.wait_for_log("status=sent", count=5, timeout=30)  # all five delivered
        # Held for 10 s, beyond the daemon's busy timeout: batches are refused and retried.
        time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM sessions"), [(0,)])
        blocker.execute("COMMIT")
        blocker.close()
        harness.wait_for(lambda: harness.query(self.db, "SELECT count(*) FROM sessions WHERE"
                                               " client_addr LIKE '127.0.0.11_'")[0][0] == 5,
                         15, "the held-back sessions")
        self.assertEqual(self.milter.stop(), 0)
        assert_recovered_from_the_lock(self, self.db, self.milter)


class PolicyServerLockedDatabase(unittest.TestCase):
    """The policy server shares the milter's store, so the same promise:
    a database locked by another writer (here beyond the busy timeout)
    delays recording, never an answer, and loses nothing."""

    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("policy.sock")
        self.policy = harness.policy_daemon(self.work, self.db, [f"unix:{self.socket}"]).start()

    def tearDown(self):
        self.policy.stop()
        self.work.remove()

    def test_answers_at_once_and_records_everything_after_the_lock(self):
        blocker = sqlite3.connect(self.db, timeout=1, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        client = PolicyClient(self.socket)
        slowest = 0.0
        for i in range(50):
            asked = time.monotonic()
            self.assertEqual(client.ask(client_port=str(41000 + i // 5),
                                        instance=f"1f4.6b03a76b.d4dad.{i // 5:x}"), "DUNNO")
            slowest = max(slowest, time.monotonic() - asked)
        client.close()
        self.assertLess(slowest, 1.0, "an answer waited for the database")
        time.sleep(max(0.0, 8 - (time.monotonic() - started)))  # beyond busy_timeout_ms (5 s)
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM events"), [(0,)])
        blocker.execute("COMMIT")
        blocker.close()
        harness.wait_for(lambda: harness.query(self.db, "SELECT count(*) FROM events WHERE"
                                               " source = 'policy'")[0][0] == 50,
                         15, "the held-back requests")
        self.assertEqual(self.policy.stop(), 0)
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM sessions"), [(10,)])
        assert_recovered_from_the_lock(self, self.db, self.policy)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class UnusableDatabase(unittest.TestCase):
    """A database file the programs must refuse: exit 1 with a clear error,
    the file byte for byte as it was."""

    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")

    def tearDown(self):
        self.work.remove()

    def assert_refused_untouched(self, error_pattern):
        before = digest(self.db)
        daemon = harness.milter_daemon(self.work, self.db, self.work.join("m.sock"))
        for command in ([harness.binary("smtpscope-milter"), "-c", daemon.config_path,
                         "--foreground"],
                        [harness.binary("smtpscope"), "--db", self.db, "sessions"]):
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 1, command)
            self.assertRegex(result.stderr, error_pattern)
            self.assertEqual(digest(self.db), before)

    def test_a_corrupt_database_is_refused_untouched(self):
        with open(self.db, "wb") as f:
            f.write(b"SQLite format 3\x00" + os.urandom(8192))
        self.assert_refused_untouched(r"smtpscope\.db.*(malformed|not a database)")

    def test_a_database_from_a_newer_version_is_refused_untouched(self):
        empty_log = self.work.join("empty.log")
        open(empty_log, "w").close()
        subprocess.run([harness.binary("smtpscope"), "--db", self.db, "ingest", empty_log],
                       check=True, capture_output=True)  # creates it at the current schema
        harness.query(self.db, "INSERT INTO schema_version (version, name, applied_us)"
                               " VALUES (999, 'future', 0)")
        self.assert_refused_untouched(r"schema version 999, newer than this smtpscope knows")


if __name__ == "__main__":
    unittest.main()
