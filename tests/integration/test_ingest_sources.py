"""smtpscope ingest from the sources admins have besides a mail.log: the
systemd journal (a journal file built by systemd-journal-remote from a real
private Postfix's log lines), standard input, a central syslog file holding
two servers' logs, and the real logs of tests/fixtures/logs/real with their
counts pinned (`grep -c` on the files)."""
import gzip
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs")
RELAY_LOG = os.path.join(FIXTURES, "real", "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz")
JOURNAL_REMOTE = "/usr/lib/systemd/systemd-journal-remote"
EMPTY_HELO, LOST, REJECTED = "127.0.0.52", "127.0.0.53", "127.0.0.54"
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
BSD_LINE = re.compile(r"^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) ([^\[:]+)\[(\d+)\]: (.*)$")


smtpscope = harness.smtpscope


def export_entries(lines, boot_id="0123456789abcdef0123456789abcdef",
                   machine_id="fedcba9876543210fedcba9876543210", host=None):
    """Journal export format for BSD syslog lines (the journal's own fields
    as journald would set them for Postfix's syslog messages)."""
    year = time.localtime().tm_year
    out = []
    for n, line in enumerate(lines):
        m = BSD_LINE.match(line)
        if not m:
            continue
        month, day, h, mi, s, line_host, ident, pid, message = m.groups()
        stamp = time.mktime((year, MONTHS.index(month) + 1, int(day), int(h), int(mi), int(s),
                             0, 0, -1))
        realtime = int(stamp * 1_000_000) + n  # distinct, in order
        out.append("\n".join([
            f"__REALTIME_TIMESTAMP={realtime}", f"__MONOTONIC_TIMESTAMP={1000 + n}",
            f"_BOOT_ID={boot_id}", f"_MACHINE_ID={machine_id}",
            f"_HOSTNAME={host or line_host}", f"SYSLOG_IDENTIFIER={ident}",
            f"SYSLOG_PID={pid}", f"_PID={pid}", "PRIORITY=6", "SYSLOG_FACILITY=2",
            f"MESSAGE={message}"]) + "\n\n")
    return "".join(out)


def write_journal(workdir, journal_path, export_text, name):
    """Appends the entries to journal_path (created if missing) with
    systemd-journal-remote, as a journal gateway would."""
    export_file = workdir.join(name + ".export")
    with open(export_file, "w") as f:
        f.write(export_text)
    subprocess.run([JOURNAL_REMOTE, "-o", journal_path, export_file], check=True,
                   capture_output=True, timeout=60)


def count_in(db, sql):
    """sql's count, 0 while the database is still being created."""
    try:
        return harness.query(db, sql)[0][0] if os.path.exists(db) else 0
    except sqlite3.OperationalError:
        return 0


def sessions_of(db):
    """Each session as (client, host, its log stages in order)."""
    rows = harness.query(db, """SELECT s.client_addr, coalesce(s.host, ''),
        group_concat(e.stage, ' ') FROM sessions s JOIN (SELECT * FROM events ORDER BY id) e
        ON e.session_id = s.id GROUP BY s.id ORDER BY s.client_addr, s.connect_us""")
    return sorted(rows)


