"""smtpscope-milter driven stage by stage by miltertest (no Postfix): the
recorded stages, the rejected-recipient marks, and a hostile HELO stored
verbatim up to the configured bound."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(__file__), "milter_stages.lua")
HOSTILE_HELO = "<script>alert('x')</script>\x1b[2J\"'; DROP TABLE sessions;--" + "A" * 300


class MiltertestStages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        socket_path = cls.work.join("milter.sock")
        milter = harness.milter_daemon(cls.work, cls.db, socket_path,
                                       extra_milter="  max_value_bytes: 64\n"
                                                     "  record_body_size: true\n").start()
        try:
            env = dict(os.environ, SMTPSCOPE_MILTER_SOCKET=socket_path,
                       SMTPSCOPE_HELO=HOSTILE_HELO)
            cls.run_result = subprocess.run(["miltertest", "-s", SCRIPT], env=env,
                                            capture_output=True, text=True, timeout=60)
        finally:
            cls.milter_exit = milter.stop()

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def events(self):
        return harness.query(self.db, """SELECT e.stage, e.argument, e.attributes FROM events e
            JOIN sessions s ON s.id = e.session_id WHERE s.client_addr = '192.0.2.77'
            ORDER BY e.id""")

    def test_miltertest_saw_only_continue_replies(self):
        self.assertEqual(self.run_result.returncode, 0,
                         self.run_result.stdout + self.run_result.stderr)
        self.assertEqual(self.milter_exit, 0)

    def test_every_stage_is_recorded_in_order(self):
        self.assertEqual([stage for stage, _, _ in self.events()],
                         ["connect", "helo", "mail", "rcpt", "rcpt", "abort", "mail", "rcpt",
                          "data", "header", "eom", "close"])

    def test_session_endpoints_come_from_connect_and_macros(self):
        # The connect sockaddr's port (miltertest sends 12345) wins over the
        # {client_port} macro; server endpoint and PTR name come from macros.
        rows = harness.query(self.db, "SELECT client_port, client_name, client_ptr, server_addr,"
                             " server_port FROM sessions WHERE client_addr = '192.0.2.77'")
        self.assertEqual(rows, [(12345, "client.miltertest.example", "client.miltertest.example",
                                 "198.51.100.1", 25)])

    def test_transactions_and_rejected_recipient(self):
        rows = harness.query(self.db, """SELECT seq, rcpt_accepted, rcpt_rejected, outcome,
            queue_id, body_bytes FROM transactions ORDER BY seq""")
        self.assertEqual(rows, [(1, 1, 1, "aborted", None, None),
                                (2, 1, 0, "delivered", "MT0001", 12)])
        rejected = json.loads(self.events()[3][2])
        self.assertEqual(rejected["rejected"], "1")
        self.assertEqual(rejected["status"], "5.7.1")
        self.assertEqual(rejected["reason"], "Recipient address rejected: no such user here")

    def test_only_configured_headers_are_kept(self):
        headers = [arg for stage, arg, _ in self.events() if stage == "header"]
        self.assertEqual(headers, ["X-Mailer: miltertest 1.0"])

    def test_hostile_helo_is_stored_verbatim_up_to_the_bound(self):
        (helo,) = [arg for stage, arg, _ in self.events() if stage == "helo"]
        self.assertEqual(helo, HOSTILE_HELO[:64])
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM sessions")[0][0], 1)

    def test_hostile_helo_is_escaped_in_the_timeline(self):
        out = subprocess.run([harness.binary("smtpscope"), "--db", self.db, "sessions"],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("\\x1b[2J", out)
        self.assertNotIn("\x1b", out)


if __name__ == "__main__":
    unittest.main()
