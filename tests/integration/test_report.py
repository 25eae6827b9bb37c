"""Every foundation scenario through a real Postfix with the milter, the
policy server and the log: `smtpscope clients` and `smtpscope report`
name each with its pattern and explain it."""
import functools
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

PLAYS = {
    "127.0.0.51": (lambda port, src: scenarios.intercepting_proxy(port, src, pause=2.5),
                   "intercepting-proxy"),
    "127.0.0.52": (scenarios.verification_probe, "verification-probe"),
    "127.0.0.53": (scenarios.empty_helo, "gives-up-after-refused-helo"),
    "127.0.0.54": (scenarios.lost_after_rcpt, "lost-connection"),
    "127.0.0.55": (scenarios.pipelined_probe, "verification-probe"),
    "127.0.0.56": (scenarios.rejected_recipient, "abandon-after-rejected-recipient"),
    "127.0.0.59": (scenarios.helo_client, None),  # an ordinary session: no pattern
}
REUSE = "127.0.0.57"


smtpscope = functools.partial(harness.smtpscope, check=True)



def recorded_through_postfix(drive, sessions):
    """A milter and a private Postfix; drive(port) sends the traffic. Returns
    (workdir, database) once the milter has recorded `sessions` closes; the
    caller removes the workdir."""
    work = harness.Workdir()
    db = work.join("smtpscope.db")
    socket_path = work.join("m.sock")
    try:
        milter = harness.milter_daemon(work, db, socket_path).start()
        try:
            postfix = harness.PostfixInstance(work, milter_socket=f"unix:{socket_path}").start()
            try:
                drive(postfix.port)
                postfix.wait_for_log("disconnect from", count=sessions)
                harness.wait_for_closed(db, count=sessions)
            finally:
                postfix.stop()
        finally:
            milter.stop()
    except BaseException:
        work.remove()
        raise
    return work, db

