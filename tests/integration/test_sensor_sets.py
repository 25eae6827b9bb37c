"""What each sensor set names: the seeds' scenarios through one real
private Postfix, recorded three ways at once.

Postfix calls two policy servers at every stage (check_policy_service
twice; both answer DUNNO) and one milter:
  all    - the milter and the first policy server write database A;
  policy - the second policy server writes database B;
  log    - database C gets nothing live.
Postfix's log is then ingested into all three, so A is milter + policy +
log, B policy + log and C the log alone, each from the same sessions.

Every scenario is named alike by the three sets: the log carries the
evidence of each (an empty HELO refused is `helo=0/1 quit=1`; RSETs are
`rset=N`; the pause before the proxy's retry is dated by its `QID:
client=` line). What the log alone cannot give is not a pattern here but
the parts of a fingerprint only a live sensor sees (ESMTP keywords and
their case, X-Mailer) and the senders of transactions no reject line
names; those are pinned below too. docs/sensors.md's table is this
test's outcome. LogAloneWithoutCounters pins what the log alone of a
Postfix 2.x server (no disconnect counters) gives: transactions counted
from queue ids.
"""
import functools
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

SETS = ("all", "policy", "log")

# client: (scenario, the top pattern every sensor set names, log-only stages)
PLAYS = {
    "127.0.0.71": (lambda port, src: scenarios.intercepting_proxy(port, src, pause=2.5),
                   "intercepting-proxy", r"C H M R A \+[2-9]s M R D E Q"),
    "127.0.0.72": (scenarios.verification_probe, "verification-probe", "C H M R A Q"),
    "127.0.0.73": (scenarios.empty_helo, "gives-up-after-refused-helo", "C Q"),
    "127.0.0.74": (scenarios.lost_after_rcpt, "lost-connection", "C H M R A L"),
    "127.0.0.75": (scenarios.pipelined_probe, "verification-probe", "C H M R A Q"),
    "127.0.0.76": (scenarios.rejected_recipient, "abandon-after-rejected-recipient",
                   "C H M J A Q"),
    "127.0.0.77": (scenarios.ordinary_sender, None, "C H M R D E Q"),
    "127.0.0.78": (scenarios.helo_client, None, "C H M R D E Q"),
}
REUSE = "127.0.0.79"  # Postfix's smtp client over one cached connection

smtpscope = functools.partial(harness.smtpscope, check=True)


def record(work):
    """Plays every scenario once through one Postfix with the milter and two
    policy servers; returns {set: database} with the log ingested into each."""
    dbs = {name: work.join(f"{name}.db") for name in SETS}
    milter_socket = work.join("m.sock")
    policy_a, policy_b = work.join("pa.sock"), work.join("pb.sock")
    milter = harness.milter_daemon(work, dbs["all"], milter_socket).start()
    daemons = [milter]
    try:
        daemons.append(harness.policy_daemon(work, dbs["all"], [f"unix:{policy_a}"]).start())
        daemons.append(harness.policy_daemon(work, dbs["policy"], [f"unix:{policy_b}"]).start())
        # harness writes "check_policy_service SERVICE" at every stage: the
        # second service follows the first in each restriction list.
        both = f"unix:{policy_a}, check_policy_service unix:{policy_b}"
        postfix = harness.PostfixInstance(work, milter_socket=f"unix:{milter_socket}",
                                          policy_service=both).start()
        try:
            for client, (play, _, _) in PLAYS.items():
                play(postfix.port, client)
            reuse_work = harness.Workdir()
            try:
                scenarios.connection_reuse(postfix, reuse_work, REUSE, messages=4)
            finally:
                reuse_work.remove()
            for client in PLAYS:
                postfix.wait_for_log(f"disconnect from unknown[{client}]")
            harness.wait_for_closed(dbs["all"], list(PLAYS) + [REUSE])
        finally:
            postfix.stop()
    finally:
        for daemon in daemons:
            daemon.stop()
    for db in dbs.values():
        smtpscope(db, "ingest", "-q", postfix.maillog)
    return dbs