@unittest.skipUnless(os.path.exists(JOURNAL_REMOTE), "systemd-journal-remote is not installed")
class JournalFromARealPostfix(unittest.TestCase):
    """The private Postfix's log lines, written into a journal file by
    systemd-journal-remote, read with --journal-file: the same sessions as
    from the text log, a second run adds nothing, --follow sees entries
    appended later, and an interrupted run resumes by cursor."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.postfix = harness.PostfixInstance(cls.work).start()
        scenarios.empty_helo(cls.postfix.port, EMPTY_HELO)
        scenarios.lost_after_rcpt(cls.postfix.port, LOST)
        scenarios.rejected_recipient(cls.postfix.port, REJECTED)
        for client in (EMPTY_HELO, LOST, REJECTED):
            cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
        with open(cls.postfix.maillog) as f:
            cls.lines = f.read().splitlines()

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.work.remove()

    def setUp(self):
        self.dir = self.work.join(self.id().rsplit(".", 1)[-1])
        os.makedirs(self.dir)
        self.journal = os.path.join(self.dir, "remote.journal")

    def test_journal_gives_the_sessions_of_the_text_log(self):
        write_journal(self.work, self.journal, export_entries(self.lines), "all")
        text_db, journal_db = os.path.join(self.dir, "text.db"), os.path.join(self.dir, "j.db")
        text = smtpscope(text_db, "ingest", self.postfix.maillog)
        self.assertEqual(text.returncode, 0, text.stderr)
        first = smtpscope(journal_db, "ingest", "--journal", "--journal-file", self.journal)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertRegex(first.stdout, r"remote.journal: \d+ lines \(\d+ parsed, \d+ skipped, "
                                       r"0 malformed\)")
        self.assertEqual(sessions_of(journal_db), sessions_of(text_db))
        clients = {row[0] for row in sessions_of(journal_db)}
        self.assertLessEqual({EMPTY_HELO, LOST, REJECTED}, clients)
        # Microseconds from the journal, not whole seconds.
        fractions = harness.query(journal_db, "SELECT count(*) FROM events WHERE time_us % 1000000 <> 0")
        self.assertGreater(fractions[0][0], 0)
        self.assertEqual(harness.query(journal_db, "SELECT count(*) FROM events WHERE attributes"
                                                   " LIKE '%\"clock\":\"second\"%'")[0][0], 0)
        again = smtpscope(journal_db, "ingest", "--journal", "--journal-file", self.journal)
        self.assertIn("already ingested, nothing new", again.stdout)
        self.assertEqual(sessions_of(journal_db), sessions_of(text_db))

    def test_a_second_part_resumes_after_the_cursor(self):
        half = len(self.lines) // 2
        db = os.path.join(self.dir, "j.db")
        write_journal(self.work, self.journal, export_entries(self.lines[:half]), "first")
        first = smtpscope(db, "ingest", "--journal", "--journal-file", self.journal)
        self.assertEqual(first.returncode, 0, first.stderr)
        first_count = int(re.search(r"(\d+) lines", first.stdout).group(1))
        entries = harness.query(db, "SELECT count(*) FROM events")[0][0]
        write_journal(self.work, self.journal, export_entries(self.lines[half:]), "second")
        second = smtpscope(db, "ingest", "--journal", "--journal-file", self.journal)
        second_count = int(re.search(r"(\d+) lines", second.stdout).group(1))
        self.assertEqual(first_count + second_count,
                         len([line for line in self.lines if BSD_LINE.match(line)]))
        self.assertGreater(harness.query(db, "SELECT count(*) FROM events")[0][0], entries)
        text_db = os.path.join(self.dir, "text.db")
        smtpscope(text_db, "ingest", self.postfix.maillog)
        self.assertEqual(sessions_of(db), sessions_of(text_db))
        cursor = harness.query(db, "SELECT cursor FROM ingest_files WHERE fingerprint LIKE"
                                   " 'journal:%'")
        self.assertEqual(len(cursor), 1)
        self.assertIn(";t=", cursor[0][0])

    def test_follow_reads_entries_appended_later(self):
        half = len(self.lines) // 2
        db = os.path.join(self.dir, "j.db")
        write_journal(self.work, self.journal, export_entries(self.lines[:half]), "early")
        follower = subprocess.Popen([harness.binary("smtpscope"), "--db", db, "ingest",
                                     "--journal", "--journal-file", self.journal, "--follow"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            harness.wait_for(lambda: count_in(db, "SELECT count(*) FROM ingest_files") == 1, 20,
                             "the first entries")
            write_journal(self.work, self.journal, export_entries(self.lines[half:]), "late")
            harness.wait_for(lambda: count_in(
                db, "SELECT count(DISTINCT client_addr) FROM sessions WHERE close_us IS NOT NULL"
                    f" AND client_addr IN ('{EMPTY_HELO}', '{LOST}', '{REJECTED}')") == 3,
                             20, "the appended entries")
        finally:
            follower.send_signal(signal.SIGTERM)
            out, err = follower.communicate(timeout=20)
        self.assertEqual(follower.returncode, 0, err)
        self.assertIn("interrupted; run again to resume", out)
        again = smtpscope(db, "ingest", "--journal", "--journal-file", self.journal)
        self.assertIn("already ingested, nothing new", again.stdout)

    def test_a_unit_selects_its_entries(self):
        db = os.path.join(self.dir, "j.db")
        write_journal(self.work, self.journal, export_entries(self.lines), "all")
        result = smtpscope(db, "ingest", "--journal", "--journal-file", self.journal,
                           "--unit", "nothing-here.service")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("remote.journal: no Postfix entries", result.stdout)
        self.assertEqual(harness.query(db, "SELECT count(*) FROM events")[0][0], 0)


class StandardInput(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()

    def tearDown(self):
        self.work.remove()

    def test_stdin_equals_the_file(self):
        source = os.path.join(FIXTURES, "modoboa/mail.log")
        with open(source) as f:
            text = f.read()
        file_db, stdin_db = self.work.join("file.db"), self.work.join("stdin.db")
        from_file = smtpscope(file_db, "ingest", "--year", "2017", source)
        from_stdin = smtpscope(stdin_db, "ingest", "--year", "2017", "--name", "docker-mx", "-",
                               stdin=text)
        self.assertEqual(from_stdin.returncode, 0, from_stdin.stderr)
        self.assertIn("519 lines (224 parsed, 295 skipped, 0 malformed)", from_stdin.stdout)
        self.assertEqual(sessions_of(stdin_db), sessions_of(file_db))
        events = "SELECT stage, time_us, argument, attributes FROM events ORDER BY id"
        self.assertEqual(harness.query(stdin_db, events), harness.query(file_db, events))
        self.assertEqual(harness.query(stdin_db, "SELECT path FROM ingest_files"), [("docker-mx",)])
        again = smtpscope(stdin_db, "ingest", "--year", "2017", "-", stdin=text)
        self.assertIn("already ingested, nothing new", again.stdout)

    def test_stdin_is_committed_while_the_writer_pauses(self):
        db = self.work.join("s.db")
        reader = subprocess.Popen([harness.binary("smtpscope"), "--db", db, "ingest", "-"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: reader.poll() is None and reader.kill())
        now = time.strftime("%b %e %H:%M:%S")
        reader.stdin.write(f"{now} mx postfix/smtpd[7]: connect from a.example[192.0.2.1]\n")
        reader.stdin.flush()
        harness.wait_for(lambda: count_in(db, "SELECT count(*) FROM sessions") == 1, 20,
                         "the first line committed")
        reader.stdin.write(f"{now} mx postfix/smtpd[7]: disconnect from a.example[192.0.2.1]")
        reader.stdin.close()  # the last line has no newline: at EOF it is whole
        out = reader.stdout.read()
        reader.stdout.close()
        reader.wait(timeout=20)
        self.assertEqual(reader.returncode, 0)
        self.assertIn("2 lines (2 parsed", out)
        self.assertEqual(harness.query(db, "SELECT count(*) FROM sessions WHERE close_us IS NOT NULL"),
                         [(1,)])


class CentralSyslog(unittest.TestCase):
    """Two servers' logs in one file, interleaved line by line, with the same
    smtpd pids and clients at the same times: each host's sessions apart."""

    def setUp(self):
        self.work = harness.Workdir()

    def tearDown(self):
        self.work.remove()

    def test_two_hosts_sessions_stay_apart(self):
        def session(host, helo):
            return [f"Nov 16 10:00:0{n} {host} postfix/smtpd[4242]: {text}" for n, text in enumerate([
                "connect from client.example[192.0.2.7]",
                f"NOQUEUE: reject: RCPT from client.example[192.0.2.7]: 554 5.7.1 <x@{host}>: "
                f"Relay access denied; from=<a@b.example> to=<x@{host}> proto=ESMTP helo=<{helo}>",
                "disconnect from client.example[192.0.2.7] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
                if host == "mx1" else
                "disconnect from client.example[192.0.2.7] ehlo=1 quit=1 commands=2"])]
        lines = [line for pair in zip(session("mx1", "one"), session("mx2", "two")) for line in pair]
        path = self.work.join("central.log")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        db = self.work.join("c.db")
        result = smtpscope(db, "ingest", "--year", "2026", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = harness.query(db, """SELECT s.host, group_concat(e.stage, ' ') FROM sessions s
            JOIN (SELECT * FROM events ORDER BY id) e ON e.session_id = s.id
            GROUP BY s.id ORDER BY s.host""")
        self.assertEqual(rows, [("mx1", "connect reject close"), ("mx2", "connect reject close")])
        one = smtpscope(db, "sessions", "--host", "mx1", "--format", "json")
        sessions = json.loads(one.stdout)["sessions"]
        self.assertEqual([s["host"] for s in sessions], ["mx1"])
        text = smtpscope(db, "sessions", "--host", "mx2")
        self.assertIn("on mx2", text.stdout)
        self.assertNotIn("on mx1", text.stdout)


class TimestampForms(unittest.TestCase):
    """One session written in each accepted timestamp form gives the same
    events; a file whose times cannot be read is an error naming them."""

    FORMS = {
        "bsd": "Jun 10 06:27:{s}",
        "bsd_precise": "Jun 10 06:27:{s}.000000",
        "bsd_with_year": "Jun 10 2013 06:27:{s}",
        "year_first": "2013 Jun 10 06:27:{s}.000",
        "rfc3339": "2013-06-10T06:27:{s}.000000+00:00",
        "iso_space": "2013-06-10 06:27:{s}Z",
        "short_iso": "2013-06-10T08:27:{s}+0200",
    }

    def setUp(self):
        self.work = harness.Workdir()

    def tearDown(self):
        self.work.remove()

    def test_every_form_gives_the_same_events(self):
        env = dict(os.environ, TZ="UTC")
        seen = {}
        for name, form in self.FORMS.items():
            path, db = self.work.join(name + ".log"), self.work.join(name + ".db")
            with open(path, "w") as f:
                for s, msg in (("30", "connect from c.example[192.0.2.9]"),
                               ("31", "disconnect from c.example[192.0.2.9]")):
                    f.write(f"{form.format(s=s)} mx postfix/smtpd[9]: {msg}\n")
            result = subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", "--year",
                                     "2013", path], capture_output=True, text=True, env=env)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("2 lines (2 parsed, 0 skipped, 0 malformed)", result.stdout, name)
            seen[name] = harness.query(db, "SELECT stage, time_us FROM events ORDER BY id")
        self.assertEqual(len({tuple(v) for v in seen.values()}), 1, seen)
        self.assertEqual(seen["bsd"][0][1], 1370845650 * 1_000_000)

    def test_unreadable_times_are_counted_and_quoted(self):
        path, db = self.work.join("odd.log"), self.work.join("odd.db")
        with open(path, "w") as f:
            f.write("Jun 10 06:27:30 mx postfix/smtpd[9]: connect from c.example[192.0.2.9]\n")
            f.write("10/06/2013 06:27:31 mx postfix/smtpd[9]: disconnect from c.example[192.0.2.9]\n")
        result = smtpscope(db, "ingest", "--year", "2013", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("1 malformed: a time in no form smtpscope reads; the first: "
                      "\"10/06/2013 06:27:31 mx", result.stdout)

    def test_a_file_of_unreadable_times_is_an_error_naming_the_forms(self):
        path, db = self.work.join("odd.log"), self.work.join("odd.db")
        with open(path, "w") as f:
            f.write("10/06/2013 06:27:31 mx postfix/smtpd[9]: connect from c.example[192.0.2.9]\n")
        result = smtpscope(db, "ingest", path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("no line has a timestamp smtpscope reads; they begin like \"10/06/2013",
                      result.stderr)
        self.assertIn("year first", result.stderr)

    def test_ingest_help_names_every_form(self):
        result = subprocess.run([harness.binary("smtpscope"), "ingest", "--help"],
                                capture_output=True, text=True)
        for words in ("BSD syslog", "year first", "RFC 3339", "short-iso", "short-precise",
                      "--journal", "standard input"):
            self.assertIn(words, result.stdout)


class RealLogs(unittest.TestCase):
    """Whole logs of real servers (tests/fixtures/logs/README.md)."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("relay.db")
        cls.result = smtpscope(cls.db, "ingest", RELAY_LOG)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_the_relay_log_has_no_malformed_line(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        # 95,364 lines; the last has no newline (as in the original) and waits.
        self.assertIn("95364 lines (56398 parsed, 38966 skipped, 0 malformed)", self.result.stdout)

    def test_servers_counts_match_grep(self):
        result = smtpscope(self.db, "servers", "--format", "json")
        servers = json.loads(result.stdout)["servers"]
        # grep -c 'postfix/smtp\[.*status=sent' (deferred, bounced) on the file
        self.assertEqual(sum(s["sent"] for s in servers), 7841)
        self.assertEqual(sum(s["deferred"] for s in servers), 7936)
        self.assertEqual(sum(s["bounced"] for s in servers), 1225)
        by_addr = {(s["server"] or s["name"]): s for s in servers}
        # relay=none, never connected: grep -c 'relay=none.*status=deferred (connect
        # to [^[]*\[69.43.161.182\]:25' (guick.cz, cenrum.cz, emai.cz, ... one address)
        self.assertEqual(by_addr["69.43.161.182"]["deferred"], 237)
        # "Name service error for name=centum.cz type=MX": no address, by name
        self.assertEqual(by_addr["centum.cz"]["deferred"], 92)
        self.assertEqual(len(servers), 988)

    def test_postfix_2_sessions_come_without_counters(self):
        rows = dict(harness.query(self.db, "SELECT stage, count(*) FROM events GROUP BY stage"))
        # grep -c: 8,096 "connect from", 8,096 "disconnect from" (the last line
        # waits: no newline), 7,812 "client=" lines
        self.assertEqual(rows, {"connect": 8096, "close": 8095, "queued": 7812})
        self.assertEqual(harness.query(self.db, "SELECT count(*), count(DISTINCT host) FROM sessions"),
                         [(8096, 1)])

    def test_the_other_real_logs_have_no_malformed_line(self):
        for name, counts in (("real/mchirico-blockbadip-mail.log.gz", "22210 lines (18936 parsed, "
                                                                   "3274 skipped, 0 malformed)"),
                             ("real/monozoide-MailLogSentinel-sample_sasl.log",
                              "139 lines (139 parsed, 0 skipped, 0 malformed)")):
            with self.subTest(name):
                db = self.work.join(os.path.basename(name) + ".db")
                result = smtpscope(db, "ingest", "--year", "2018", os.path.join(FIXTURES, name))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn(counts, result.stdout)


if __name__ == "__main__":
    unittest.main()