class Report(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        milter_socket, policy_socket = cls.work.join("m.sock"), cls.work.join("p.sock")
        milter = harness.milter_daemon(cls.work, cls.db, milter_socket).start()
        policy = harness.policy_daemon(cls.work, cls.db, [f"unix:{policy_socket}"]).start()
        cls.postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{milter_socket}",
                                              policy_service=f"unix:{policy_socket}").start()
        try:
            for client, (play, _) in PLAYS.items():
                play(cls.postfix.port, client)
            reuse_work = harness.Workdir()
            try:
                scenarios.connection_reuse(cls.postfix, reuse_work, REUSE, messages=4)
            finally:
                reuse_work.remove()
            for client in PLAYS:
                cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
            harness.wait_for_closed(cls.db, list(PLAYS) + [REUSE])
        finally:
            milter.stop()
            policy.stop()
        smtpscope(cls.db, "ingest", cls.postfix.maillog)
        cls.clients = {c["client"]: c for c in
                       json.loads(smtpscope(cls.db, "clients", "--format", "json").stdout)["clients"]}

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.work.remove()

    def test_each_scenario_is_named_by_its_pattern(self):
        for client, (_, pattern) in PLAYS.items():
            with self.subTest(client=client):
                patterns = self.clients[client]["patterns"]
                self.assertEqual(patterns[0]["name"] if patterns else None, pattern)

    def test_connection_reuse_is_named_and_harmless(self):
        names = {p["name"] for p in self.clients[REUSE]["patterns"]}
        self.assertIn("connection-reuse", names)
        self.assertEqual(self.clients[REUSE]["aborted"], 0)

    def test_helo_quirks_per_client(self):
        self.assertEqual(self.clients["127.0.0.53"]["helo_quirks"], ["empty"])
        self.assertEqual(self.clients["127.0.0.59"]["helo_quirks"], ["helo-not-ehlo"])
        self.assertEqual(self.clients["127.0.0.51"]["helo_quirks"], [])

    def test_report_explains_the_proxy(self):
        text = smtpscope(self.db, "report", "--client", "127.0.0.51").stdout
        self.assertIn("Most likely: Intercepting SMTP proxy resets and retries the transaction",
                      text)
        self.assertIn("What to do:", text)
        # The 2.5 s pause plus two RSET round trips: +3s, or more on a loaded machine.
        self.assertRegex(text, r"\[C H M R \+[3-9]s A M R D E Q\]  intercepting-proxy")
        self.assertIn("1 RSET outside a transaction", text)  # the log counted rset=2

    def test_report_json_carries_the_facts(self):
        report = json.loads(smtpscope(self.db, "report", "--client", "127.0.0.54", "--format",
                                      "json").stdout)
        (session,) = report["session_details"]
        self.assertEqual(session["stages"], "C H M R A L")
        self.assertEqual((session["end"], session["lost_after"]), ("lost", "RCPT"))
        self.assertEqual(report["patterns"][0]["name"], "lost-connection")
        self.assertTrue(report["patterns"][0]["explanation"])

    def test_clients_table_lists_the_most_anomalous_first(self):
        table = smtpscope(self.db, "clients").stdout.splitlines()
        self.assertTrue(table[0].startswith("CLIENT"))
        self.assertTrue(table[-1].startswith("(fingerprint: "))  # the legend
        scores = [float(line.split()[1]) for line in table[1:-1]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(self.clients[REUSE]["anomaly"]["score"], 0)  # harmless: weight 0

    def test_each_milter_abort_is_labelled_from_the_log(self):
        expected = {"127.0.0.51": "RSET (a new MAIL follows)", "127.0.0.52": "RSET, then QUIT",
                    "127.0.0.54": "connection lost, transaction open",
                    "127.0.0.55": "RSET, then QUIT", "127.0.0.56": "RSET, then QUIT"}
        for client, label in expected.items():
            out = smtpscope(self.db, "sessions", "--client", client).stdout
            self.assertIn(f"milter  -- transaction aborted: {label}", out, client)

    def test_colour_only_on_a_terminal(self):
        command = f"{harness.binary('smtpscope')} --db {self.db} report --client 127.0.0.51"
        on_tty = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                                text=True, check=True).stdout
        self.assertIn("\x1b[1;33mMost likely:\x1b[0m", on_tty)
        self.assertIn("\x1b[34mmilter\x1b[0m", on_tty)
        no_colour = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                                   text=True, check=True, env=dict(os.environ, NO_COLOR="1")).stdout
        self.assertNotIn("\x1b[", no_colour)
        self.assertNotIn("\x1b[", smtpscope(self.db, "report", "--client", "127.0.0.51").stdout)

    def test_rsets_outside_a_transaction_are_placed(self):
        proxy = smtpscope(self.db, "sessions", "--client", "127.0.0.51").stdout.splitlines()
        rset = [i for i, l in enumerate(proxy) if "C: RSET   (outside a transaction" in l]
        self.assertEqual(len(rset), 1)
        self.assertIn("transaction aborted: RSET", proxy[rset[0] - 1])
        self.assertIn("milter  C: MAIL FROM:", proxy[rset[0] + 1])
        reuse = smtpscope(self.db, "sessions", "--client", REUSE).stdout
        (connections,) = harness.query(self.db, "SELECT count(*) FROM sessions WHERE"
                                       " client_addr = ?", REUSE)[0]
        # An RSET before each further MAIL of a connection: 4 messages in all.
        self.assertEqual(reuse.count("C: RSET   (outside a transaction"), 4 - connections)
        probe = smtpscope(self.db, "sessions", "--client", "127.0.0.52").stdout
        self.assertNotIn("outside a transaction", probe)  # its RSET was inside

    def test_sessions_say_where_a_sensor_is_missing(self):
        out = smtpscope(self.db, "sessions", "--client", "127.0.0.51").stdout
        self.assertIn("note: 1 RSET outside a transaction (counted by the log, invisible to the "
                      "milter)", out)

    def test_sql_views_show_what_the_report_shows(self):
        summary = harness.query(self.db, "SELECT sessions, transactions, aborted, top_pattern"
                                " FROM client_summary WHERE client_addr = '127.0.0.51'")
        self.assertEqual(summary, [(1, 2, 1, "intercepting-proxy")])
        for client, (_, pattern) in PLAYS.items():
            (top,) = harness.query(self.db, "SELECT top_pattern FROM client_summary"
                                   " WHERE client_addr = ?", client)[0]
            self.assertEqual(top, pattern, client)
        patterns = dict(harness.query(self.db, "SELECT pattern, sessions FROM abort_patterns"))
        self.assertEqual(patterns["verification-probe"], 2)
        self.assertEqual(patterns["intercepting-proxy"], 1)
        (events,) = harness.query(self.db, "SELECT count(*) FROM events")[0]
        (timeline,) = harness.query(self.db, "SELECT count(*) FROM session_timeline")[0]
        self.assertEqual(timeline, events)
        first = harness.query(self.db, "SELECT stage FROM session_timeline s JOIN sessions x"
                              " ON x.id = s.session_id WHERE x.client_addr = '127.0.0.53'")
        self.assertEqual([s for (s,) in first][-1], "close")

    def test_unknown_client_and_bad_patterns_file(self):
        missing = smtpscope(self.db, "report", "--client", "192.0.2.99", check=False)
        self.assertEqual(missing.returncode, 1)
        bad = self.work.join("bad.yaml")
        with open(bad, "w") as f:
            f.write("patterns:\n  - name: x\n    title: t\n    stages: '('\n"
                    "    explanation: e\n    advice: a\n")
        result = smtpscope(self.db, "clients", "--patterns", bad, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"{bad}:4: stages: bad regular expression", result.stderr)