class SensorSets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        try:
            cls.dbs = record(cls.work)
            cls.reports = {name: {client: json.loads(smtpscope(
                db, "report", "--client", client, "--format", "json").stdout)
                for client in list(PLAYS) + [REUSE]} for name, db in cls.dbs.items()}
        except BaseException:
            cls.work.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def top_pattern(self, sensor_set, client):
        patterns = self.reports[sensor_set][client]["patterns"]
        return patterns[0]["name"] if patterns else None

    def test_the_sets_saw_what_they_should(self):
        def sources(db):
            return {s for (s,) in harness.query(db, "SELECT DISTINCT source FROM events")}
        self.assertEqual(sources(self.dbs["all"]), {"milter", "policy", "log"})
        self.assertEqual(sources(self.dbs["policy"]), {"policy", "log"})
        self.assertEqual(sources(self.dbs["log"]), {"log"})

    def test_each_set_names_each_scenario(self):
        for sensor_set in SETS:
            for client, (_, pattern, _) in PLAYS.items():
                with self.subTest(set=sensor_set, client=client):
                    self.assertEqual(self.top_pattern(sensor_set, client), pattern)

    def test_connection_reuse_is_named_harmless_by_each_set(self):
        for sensor_set in SETS:
            with self.subTest(set=sensor_set):
                report = self.reports[sensor_set][REUSE]
                self.assertEqual(self.top_pattern(sensor_set, REUSE), "connection-reuse")
                self.assertEqual((report["delivered"], report["aborted"]), (4, 0))
                self.assertEqual(report["anomaly"]["score"], 0)

    def test_the_log_alone_names_what_all_three_name(self):
        for client in list(PLAYS) + [REUSE]:
            with self.subTest(client=client):
                self.assertEqual(self.top_pattern("log", client), self.top_pattern("all", client))
                self.assertEqual(self.reports["log"][client]["helo_quirks"],
                                 self.reports["all"][client]["helo_quirks"])

    def test_log_only_stages(self):
        for client, (_, _, stages) in PLAYS.items():
            with self.subTest(client=client):
                (session,) = self.reports["log"][client]["session_details"]
                self.assertRegex(session["stages"], f"^{stages}$")

    def test_transactions_agree_across_sets(self):
        for client in list(PLAYS) + [REUSE]:
            counts = {name: tuple(self.reports[name][client][key]
                                  for key in ("transactions", "delivered", "aborted"))
                      for name in SETS}
            with self.subTest(client=client):
                self.assertEqual(counts["policy"], counts["all"])
                self.assertEqual(counts["log"], counts["all"])

    def test_what_the_log_alone_cannot_tell(self):
        # The proxy's senders: no reject line names them.
        proxy = {name: self.reports[name]["127.0.0.71"]["session_details"][0] for name in SETS}
        self.assertEqual(proxy["all"]["senders"], ["clerk@corp.example"] * 2)
        self.assertEqual(proxy["policy"]["senders"], ["clerk@corp.example"] * 2)
        self.assertEqual(proxy["log"]["senders"], ["clerk@corp.example"])  # qmgr: the delivered one's
        self.assertIsNone(proxy["log"]["null_sender"])
        # The rejected recipient's line names its sender.
        rejected = self.reports["log"]["127.0.0.76"]["session_details"][0]
        self.assertEqual(rejected["senders"], ["a@rejected.example"])
        # Fingerprints: the milter adds what only it sees (ESMTP keywords
        # and their case); the policy server adds nothing the log's command
        # counts do not already give.
        fingerprint = {name: {c: self.reports[name][c]["fingerprints"] for c in PLAYS}
                       for name in SETS}
        self.assertNotEqual(fingerprint["all"]["127.0.0.71"], fingerprint["log"]["127.0.0.71"])
        self.assertEqual(fingerprint["policy"]["127.0.0.71"], fingerprint["log"]["127.0.0.71"])


RELAY_LOG = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real",
                         "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz")


class LogAloneWithoutCounters(unittest.TestCase):
    """The log alone from Postfix 2.x (no disconnect counters): the real
    FgForrest relay log (tests/fixtures/logs/README.md). Each queued
    `QID: client=` line counts as a transaction, and the notes say so."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("relay.db")
        smtpscope(cls.db, "ingest", "-q", RELAY_LOG)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_queue_ids_are_the_transactions(self):
        # grep 'smtpd.*client=' | sed 's/.*client=//' | sort | uniq -c:
        # 7,794 gds39k.active24.cz[81.95.110.19], 18 localhost[127.0.0.1]
        for client, sessions, queued in (("81.95.110.19", 5849, 7794), ("127.0.0.1", 1384, 18)):
            with self.subTest(client=client):
                report = json.loads(smtpscope(self.db, "report", "--client", client,
                                              "--format", "json").stdout)
                self.assertEqual(report["sessions"], sessions)
                self.assertEqual((report["transactions"], report["delivered"], report["aborted"]),
                                 (queued, queued, 0))
        report = json.loads(smtpscope(self.db, "report", "--client", "127.0.0.1", "--format",
                                      "json").stdout)
        session = next(s for s in report["session_details"] if s["transactions"])
        self.assertEqual(session["stages"], "C M R D E Z")
        self.assertIs(session["null_sender"], False)  # qmgr's from=<...>
        self.assertTrue(session["notes"][0].startswith(
            "the log has no command counters for this session (Postfix before 3.0): 1 "
            "transaction counted from its queue ids"), session["notes"])
        # The monitor that connects and leaves queues nothing: no transaction.
        monitor = json.loads(smtpscope(self.db, "report", "--client", "193.86.74.11", "--format",
                                       "json").stdout)
        self.assertEqual((monitor["sessions"], monitor["transactions"]), (540, 0))


if __name__ == "__main__":
    unittest.main()
