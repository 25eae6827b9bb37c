"""The database becomes unwritable under the milter while Postfix takes mail:
made read-only (the immutable attribute, which refuses writes even through
descriptors already open) and a full file system (a small tmpfs filled up).
Each time: Postfix's clients are answered at once and all mail is delivered;
the milter keeps what fits in its bounded queue, drops and counts the rest,
logs the cause once per interval rather than per event, recovers by itself
when the database is writable again, and what was committed stays intact."""
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

QUEUE_CAPACITY = 30  # events; the failing batch holds as many again; 12 sessions make ~80
SESSIONS = 12
UNWRITABLE_SECONDS = 10
LOG_INTERVAL_SECONDS = 10  # the store's rate limit for write-failed and dropped lines


def stopped_counters(stderr):
    """The counters of the milter's last 'event=stopped' line."""
    line = [line for line in stderr.splitlines() if "milter event=stopped" in line][-1]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


class UnwritableDatabase:
    """The shared scenario; subclasses make the database unwritable and usable again."""

    def database_directory(self):
        return self.work.path

    def make_unwritable(self):
        raise NotImplementedError

    def make_writable(self):
        raise NotImplementedError

    def release_storage(self):
        """Undoes what database_directory() set up, before the work directory goes."""

    def setUp(self):
        self.work = harness.Workdir()
        self.db = os.path.join(self.database_directory(), "smtpscope.db")
        socket = self.work.join("m.sock")
        self.milter = harness.milter_daemon(
            self.work, self.db, socket,
            store={"queue_capacity": QUEUE_CAPACITY, "retry_interval_ms": 500}).start()
        self.postfix = harness.PostfixInstance(self.work, milter_socket=f"unix:{socket}").start()

    def tearDown(self):
        self.postfix.stop()
        self.milter.stop()
        self.make_writable()
        self.release_storage()
        self.work.remove()

    def test_unwritable_database_drops_counts_and_recovers(self):
        scenarios.ordinary_sender(self.postfix.port, "127.0.0.120")
        harness.wait_for_closed(self.db, ["127.0.0.120"])
        committed_before = harness.query(self.db, "SELECT * FROM events ORDER BY id")

        self.make_unwritable()
        unwritable_since = time.monotonic()
        for i in range(SESSIONS):
            started = time.monotonic()
            replies = scenarios.ordinary_sender(self.postfix.port, f"127.0.0.{121 + i}")
            self.assertLess(time.monotonic() - started, 2, "the client waited on the milter")
            self.assertTrue(all(200 <= reply < 400 for reply in replies), replies)
        self.postfix.wait_for_log("status=sent", count=1 + SESSIONS, timeout=30)
        time.sleep(max(0.0, UNWRITABLE_SECONDS - (time.monotonic() - unwritable_since)))
        stderr = self.milter.stderr()
        # Once per interval, not per event: ~100 events, 20 failed retries.
        self.assertIn(1, range(stderr.count("event=write-failed"), 3))
        self.assertIn(1, range(stderr.count("event=dropped reason=queue-full"), 3))

        self.make_writable()
        harness.wait_for(lambda: harness.query(self.db, "SELECT coalesce(sum(dropped), 0)"
                                                        " FROM drops")[0][0] > 0,
                         15, "the drop count to be committed")
        self.assertEqual(self.milter.stop(), 0)
        counters = stopped_counters(self.milter.stderr())
        self.assertGreater(counters["dropped"], 0)
        self.assertEqual(counters["lost"], 0)
        self.assertEqual(counters["enqueued"], counters["written"])
        self.assertEqual(harness.query(self.db, "SELECT sum(dropped) FROM drops"),
                         [(counters["dropped"],)])
        # What fitted in the queue was kept: the first sessions of the outage.
        recorded = harness.query(self.db, "SELECT count(*) FROM sessions WHERE client_addr"
                                          " BETWEEN '127.0.0.121' AND '127.0.0.132'")[0][0]
        self.assertGreater(recorded, 0)
        self.assertEqual(harness.query(self.db, "SELECT * FROM events WHERE id <= ?",
                                       committed_before[-1][0]), committed_before)
        self.assertEqual(harness.query(self.db, "PRAGMA integrity_check"), [("ok",)])


class ReadOnlyDatabase(UnwritableDatabase, unittest.TestCase):
    """chattr +i on the database and its write-ahead log."""

    def files(self):
        return [self.db, self.db + "-wal"]

    def make_unwritable(self):
        result = subprocess.run(["chattr", "+i", *self.files()], capture_output=True, text=True)
        if result.returncode != 0:
            self.skipTest(f"this file system has no immutable attribute: {result.stderr}")

    def make_writable(self):
        subprocess.run(["chattr", "-i", *self.files()], capture_output=True)


class FullFileSystem(UnwritableDatabase, unittest.TestCase):
    """The database on a 4 MiB tmpfs, filled up by another file."""

    def database_directory(self):
        mount_point = self.work.join("dbfs")
        os.mkdir(mount_point)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs",
                                 mount_point], capture_output=True, text=True)
        if result.returncode != 0:
            self.work.remove()
            self.skipTest(f"cannot mount a tmpfs here: {result.stderr}")
        self.mount_point = mount_point
        return mount_point

    def filler(self):
        return os.path.join(self.mount_point, "filler")

    def make_unwritable(self):
        with open(self.filler(), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass  # ENOSPC: the file system is full

    def make_writable(self):
        if os.path.exists(self.filler()):
            os.unlink(self.filler())

    def release_storage(self):
        subprocess.run(["umount", self.mount_point], check=True)


if __name__ == "__main__":
    unittest.main()
