"""The database becomes unwritable under the milter while Postfix takes mail:
made read-only (the immutable attribute, which refuses writes even through
descriptors already open) and a full file system (a small tmpfs filled up).
Each time: Postfix's clients are answered at once and all mail is delivered;
the milter keeps what fits in its bounded queue, drops and counts the rest,
logs the cause once per interval rather than per event, recovers by itself
when the database is writable again, and what was committed stays intact.
Also: large policy requests while the database is locked stay within the
queue's byte bound and the memory is given back (issue 13, defect 3), and
a schema version beyond 32 bits or below zero is refused (defect 14)."""
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402
from policy_client import PolicyClient  # noqa: E402

QUEUE_CAPACITY = 30  # events; the failing batch holds as many again; 12 sessions make ~80
SESSIONS = 12
UNWRITABLE_SECONDS = 10
LOG_INTERVAL_SECONDS = 10  # the store's rate limit for write-failed and dropped lines


def stopped_counters(stderr, daemon="milter"):
    """The counters of the daemon's last 'event=stopped' line."""
    line = [line for line in stderr.splitlines() if f"{daemon} event=stopped" in line][-1]
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


MIB = 1024 * 1024
QUEUE_BYTES = 48 * MIB
LARGE_REQUESTS = 200  # ~1 MiB each: four times the bound
# Beyond what the queue holds: request buffers, SQLite's page cache, the
# allocator's slack. Held after draining, the queue's bytes would exceed it.
MEMORY_MARGIN = 16 * MIB


def process_bytes(pid, field):
    """A field of /proc/PID/status in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def sanitized_build():
    """AddressSanitizer keeps freed memory in quarantine and adds shadow
    memory: resident sizes measure it, not the store."""
    with open(os.path.join(harness.BUILD_DIR, "CMakeCache.txt")) as f:
        return "-fsanitize=address" in f.read()


def large_attributes():
    """990 attributes of 1,000 bytes: ~1 MiB, within every limit of a
    request (policy.max_request_bytes, max_attributes, max_value_bytes)."""
    return {f"x{n:04d}": f"{n:04d}" * 250 for n in range(990)}


class LargeRequestsWhileLocked(unittest.TestCase):
    """~1 MiB policy requests while another writer holds the lock: the
    policy server answers each at once, holds at most store.queue_bytes of
    them (its peak resident memory says so), drops and counts the rest with
    the bound named in its log, writes what it kept once the lock is gone,
    and gives the memory back after draining."""

    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("policy.sock")
        self.policy = harness.policy_daemon(
            self.work, self.db, [f"unix:{self.socket}"],
            store={"queue_bytes": QUEUE_BYTES, "retry_interval_ms": 200}).start()

    def tearDown(self):
        self.policy.stop()
        self.work.remove()

    def test_the_queue_stays_within_its_bytes_and_gives_them_back(self):
        measured = not sanitized_build()
        pid = self.policy.process.pid
        baseline = process_bytes(pid, "VmRSS")
        blocker = sqlite3.connect(self.db, timeout=1, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        client = PolicyClient(self.socket, timeout=30)
        attributes = large_attributes()
        for i in range(LARGE_REQUESTS):
            self.assertEqual(client.ask(**attributes, client_port=str(41000 + i // 5),
                                        instance=f"1f4.6b03a76b.d4dad.{i // 5:x}"), "DUNNO")
        client.close()
        peak = process_bytes(pid, "VmHWM")
        if measured:
            self.assertLess(peak, baseline + QUEUE_BYTES + MEMORY_MARGIN,
                            f"baseline {baseline // MIB} MiB, peak {peak // MIB} MiB")
        harness.wait_for(lambda: "event=dropped reason=queue-bytes" in self.policy.stderr(), 10,
                         "the byte bound's drop line")

        blocker.execute("COMMIT")
        blocker.close()
        if measured:
            harness.wait_for(lambda: process_bytes(pid, "VmRSS") < baseline + MEMORY_MARGIN, 30,
                             f"the memory given back (baseline {baseline // MIB} MiB)")
        self.assertEqual(self.policy.stop(), 0)
        counters = stopped_counters(self.policy.stderr(), "policy")
        self.assertEqual(counters["requests"], LARGE_REQUESTS)
        self.assertGreater(counters["dropped"], 0)
        self.assertEqual(counters["enqueued"] + counters["dropped"], LARGE_REQUESTS)
        self.assertEqual(counters["written"], counters["enqueued"])
        self.assertEqual(counters["lost"], 0)
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM events"),
                         [(counters["written"],)])
        self.assertEqual(harness.query(self.db, "SELECT sum(dropped) FROM drops"),
                         [(counters["dropped"],)])
        self.assertEqual(harness.query(self.db, "PRAGMA integrity_check"), [("ok",)])


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class SchemaVersionsOutOfRange(unittest.TestCase):
    """A schema version read whole (64 bits): 2^31 was read as negative
    (every migration re-run: "table sessions already exists") and 2^32+5 as
    5. The milter, the policy server and `smtpscope sessions` exit 1 naming
    the file and the version, and leave the file as it was."""

    def setUp(self):
        self.work = harness.Workdir()

    def tearDown(self):
        self.work.remove()

    def database_with_version(self, version):
        db = self.work.join(f"v{version}.db")
        empty_log = self.work.join("empty.log")
        open(empty_log, "w").close()
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", empty_log],
                       check=True, capture_output=True)  # creates it at the current schema
        harness.query(db, "INSERT INTO schema_version (version, name, applied_us)"
                          " VALUES (?, 'by hand', 0)", version)
        return db

    def assert_refused(self, db, error):
        before = digest(db)
        milter = harness.milter_daemon(self.work, db, self.work.join("m.sock"))
        policy = harness.policy_daemon(self.work, db, [f"unix:{self.work.join('p.sock')}"])
        for command in ([harness.binary("smtpscope-milter"), "-c", milter.config_path,
                         "--foreground"],
                        [harness.binary("smtpscope-policyd"), "-c", policy.config_path,
                         "--foreground"],
                        [harness.binary("smtpscope"), "--db", db, "sessions"]):
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 1, (command, result.stderr))
            self.assertIn(f"database {db} has schema version {error}", result.stderr)
            self.assertEqual(digest(db), before)

    def test_versions_beyond_32_bits_are_newer(self):
        for version in (2**31, 2**32 + 5):
            with self.subTest(version=version):
                self.assert_refused(self.database_with_version(version),
                                    f"{version}, newer than this smtpscope knows")

    def test_a_negative_version_is_refused(self):
        self.assert_refused(self.database_with_version(-1),
                            "-1, which no smtpscope writes")


if __name__ == "__main__":
    unittest.main()
