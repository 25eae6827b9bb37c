"""smtpscope ingest: Postfix's own log joined to the milter's and the
policy server's sessions (real private Postfix), real logs from public
sources, resuming, gzip and rotation, and --follow."""
import gzip
import json
import os
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
PROXY, EMPTY_HELO, LOST, REJECTED = "127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"


def ingest(db, *args):
    return subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", *args],
                          capture_output=True, text=True, timeout=120)


def log_attributes(db, client, stage):
    rows = harness.query(db, """SELECT e.attributes FROM events e JOIN sessions s
        ON s.id = e.session_id WHERE s.client_addr = ? AND e.source = 'log' AND e.stage = ?""",
                         client, stage)
    return [json.loads(a) for (a,) in rows]


class LogJoinsTheDaemonsSessions(unittest.TestCase):
    """The foundation scenarios through Postfix with milter and policy
    server, then the maillog: one session per client with all three."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        milter_socket, policy_socket = cls.work.join("m.sock"), cls.work.join("p.sock")
        cls.milter = harness.milter_daemon(cls.work, cls.db, milter_socket).start()
        cls.policy = harness.policy_daemon(cls.work, cls.db, [f"unix:{policy_socket}"]).start()
        cls.postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{milter_socket}",
                                              policy_service=f"unix:{policy_socket}").start()
        scenarios.intercepting_proxy(cls.postfix.port, PROXY, pause=0.5)
        scenarios.empty_helo(cls.postfix.port, EMPTY_HELO)
        scenarios.lost_after_rcpt(cls.postfix.port, LOST)
        scenarios.rejected_recipient(cls.postfix.port, REJECTED)
        for client in (PROXY, EMPTY_HELO, LOST, REJECTED):
            cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
        harness.wait_for_closed(cls.db, [PROXY, EMPTY_HELO, LOST, REJECTED])
        cls.milter.stop()
        cls.policy.stop()
        cls.first = ingest(cls.db, cls.postfix.maillog)
        cls.second = ingest(cls.db, cls.postfix.maillog)

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.work.remove()

    def test_summary_counts_lines(self):
        self.assertEqual(self.first.returncode, 0, self.first.stderr)
        self.assertRegex(self.first.stdout, r"maillog: \d+ lines \(\d+ parsed, \d+ skipped, "
                                            r"0 malformed\)")
        self.assertNotIn("\r", self.first.stdout + self.first.stderr)  # quiet in pipes

    def test_reading_again_adds_nothing(self):
        self.assertIn("already ingested, nothing new", self.second.stdout)

    def test_one_session_per_client_with_all_three_sensors(self):
        for client in (PROXY, EMPTY_HELO, LOST, REJECTED):
            with self.subTest(client=client):
                rows = harness.query(self.db, "SELECT sources, join_method FROM sessions"
                                     " WHERE client_addr = ?", client)
                self.assertEqual(len(rows), 1)
                self.assertEqual(sorted(rows[0][0].split()), ["log", "milter", "policy"])
                self.assertEqual(rows[0][1], "client address+port+time")

    def test_double_rset_session_shows_rset_2(self):
        (close,) = log_attributes(self.db, PROXY, "close")
        self.assertEqual((close["rset"], close["mail"], close["quit"]), ("2", "2", "1"))
        self.assertEqual(len(log_attributes(self.db, PROXY, "queued")), 2)  # two queue files

    def test_empty_helo_session_shows_helo_0_of_1(self):
        (close,) = log_attributes(self.db, EMPTY_HELO, "close")
        self.assertEqual((close["helo"], close["commands"]), ("0/1", "1/2"))

    def test_lost_connection_shows_the_state(self):
        (lost,) = log_attributes(self.db, LOST, "lost")
        self.assertEqual(lost["after"], "RCPT")
        (close,) = log_attributes(self.db, LOST, "close")
        self.assertNotIn("quit", close)

    def test_reject_line_and_noop_count(self):
        (reject,) = log_attributes(self.db, REJECTED, "reject")
        self.assertEqual((reject["action"], reject["command"], reject["code"], reject["to"]),
                         ("reject", "RCPT", "554", harness.REJECTED_RECIPIENT))
        (close,) = log_attributes(self.db, REJECTED, "close")
        self.assertEqual((close["noop"], close["rcpt"]), ("1", "0/1"))

    def test_timeline_shows_the_three_sources(self):
        out = subprocess.run([harness.binary("smtpscope"), "--db", self.db, "sessions",
                              "--client", PROXY], capture_output=True, text=True,
                             check=True).stdout
        self.assertIn("log     disconnect ehlo=1 mail=2 rcpt=2 data=1 rset=2 quit=1", out)
        self.assertIn("milter  C: MAIL FROM:<clerk@corp.example>", out)
        self.assertIn("policy  C: EHLO ws7.corp.example", out)


# Per file: (lines, parsed, skipped, malformed), from reading them once; the
# malformed ones are comment lines, message-only test data and the
# deliberately broken lines of the sergeymakinen sample.
EXPECTED_COUNTS = {
    # 20 of them smtp client status lines; 19 qmgr senders of smtpd's
    # messages (3 more are pickup's) and 1 PTR check.
    "modoboa/mail.log": (519, 224, 295, 0),
    "digineo_postfix_exporter/mail.log": (53, 12, 41, 0),  # + a SASL failure, a PTR check
    "sergeymakinen_postfix_exporter/mail.log": (66, 39, 12, 15),  # the same
    # 88 "# failJSON" comment lines; 14 SASL failures, 1 PTR check
    "fail2ban/postfix": (203, 61, 54, 88),
}


class RealLogs(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")

    def tearDown(self):
        self.work.remove()

    def test_public_logs_are_read_with_pinned_counts(self):
        for name, (lines, parsed, skipped, malformed) in EXPECTED_COUNTS.items():
            with self.subTest(name):
                result = ingest(self.db, "--year", "2017", os.path.join(FIXTURES, name))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn(f"{lines} lines ({parsed} parsed, {skipped} skipped, "
                              f"{malformed} malformed)", result.stdout)

    def test_messages_without_a_syslog_prefix_are_an_error_naming_the_forms(self):
        # Six smtpd messages without timestamps: nothing here is a log line.
        result = ingest(self.db, os.path.join(FIXTURES, "postfix-grok-patterns/POSTFIX_SMTPD.log"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("6 lines (0 parsed, 0 skipped, 6 malformed)", result.stdout)
        self.assertIn("no line has a timestamp smtpscope reads; they begin like \"connect from",
                      result.stderr)

    def test_modoboa_stages(self):
        ingest(self.db, "--year", "2017", os.path.join(FIXTURES, "modoboa/mail.log"))
        stages = dict(harness.query(self.db, "SELECT stage, count(*) FROM events GROUP BY stage"))
        # Counted with grep on the file: 36 "connect from" + 23 postscreen
        # CONNECT, 38 "disconnect from" + 6 postscreen DISCONNECT + 2 HANGUP,
        # 19 "QID: client=" + 19 "NOQUEUE: client=" (before-queue filter), 6
        # rejects, 23 other postscreen verdicts, 11 smtpd TLS lines, 1 timeout.
        self.assertEqual(stages, {"connect": 59, "close": 46, "queued": 38, "reject": 6,
                                  "screen": 23, "tls": 11, "timeout": 1})
        # postscreen and smtpd halves joined: 23 passes, of which 6 (PASS NEW
        # after postscreen's own RCPT reject) end in postscreen's DISCONNECT;
        # the 17 others are one session each with their smtpd part. Only the
        # two sessions whose connect predates the file are partial; none is open.
        both = harness.query(self.db, """SELECT count(*) FROM sessions s WHERE
            EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id
                    AND json_extract(e.attributes, '$.program') = 'postfix/postscreen')
            AND EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id
                    AND json_extract(e.attributes, '$.program') = 'postfix/smtpd')""")
        self.assertEqual(both[0][0], 17)
        self.assertEqual(harness.query(self.db, "SELECT count(*), sum(partial),"
                                                " sum(close_us IS NULL) FROM sessions"),
                         [(44, 2, 0)])
        # Times are in 2017 and in order within a session.
        (first, last) = harness.query(self.db, "SELECT min(time_us), max(time_us) FROM events")[0]
        self.assertEqual(time.gmtime(first / 1e6).tm_year, 2017)
        self.assertLess(last - first, 86400 * 1e6)

    def test_gzip_and_a_renamed_copy_are_recognised(self):
        source = os.path.join(FIXTURES, "modoboa/mail.log")
        rotated = self.work.join("mail.log.1.gz")
        with open(source, "rb") as f, gzip.open(rotated, "wb") as out:
            out.write(f.read())
        first = ingest(self.db, "--year", "2017", rotated)
        self.assertIn("519 lines (224 parsed", first.stdout)
        again = ingest(self.db, "--year", "2017", source)  # same content, plain, other name
        self.assertIn("already ingested, nothing new", again.stdout)

    def test_a_growing_file_resumes_where_it_stopped(self):
        source = os.path.join(FIXTURES, "modoboa/mail.log")
        with open(source, "rb") as f:
            content = f.read()
        growing = self.work.join("mail.log")
        cut = content.index(b"\n", len(content) // 2) + 40  # inside a line
        with open(growing, "wb") as f:
            f.write(content[:cut])
        first = ingest(self.db, "--year", "2017", growing)
        self.assertIn("the last line has no end yet", first.stdout)
        with open(growing, "ab") as f:
            f.write(content[cut:])
        second = ingest(self.db, "--year", "2017", growing)
        self.assertRegex(second.stdout, r"resumed at byte \d+")
        resumed = harness.query(self.db, "SELECT count(*) FROM events")[0][0]
        whole_db = self.work.join("whole.db")
        ingest(whole_db, "--year", "2017", source)
        self.assertEqual(resumed, harness.query(whole_db, "SELECT count(*) FROM events")[0][0])
        (lines,) = harness.query(self.db, "SELECT lines FROM ingest_files")[0]
        self.assertEqual(lines, 519)

    def test_follow_reads_on_across_rotation(self):
        log = self.work.join("mail.log")
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
        line = "{} mx postfix/smtpd[{}]: connect from unknown[192.0.2.{}]:{}\n"
        with open(log, "w") as f:
            f.write(line.format(stamp, 100, 1, 1001))
        follower = subprocess.Popen([harness.binary("smtpscope"), "--db", self.db, "ingest",
                                     "--follow", log], stdout=subprocess.PIPE, text=True)
        try:
            def count():
                try:  # the follower may still be creating the database
                    return harness.query(self.db, "SELECT count(*) FROM events")[0][0]
                except sqlite3.OperationalError:
                    return 0
            harness.wait_for(lambda: count() == 1, 10, "the first line")
            with open(log, "a") as f:
                f.write(line.format(stamp, 100, 2, 1002))
            harness.wait_for(lambda: count() == 2, 10, "an appended line")
            os.rename(log, log + ".1")  # rotation: a new file under the old name
            with open(log, "w") as f:
                f.write(line.format(stamp, 200, 3, 1003))
            harness.wait_for(lambda: count() == 3, 10, "the rotated file's line")
        finally:
            follower.send_signal(signal.SIGTERM)
            out, _ = follower.communicate(timeout=15)
        self.assertEqual(follower.returncode, 0)
        self.assertIn("3 lines (3 parsed", out)
        addresses = [a for (a,) in harness.query(self.db, "SELECT client_addr FROM sessions"
                                                 " ORDER BY client_addr")]
        self.assertEqual(addresses, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])


def recent_stamp(seconds_ago=3600):
    return time.strftime("%b %d %H:%M:%S", time.localtime(time.time() - seconds_ago))


def connect_line(stamp, addr, name="unknown", pid=7):
    return f"{stamp} mx postfix/smtpd[{pid}]: connect from {name}[{addr}]:25\n"


def run_measured(args):
    """Runs a command; returns (exit code, stdout, stderr, peak RSS in KiB)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, out, err, usage.ru_maxrss