class Correlation(unittest.TestCase):
    """12 clients that greet with a bare IP and reset-and-retry (as a proxy
    does), 30 ordinary senders: the quirk's association with the pattern
    comes out significant with its interval; the fingerprint too."""

    def test_quirk_pattern_association(self):
        def drive(port):
            for i in range(12):
                source = f"127.0.1.{i + 1}"
                scenarios.intercepting_proxy(port, source, pause=0, helo=source)
            for i in range(30):
                scenarios.ordinary_sender(port, f"127.0.2.{i + 1}")

        work, db = recorded_through_postfix(drive, sessions=42)
        try:
            result = json.loads(smtpscope(db, "correlate", "--format", "json").stdout)
            found = [a for a in result["associations"] if a["kind"] == "helo-quirk"
                     and a["group"] == "bare-ip" and a["pattern"] == "intercepting-proxy"]
            self.assertEqual(len(found), 1)
            a = found[0]
            self.assertEqual((a["group_sessions"], a["group_with_pattern"], a["rest_sessions"],
                              a["rest_with_pattern"]), (12, 12, 30, 0))
            self.assertTrue(a["significant"])
            self.assertGreater(a["interval"][0], 0.7)  # Wilson lower bound for 12 of 12: 0.757
            self.assertEqual(result["associations"][0]["significant"], True)
            text = smtpscope(db, "correlate").stdout
            self.assertRegex(text, r"helo-quirk\s+bare-ip\s+intercepting-proxy\s+12/12\s+100%\s+"
                                   r"0\.0%\s+-\s+75\.\d-100\.0\s*%\s+yes")
        finally:
            work.remove()


class InjectedQuirks(unittest.TestCase):
    """Fifteen ordinary senders and one client greeting as "localhost" that
    resets and retries: it ranks first by anomaly score, with its reasons."""

    def test_the_odd_client_ranks_first(self):
        def drive(port):
            for i in range(15):
                scenarios.ordinary_sender(port, f"127.0.4.{i + 1}")
            for _ in range(3):
                scenarios.intercepting_proxy(port, "127.0.5.1", pause=0, helo="localhost")

        work, db = recorded_through_postfix(drive, sessions=18)
        try:
            clients = json.loads(smtpscope(db, "clients", "--format", "json").stdout)["clients"]
            self.assertEqual(clients[0]["client"], "127.0.5.1")
            reasons = [r["reason"] for r in clients[0]["anomaly"]["reasons"]]
            self.assertEqual(reasons[0], "3 of 3 sessions are intercepting-proxy (others in the "
                                         "population: 0%)")
            self.assertIn("HELO quirk localhost (in 17% of all sessions)", reasons)
            self.assertTrue(all(c["anomaly"]["score"] == 0 for c in clients[1:]))
        finally:
            work.remove()

if __name__ == "__main__":
    unittest.main()
