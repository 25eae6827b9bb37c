"""A real server's log, read alone (no milter, no policy server): the
mchirico/blockbadip mail.log (tests/fixtures/logs/real, MIT), Feb 2018,
Postfix 3.1, 4,089 sessions of 115 clients, mostly a SASL brute-forcer on
port 465. Pins the diagnosis of named clients, that ordinary senders get
none and rank below every named one, and that `report` and `clients` agree.

Before log-only stages existed, 19 of the 4,089 sessions (14 of 115
clients) had a pattern; the counts below are the floor now. The log's
facts beyond the commands (failed AUTH and TLS, content rejects, qmgr's
senders, the PTR check) are pinned here too, with the monozoide sample (SASL
failure lines alone) and the Postfix 2.x relay log (docs/real-logs.md)."""
import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

REAL = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real")
LOG = "mchirico-blockbadip-mail.log"

BRUTE_FORCER = "84.38.130.207"  # postfix/smtps/smtpd: ehlo=1 auth=0/1, lost after AUTH
TEMP_REJECTED = "201.116.15.183"  # 450 4.7.1 Helo command rejected: Host not found
SCANNER = "66.240.192.138"  # lost connection after CONNECT / EHLO
SCANNED_THEN_GUESSED = "5.39.223.84"  # 3 scanner sessions, then 3 auth-guessing
NON_SMTP = "182.101.61.159"  # unknown=0/1 commands=0/1
ORDINARY = ["209.85.128.177", "198.49.66.250", "100.34.255.15"]  # deliver, no pattern
PTR_MISMATCH = "198.49.66.250"  # hostname server1.hostname.com does not resolve to address ...
CONTENT_REJECTED = "65.254.18.118"  # cleanup: reject: header Received: ... 5.7.1 Looks like spam
TLS_FAILED = "138.68.245.91"  # SSL_accept error ... Connection reset by peer, lost after CONNECT


smtpscope = functools.partial(harness.smtpscope, check=True)