def real_fixture(name):
    return os.path.join(FIXTURES, "real", name)


class LogFacts(unittest.TestCase):
    """What smtpd, cleanup and qmgr log beyond the session's commands, on the
    real logs (counts taken with grep on the fixtures): failed AUTH, failed
    TLS, the PTR check, content rejects and qmgr's senders, each joined to
    the session it belongs to."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.dbs = {}
        for name in ("mchirico-blockbadip-mail.log.gz", "monozoide-MailLogSentinel-sample_sasl.log",
                     "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz"):
            db = cls.work.join(name + ".db")
            result = ingest(db, "--year", "2018", real_fixture(name))
            assert result.returncode == 0, result.stderr
            cls.dbs[name.split("-")[0]] = db

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def count(self, db, where):
        return harness.query(db, "SELECT count(*) FROM events WHERE " + where)[0][0]

    def test_sasl_failures_are_rejects_of_auth_in_their_session(self):
        db = self.dbs["mchirico"]
        # grep -c 'SASL [A-Za-z]* authentication failed': 373 LOGIN, 2693 PLAIN, 23 login, 1 Plain
        rows = dict(harness.query(db, """SELECT json_extract(attributes, '$.sasl_method'), count(*)
            FROM events WHERE stage = 'reject' AND json_extract(attributes, '$.action') = 'auth-failed'
            AND json_extract(attributes, '$.command') = 'AUTH'
            AND json_extract(attributes, '$.outcome') = 'failed' GROUP BY 1"""))
        self.assertEqual(rows, {"LOGIN": 373, "PLAIN": 2693, "login": 23, "Plain": 1})
        # Every one joined the smtpd session of its process (the file's first
        # line is one, of a session whose connect predates the file): none
        # opened a session of its own.
        self.assertEqual(harness.query(db, """SELECT s.partial, count(*) FROM events e
            JOIN sessions s ON s.id = e.session_id
            WHERE json_extract(e.attributes, '$.action') = 'auth-failed' GROUP BY 1"""),
                         [(0, 3089), (1, 1)])
        self.assertEqual(harness.query(db, "SELECT count(*) FROM sessions")[0][0], 4089)

    def test_sasl_failures_alone_make_partial_sessions(self):
        # monozoide's sample holds only the SASL lines (no connect, no
        # disconnect): one session per smtpd process and client, partial
        # (its connect unseen) and open (its end unseen), each with the user name.
        db = self.dbs["monozoide"]
        self.assertEqual(harness.query(db, "SELECT count(*), sum(partial), sum(close_us IS NULL)"
                                           " FROM sessions"), [(139, 139, 139)])
        self.assertEqual(self.count(db, "stage = 'reject' AND json_extract(attributes, "
                                        "'$.sasl_username') IS NOT NULL"), 139)
        self.assertEqual(self.count(db, "stage <> 'reject'"), 0)
        self.assertEqual(harness.query(db, """SELECT json_extract(attributes, '$.sasl_username'),
            argument FROM events WHERE json_extract(attributes, '$.client_addr') = '119.207.78.191'
            """), [("admin@domain.tld", "(reason unavailable)")])

    def test_tls_failures(self):
        db = self.dbs["mchirico"]
        self.assertEqual(self.count(db, "stage = 'tls' AND json_extract(attributes, '$.outcome')"
                                        " = 'failed'"), 59)  # SSL_accept error
        self.assertEqual(self.count(db, "stage = 'lost' AND json_extract(attributes, '$.tls')"
                                        " = 'failed'"), 20)  # lost connection after STARTTLS

    def test_ptr_checks_are_on_the_connect(self):
        db = self.dbs["mchirico"]
        # 3563 "does not resolve to address": 3554 with a resolver error, 9 without.
        checks = dict(harness.query(db, """SELECT json_extract(attributes, '$.ptr_check'), count(*)
            FROM events WHERE stage = 'connect' AND json_extract(attributes, '$.ptr_check')
            IS NOT NULL GROUP BY 1"""))
        self.assertEqual(checks, {"unresolved": 3554, "mismatch": 9})
        self.assertEqual(harness.query(db, """SELECT client_name, client_ptr FROM sessions
            WHERE client_addr = '188.126.223.106' AND client_ptr IS NOT NULL GROUP BY 1, 2"""),
                         [("unknown", "cm-188.126.223.106.getinternet.no")])
        self.assertEqual(harness.query(db, "SELECT count(*) FROM sessions WHERE client_ptr"
                                           " IS NOT NULL")[0][0], 3563)

    def test_content_rejects_join_the_session_of_their_queue_id(self):
        db = self.dbs["mchirico"]
        rows = harness.query(db, """SELECT e.argument, json_extract(e.attributes, '$.dsn'),
            json_extract(e.attributes, '$.program'),
            (SELECT count(*) FROM events q WHERE q.session_id = e.session_id AND q.stage = 'queued'
             AND json_extract(q.attributes, '$.queue_id') = json_extract(e.attributes, '$.queue_id'))
            FROM events e WHERE e.stage = 'reject' AND json_extract(e.attributes, '$.command')
            = 'header' AND json_extract(e.attributes, '$.action') = 'reject'""")
        self.assertEqual(len(rows), 22)  # grep -c 'cleanup.*: reject: header'
        self.assertEqual(self.count(db, "stage = 'reject' AND json_extract(attributes, '$.action')"
                                        " = 'discard'"), 1)  # and one 'discard: header'
        self.assertEqual({(dsn, program, queued) for _, dsn, program, queued in rows},
                         {("5.7.1", "postfix/cleanup", 1)})
        # The rejected header: 14 Received: and 8 From: lines.
        self.assertEqual(sorted(header.split(":")[0] for header, *_ in rows),
                         ["From"] * 8 + ["Received"] * 14)

    def test_qmgr_names_the_sender_of_the_queued_message(self):
        # mchirico: 58 qmgr "from=<", 8 of them pickup's (no smtpd session);
        # the relay log: every one of its 7812 queued messages, 4962 of them
        # logged by qmgr after smtpd's disconnect.
        for name, named in (("mchirico", 50), ("FgForrest", 7812)):
            with self.subTest(name):
                db = self.dbs[name]
                self.assertEqual(self.count(db, "stage = 'queued' AND json_extract(attributes,"
                                                " '$.from') IS NOT NULL"), named)
                self.assertEqual(self.count(db, "stage = 'mail'"), 0)
        self.assertEqual(harness.query(self.dbs["mchirico"], """SELECT json_extract(attributes,
            '$.from'), json_extract(attributes, '$.size') FROM events WHERE stage = 'queued'
            AND json_extract(attributes, '$.queue_id') = '2B8F93EC27'"""),
                         [("s-2kexcxjfuerqyqhuqxgwbbkqvzdnzp7gc0cwso63dz3d8fz5cjbsbqzm"
                           "@bounce.linkedin.com", "27210")])
        # No session of its own for any of them.
        self.assertEqual(harness.query(self.dbs["FgForrest"], "SELECT count(*) FROM sessions")[0][0],
                         8096)


class HostileLogs(unittest.TestCase):
    """Bounds and edge cases of the log itself (issue 13): long lines, times
    out of range, months out of order, cut gzip files, odd reject details."""

    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.log = self.work.join("mail.log")

    def tearDown(self):
        self.work.remove()

    def write(self, text, mode="w"):
        with open(self.log, mode) as f:
            f.write(text)

    def addresses(self):
        return [a for (a,) in harness.query(self.db, "SELECT client_addr FROM sessions"
                                            " ORDER BY client_addr")]

    def test_lines_are_bounded_at_the_configured_length(self):
        limit = 65536  # ingest.max_line_bytes by default
        stamp = recent_stamp()
        lines = []
        for n, length in enumerate((limit - 1, limit, limit + 1), start=1):
            head = f"{stamp} mx postfix/smtpd[7]: connect from "
            tail = f"[192.0.2.{n}]:25"
            lines.append(head + "a" * (length - len(head) - len(tail)) + tail)
            self.assertEqual(len(lines[-1]), length)
        self.write("\n".join(lines) + "\n" + connect_line(stamp, "192.0.2.4"))
        first = ingest(self.db, self.log)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("4 lines (3 parsed, 0 skipped, 1 malformed)", first.stdout)
        self.assertIn("1 malformed: longer than 65536 bytes (ingest.max_line_bytes), skipped",
                      first.stdout)
        self.assertEqual(self.addresses(), ["192.0.2.1", "192.0.2.2", "192.0.2.4"])
        self.assertIn("already ingested, nothing new", ingest(self.db, self.log).stdout)

    def test_a_huge_line_costs_bounded_memory_and_is_not_read_again(self):
        stamp = recent_stamp()
        chunk = "x" * (1 << 20)
        with open(self.log, "w") as f:
            f.write(connect_line(stamp, "192.0.2.1"))
            for _ in range(100):  # 100 MiB, no newline yet
                f.write(chunk)
        small = self.work.join("small.log")
        with open(small, "w") as f:
            f.write(connect_line(stamp, "192.0.2.1"))
        *_, baseline_kib = run_measured([harness.binary("smtpscope"), "--db",
                                         self.work.join("small.db"), "ingest", small])
        code, out, err, peak_kib = run_measured(
            [harness.binary("smtpscope"), "--db", self.db, "ingest", self.log])
        self.assertEqual(code, 0, err)
        self.assertIn("2 lines (1 parsed, 0 skipped, 1 malformed)", out)
        self.assertNotIn("no end yet", out)  # skipped, not held back
        # The same as for a one-line file (sanitizer builds start higher), give or take a
        # few read buffers: not the line's 100 MiB.
        self.assertLess(peak_kib - baseline_kib, 16 * 1024,
                        f"peak RSS {peak_kib} KiB over a 100 MiB line, {baseline_kib} KiB "
                        "for one line")
        started = time.monotonic()
        again = ingest(self.db, self.log)
        self.assertIn("already ingested, nothing new", again.stdout)
        self.assertLess(time.monotonic() - started, 10)
        # The line ends later: its rest is skipped without counting it again.
        self.write("tail of the long line\n" + connect_line(stamp, "192.0.2.2"), "a")
        third = ingest(self.db, self.log)
        self.assertIn("1 lines (1 parsed, 0 skipped, 0 malformed)", third.stdout)
        self.assertEqual(self.addresses(), ["192.0.2.1", "192.0.2.2"])
        (malformed,) = harness.query(self.db, "SELECT malformed FROM ingest_files")[0]
        self.assertEqual(malformed, 1)

    def test_year_is_the_given_one_when_months_go_back(self):
        text = "".join(connect_line(f"{month} 03 01:00:00", f"192.0.2.{n}")
                       for n, month in enumerate(("Nov", "Jan", "Nov", "Dec", "Jan"), start=1))
        self.write(text)
        result = ingest(self.db, "--year", "2020", self.log)
        self.assertEqual(result.returncode, 0, result.stderr)
        years = [time.localtime(t / 1e6).tm_year for (t,) in harness.query(
            self.db, "SELECT min(e.time_us) FROM events e JOIN sessions s ON s.id = e.session_id"
                     " GROUP BY s.client_addr ORDER BY s.client_addr")]
        # Nov, Jan (out of order: same year), Nov, Dec, then Jan after December.
        self.assertEqual(years, [2020, 2020, 2020, 2020, 2021])
        # Without --year the file's mtime anchors the first line.
        other_db = self.work.join("mtime.db")
        self.write(text[:text.index("Dec")].rsplit("\n", 1)[0] + "\n")  # Nov, Jan, Nov
        november = time.mktime((2020, 11, 25, 12, 0, 0, 0, 0, -1))
        os.utime(self.log, (november, november))
        ingest(other_db, self.log)
        (last,) = harness.query(other_db, "SELECT max(time_us) FROM events")[0]
        self.assertEqual(time.localtime(last / 1e6).tm_year, 2020)

    def test_times_out_of_range_are_refused_and_counted(self):
        self.write("9999-12-31T23:59:59Z mx postfix/smtpd[1]: connect from x[192.0.2.9]:25\n"
                   "1985-01-01T00:00:00Z mx postfix/smtpd[1]: connect from x[192.0.2.8]:25\n"
                   + connect_line(recent_stamp(), "192.0.2.1"))
        result = ingest(self.db, self.log)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("3 lines (1 parsed, 0 skipped, 2 malformed)", result.stdout)
        self.assertIn("2 malformed: dated before 1990 or more than 3 days ahead, refused; the "
                      "first: \"9999-12-31T23:59:59Z mx postfix/smtpd[1]: connect from "
                      "x[192.0.2.9]:25\"", result.stdout)
        self.assertEqual(self.addresses(), ["192.0.2.1"])

    def test_a_cut_gzip_keeps_its_complete_lines_and_fails(self):
        stamp = recent_stamp()
        text = "".join(connect_line(stamp, f"10.0.{n // 250}.{n % 250}") for n in range(5000))
        whole = gzip.compress(text.encode())
        cut = self.work.join("mail.log.2.gz")
        with open(cut, "wb") as f:
            f.write(whole[:len(whole) // 2])
        self.assertNotEqual(subprocess.run(["gzip", "-t", cut], capture_output=True).returncode, 0)
        result = ingest(self.db, cut)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("the gzip data is cut short (unexpected end of file", result.stderr)
        self.assertNotIn("no end yet", result.stdout)
        kept = harness.query(self.db, "SELECT count(*) FROM sessions")[0][0]
        self.assertRegex(result.stdout, rf"{kept} lines \({kept} parsed, 0 skipped, 0 malformed\)")
        self.assertGreater(kept, 0)
        self.assertLess(kept, 5000)

    def test_reject_details_and_client_names_keep_their_brackets(self):
        stamp = recent_stamp()
        self.write(f"{stamp} mx postfix/smtpd[7]: connect from a[b[192.0.2.5]:25\n"
                   f"{stamp} mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from a[b[192.0.2.5]:25: "
                   "554 5.7.1 <r@x.example>: Recipient address rejected: no; "
                   "from=<\"a>b\"@x> to=<r@x.example> proto=ESMTP "
                   "helo=<<script>alert(1)</script>>\n")
        result = ingest(self.db, self.log)
        self.assertIn("2 lines (2 parsed, 0 skipped, 0 malformed)", result.stdout)
        self.assertEqual(self.addresses(), ["192.0.2.5"])
        (reject,) = log_attributes(self.db, "192.0.2.5", "reject")
        self.assertEqual((reject["from"], reject["to"], reject["helo"], reject["client_name"]),
                         ('"a>b"@x', "r@x.example", "<script>alert(1)</script>", "a[b"))

    def test_follow_sees_a_truncation_the_file_outgrew_within_one_poll(self):
        stamp = recent_stamp(60)
        first = connect_line(stamp, "10.0.0.0", pid=100)
        self.write(first + "".join(connect_line(stamp, f"10.0.0.{n}", pid=100)
                                   for n in range(1, 10)))
        follower = subprocess.Popen([harness.binary("smtpscope"), "--db", self.db, "ingest",
                                     "--follow", self.log], stdout=subprocess.PIPE, text=True)
        try:
            def count():
                try:
                    return len(self.addresses())
                except sqlite3.OperationalError:
                    return 0
            harness.wait_for(lambda: count() == 10, 10, "the first ten lines")
            time.sleep(0.1)
            # Stopped, it cannot poll: the truncation and the 300 new lines
            # (same first line, far past the old position) land in one poll.
            follower.send_signal(signal.SIGSTOP)
            with open(self.log, "r+") as f:
                f.truncate(0)
                f.write(first + "".join(connect_line(stamp, f"10.1.{n // 250}.{n % 250}", pid=200)
                                        for n in range(299)))
            follower.send_signal(signal.SIGCONT)
            harness.wait_for(lambda: count() == 309, 10, "the rewritten file's lines")
        finally:
            follower.send_signal(signal.SIGCONT)
            follower.send_signal(signal.SIGTERM)
            out, _ = follower.communicate(timeout=15)
        self.assertEqual(follower.returncode, 0)
        self.assertIn("310 lines (310 parsed, 0 skipped, 0 malformed)", out)
        new = [a for a in self.addresses() if a.startswith("10.1.")]
        self.assertEqual(len(new), 299)


if __name__ == "__main__":
    unittest.main()