def copy_fixture(workdir):
    """The log into the test's own directory, from the plain or gzip'd copy."""
    target = os.path.join(workdir, LOG)
    plain = os.path.join(REAL, LOG)
    if os.path.exists(plain):
        shutil.copyfile(plain, target)
    else:
        with gzip.open(plain + ".gz", "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    return target


class RealServerLogAlone(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        smtpscope(cls.db, "ingest", "-q", "--year", "2018", copy_fixture(cls.work.path))
        cls.clients = json.loads(smtpscope(cls.db, "clients", "--format", "json").stdout)["clients"]
        cls.by_address = {c["client"]: c for c in cls.clients}

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def top_pattern(self, client):
        patterns = self.by_address[client]["patterns"]
        return patterns[0]["name"] if patterns else None

    def test_the_brute_forcer_is_named_auth_guessing_and_ranks_near_the_top(self):
        self.assertEqual(self.top_pattern(BRUTE_FORCER), "auth-guessing")
        self.assertGreater(self.by_address[BRUTE_FORCER]["patterns"][0]["sessions"], 3400)
        # First: above every client that only guessed passwords (they guessed
        # less) and above the 6-session client that scanned, then began
        # guessing (it ranked first, 6.16 against 6.08: volume weighed too
        # little; issue 14 item 7).
        ranked = [c["client"] for c in self.clients]
        self.assertEqual(ranked[0], BRUTE_FORCER)
        self.assertGreater(ranked.index(SCANNED_THEN_GUESSED), ranked.index(BRUTE_FORCER))
        score = self.by_address[BRUTE_FORCER]["anomaly"]["score"]
        guessers = [c for c in self.clients
                    if [p["name"] for p in c["patterns"]] == ["auth-guessing"]]
        self.assertGreater(len(guessers), 10)
        for client in guessers:
            self.assertLess(client["anomaly"]["score"], score, client["client"])

    def test_each_real_world_shape_is_named(self):
        self.assertEqual(self.top_pattern(TEMP_REJECTED), "temp-rejected")
        self.assertEqual(self.top_pattern(SCANNER), "scanner")
        self.assertEqual(self.top_pattern(NON_SMTP), "non-smtp-speaker")

    def test_client_timing_is_shown(self):
        # The temp-rejected MTA comes back on its queue schedule: mostly
        # every ~600 s, twice after ~300 s, once after 5 s; the mean interval
        # (kept as running sums, issue 14 item 5) is ~560 s.
        timing = self.by_address[TEMP_REJECTED]["timing"]
        self.assertEqual(timing["text"], "every ~9 min")
        report = smtpscope(self.db, "report", "--client", TEMP_REJECTED).stdout
        self.assertIn("Timing: every ~9 min\n", report)

    def test_ordinary_senders_get_no_pattern_and_rank_below_every_named_client(self):
        named = [c["anomaly"]["score"] for c in self.clients if c["patterns"]]
        for address in ORDINARY:
            client = self.by_address[address]
            self.assertEqual(client["patterns"], [], address)
            self.assertGreater(client["delivered"], 0, address)
            self.assertLess(client["anomaly"]["score"], min(named), address)
            reasons = [r["reason"] for r in client["anomaly"]["reasons"]]
            if address == PTR_MISMATCH:  # its one quirk, the PTR check's (below the pattern tier)
                self.assertEqual(reasons, ["HELO quirk ptr-mismatch (in 0% of all sessions)"])
            else:
                self.assertEqual(client["anomaly"]["score"], 0.0, address)
        self.assertGreater(min(named), 0.0)

    def test_the_ptr_check_is_a_name_quirk(self):
        # 3554 "hostname H does not resolve to address A: REASON", 9 without
        # a reason (H resolves, not to A): unresolved-name, ptr-mismatch.
        self.assertEqual(self.by_address[PTR_MISMATCH]["helo_quirks"], ["ptr-mismatch"])
        self.assertIn("unresolved-name", self.by_address[BRUTE_FORCER]["helo_quirks"])
        quirks = dict(harness.query(self.db, """SELECT q, count(*) FROM (
            SELECT 'ptr-mismatch' AS q FROM session_analysis WHERE ' ' || helo_quirks || ' '
              LIKE '% ptr-mismatch %'
            UNION ALL SELECT 'unresolved-name' FROM session_analysis WHERE ' ' || helo_quirks
              || ' ' LIKE '% unresolved-name %') GROUP BY q"""))
        self.assertEqual(quirks, {"ptr-mismatch": 9, "unresolved-name": 3554})

    def test_qmgr_names_the_sender_of_delivered_mail(self):
        # Before, a delivered log-only transaction's sender was unknown
        # (null_sender null); qmgr's "QID: from=<S>" now settles it.
        report = json.loads(smtpscope(self.db, "report", "--client", "209.85.128.177",
                                      "--format", "json").stdout)
        delivered = [s for s in report["session_details"] if s["stages"].endswith("D E Q")]
        self.assertTrue(delivered)
        for session in delivered:
            self.assertIs(session["null_sender"], False)
            self.assertEqual(len(session["senders"]), session["transactions"])
            self.assertNotIn("the smtpd log does not name the sender", " ".join(session["notes"]))

    def test_content_rejects_are_counted_and_named(self):
        # 14 sessions, each one message whose Received: header cleanup refused.
        client = self.by_address[CONTENT_REJECTED]
        self.assertEqual(self.top_pattern(CONTENT_REJECTED), "content-rejected")
        self.assertEqual(client["patterns"][0]["sessions"], 14)
        report = json.loads(smtpscope(self.db, "report", "--client", CONTENT_REJECTED, "--format",
                                      "json").stdout)
        for session in report["session_details"]:
            self.assertIn("1 message refused for its content (cleanup or a milter)",
                          session["notes"])
            self.assertIs(session["null_sender"], False)  # cleanup's line names the sender
        text = smtpscope(self.db, "report", "--client", CONTENT_REJECTED).stdout
        self.assertIn("log     reject header Received: from mail1.jobdivabk.com", text)
        self.assertIn("   S: 5.7.1 Looks like spam to me.", text)
        self.assertIn("1 mail transaction (0 delivered, 1 not), counted from the log's counters",
                      text)

    def test_failed_tls_handshakes_are_scanner_evidence(self):
        # smtps (wrapper mode): SSL_accept error, then lost after CONNECT.
        self.assertEqual(self.top_pattern(TLS_FAILED), "scanner")
        report = json.loads(smtpscope(self.db, "report", "--client", TLS_FAILED, "--format",
                                      "json").stdout)
        self.assertIn("TLS handshake failed: Connection reset by peer",
                      report["session_details"][0]["notes"])
        text = smtpscope(self.db, "report", "--client", TLS_FAILED).stdout
        self.assertIn("log     TLS handshake failed: Connection reset by peer\n", text)

    def test_stages_and_transactions_come_from_the_counters(self):
        report = json.loads(smtpscope(self.db, "report", "--client", TEMP_REJECTED, "--format",
                                      "json").stdout)
        stages = {s["stages"] for s in report["session_details"]}
        self.assertIn("C H H M J A Q", stages)  # ehlo=2 starttls=1 mail=1 rcpt=0/1 quit=1
        self.assertEqual(report["transactions"], 51)
        self.assertEqual(report["aborted"], 51)
        first = report["session_details"][0]
        self.assertIn("no milter events: stages rebuilt from the log's counters", first["notes"])
        # The reject line names the sender: known, not the null sender.
        self.assertEqual(first["null_sender"], False)
        self.assertEqual(len(first["senders"]), 1)
        # The brute-forcer's sessions name no sender: unknown, and said so.
        guess = json.loads(smtpscope(self.db, "report", "--client", BRUTE_FORCER, "--format",
                                     "json").stdout)
        lost = [s for s in guess["session_details"]
                if s["stages"].startswith("C H") and s["stages"].endswith(" L")
                and "M" not in s["stages"]][0]  # C H +15s L
        self.assertEqual(lost["transactions"], 0)
        self.assertEqual(lost["lost_after"], "AUTH")

    def test_report_and_clients_give_the_same_score_and_reasons(self):
        for client in self.clients[:5] + [self.by_address[a] for a in ORDINARY]:
            report = json.loads(smtpscope(self.db, "report", "--client", client["client"],
                                          "--format", "json").stdout)
            self.assertEqual(report["anomaly"], client["anomaly"], client["client"])

    def test_most_sessions_and_clients_are_named(self):
        sessions = sum(c["sessions"] for c in self.clients)
        self.assertEqual(sessions, 4089)
        rows = harness.query(self.db, "SELECT count(*) FROM session_analysis WHERE patterns != ''")
        self.assertGreaterEqual(rows[0][0], 4037)  # before: 19 (docs/real-logs.md)
        self.assertGreaterEqual(len([c for c in self.clients if c["patterns"]]), 79)  # before: 14


class SaslFailuresAlone(unittest.TestCase):
    """The monozoide sample (tests/fixtures/logs/real, GPL-3.0): 139 "SASL
    LOGIN authentication failed" lines grepped from a real server, no
    connect, no disconnect, 139 addresses (a distributed guesser rotating
    addresses over ten user names). Without disconnect counters the failures
    themselves are counted (auth=0/N): every client is named auth guessing
    (before: no pattern, and before the SASL lines were parsed, no client)."""

    LOG = "monozoide-MailLogSentinel-sample_sasl.log"

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        log = cls.work.join(cls.LOG)
        shutil.copyfile(os.path.join(REAL, cls.LOG), log)
        smtpscope(cls.db, "ingest", "-q", "--year", "2018", log)
        cls.clients = json.loads(smtpscope(cls.db, "clients", "--format", "json").stdout)["clients"]

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_every_client_is_named_auth_guessing(self):
        self.assertEqual(len(self.clients), 139)
        for client in self.clients:
            self.assertEqual([p["name"] for p in client["patterns"]], ["auth-guessing"],
                             client["client"])
            self.assertGreater(client["anomaly"]["score"], 0)
        text = smtpscope(self.db, "clients").stdout
        self.assertEqual(len([line for line in text.splitlines()
                              if line.endswith(" auth-guessing")]), 139)

    def test_the_report_says_where_the_count_comes_from(self):
        report = smtpscope(self.db, "report", "--client", "119.207.78.191").stdout
        self.assertIn("note: no disconnect counters: auth=0/1 counted from the log's SASL failure"
                      " lines", report)
        self.assertIn("log     AUTH LOGIN failed (user admin@domain.tld): (reason unavailable)",
                      report)


class Postfix2RelayLog(unittest.TestCase):
    """The FgForrest relay log (tests/fixtures/logs/real, LGPL-2.1-or-later):
    Postfix 2.x, no disconnect counters; each "QID: client=" line is a
    transaction, qmgr's "QID: from=<S>" its sender."""

    LOG = "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz"
    RELAYED = "81.95.110.19"

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        smtpscope(cls.db, "ingest", "-q", "--year", "2013", os.path.join(REAL, cls.LOG))

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_transactions_are_counted_and_their_senders_known(self):
        report = json.loads(smtpscope(self.db, "report", "--client", self.RELAYED, "--format",
                                      "json").stdout)
        with_mail = [s for s in report["session_details"] if s["transactions"] > 0]
        self.assertGreater(len(with_mail), 900)
        for session in with_mail:
            self.assertIs(session["null_sender"], False, session["id"])
            self.assertEqual(len(session["senders"]), session["transactions"])
            self.assertIn("their senders are qmgr's (or cleanup's)", session["notes"][0])

    def test_the_timeline_counts_them_from_queue_ids(self):
        text = smtpscope(self.db, "report", "--client", self.RELAYED).stdout
        self.assertIn("  1 mail transaction (1 delivered, 0 not), counted from the log's queue ids\n",
                      text)
        # Never "no mail transaction" under a session whose stages show one.
        for block in text.split("\n\n"):
            if "[C M R D E" in block:
                self.assertNotIn("no mail transaction", block)



class LocalReinjection(unittest.TestCase):
    """Issue 14 item 1: the modoboa log (tests/fixtures/logs/modoboa), where
    amavis hands each message back to Postfix from localhost[127.0.0.1]
    (xforward=1 in the disconnect counters): the content filter is not a
    client to rank; clients, correlate and the overview leave it out and say
    so, --include-local shows it."""

    LOCAL = "127.0.0.1"

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        log = cls.work.join("mail.log")
        shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs",
                                     "modoboa", "mail.log"), log)
        smtpscope(cls.db, "ingest", "-q", "--year", "2017", log)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    NOTE = "1 local client (content-filter reinjection from 127.0.0.1 or ::1) left out"

    def test_clients_leave_the_reinjection_out_and_say_so(self):
        listed = smtpscope(self.db, "clients", "--format", "json")
        clients = [c["client"] for c in json.loads(listed.stdout)["clients"]]
        self.assertNotIn(self.LOCAL, clients)
        self.assertGreater(len(clients), 10)
        self.assertIn(self.NOTE, listed.stderr)
        text = smtpscope(self.db, "clients").stdout
        self.assertFalse([line for line in text.splitlines() if line.startswith(self.LOCAL)])
        self.assertIn(self.NOTE + "; --include-local shows it\n", text)

    def test_include_local_shows_it(self):
        listed = smtpscope(self.db, "clients", "--format", "json", "--include-local")
        by_address = {c["client"]: c for c in json.loads(listed.stdout)["clients"]}
        self.assertEqual(by_address[self.LOCAL]["sessions"], 22)
        self.assertNotIn("left out", listed.stderr)
        # Asked for by name, the report shows it without the flag.
        report = json.loads(smtpscope(self.db, "report", "--client", self.LOCAL, "--format",
                                      "json").stdout)
        self.assertEqual(report["sessions"], 22)

    def test_correlate_and_the_overview_leave_it_out(self):
        self.assertIn(self.NOTE, smtpscope(self.db, "correlate").stdout)
        overview = smtpscope(self.db, "report", "--format", "html")
        self.assertIn(self.NOTE, overview.stderr)
        self.assertNotIn(">127.0.0.1<", overview.stdout)


if __name__ == "__main__":
    unittest.main()
