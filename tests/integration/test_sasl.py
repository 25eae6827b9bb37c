"""SMTP AUTH through a real private Postfix (Cyrus SASL, a private sasldb)
with the milter and the policy server attached: an authenticated client's
session records who logged in and how ({auth_type}/{auth_authen} from the
milter's MAIL macros, sasl_method/sasl_username from the policy server),
and a client whose AUTH failed records none (the log tells why)."""
import base64
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402

AUTHENTICATED, REFUSED = "127.0.0.21", "127.0.0.22"
LOGIN, PASSWORD = "alice@test.example", "correct horse"


def auth_plain(client, login, password):
    token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
    return client.command(f"AUTH PLAIN {token}")


def authenticated_message(port):
    client = SmtpClient(port, source=AUTHENTICATED)
    replies = [client.command("EHLO sub.client.example")[0],
               auth_plain(client, LOGIN, PASSWORD)[0],
               client.command("MAIL FROM:<newsletter@test.example>")[0],
               client.command("RCPT TO:<bob@test.example>")[0],
               client.message("Subject: t\n\nhello\n"),
               client.quit()]
    return replies


def refused_then_anonymous(port):
    client = SmtpClient(port, source=REFUSED)
    replies = [client.command("EHLO guess.client.example")[0],
               auth_plain(client, LOGIN, "wrong")[0],
               client.command("MAIL FROM:<mallory@client.example>")[0],
               client.command("RCPT TO:<bob@test.example>")[0],
               client.quit()]
    return replies


def attributes(db, client, source, stage):
    rows = harness.query(db, """SELECT e.attributes FROM events e JOIN sessions s
        ON s.id = e.session_id WHERE s.client_addr = ? AND e.source = ? AND e.stage = ?
        ORDER BY e.time_us""", client, source, stage)
    return [json.loads(row[0]) for row in rows]


class SaslThroughPostfix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        milter_socket = cls.work.join("milter.sock")
        policy_socket = cls.work.join("policy.sock")
        cls.milter = harness.milter_daemon(cls.work, cls.db, milter_socket).start()
        cls.policy = harness.policy_daemon(cls.work, cls.db, [f"unix:{policy_socket}"]).start()
        cls.postfix = harness.PostfixInstance(
            cls.work, milter_socket=f"unix:{milter_socket}",
            policy_service=f"unix:{policy_socket}", sasl_users={LOGIN: PASSWORD}).start()
        cls.authenticated = authenticated_message(cls.postfix.port)
        cls.refused = refused_then_anonymous(cls.postfix.port)
        for client in (AUTHENTICATED, REFUSED):
            cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
        harness.wait_for_closed(cls.db, [AUTHENTICATED, REFUSED])
        cls.milter.stop()
        cls.policy.stop()

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.milter.stop()
        cls.policy.stop()
        cls.work.remove()

    def test_postfix_accepted_the_login_and_refused_the_wrong_password(self):
        self.assertEqual(self.authenticated, [250, 235, 250, 250, 250, 221])
        self.assertEqual(self.refused, [250, 535, 250, 250, 221])
        self.assertTrue(any("SASL PLAIN authentication failed" in line
                            for line in self.postfix.log_lines()))

    def test_milter_records_who_logged_in_at_mail(self):
        mail = attributes(self.db, AUTHENTICATED, "milter", "mail")
        self.assertEqual(len(mail), 1)
        self.assertEqual(mail[0].get("{auth_type}"), "PLAIN")
        self.assertEqual(mail[0].get("{auth_authen}"), LOGIN)

    def test_policy_server_records_the_sasl_attributes(self):
        for stage in ("mail", "rcpt", "data", "eom"):
            with self.subTest(stage=stage):
                requests = attributes(self.db, AUTHENTICATED, "policy", stage)
                self.assertEqual(len(requests), 1)
                self.assertEqual(requests[0].get("sasl_method"), "PLAIN")
                self.assertEqual(requests[0].get("sasl_username"), LOGIN)

    def test_a_failed_login_leaves_no_identity(self):
        for source in ("milter", "policy"):
            with self.subTest(source=source):
                mail = attributes(self.db, REFUSED, source, "mail")
                self.assertEqual(len(mail), 1)
                self.assertNotIn("{auth_authen}", mail[0])
                self.assertNotIn("sasl_username", mail[0])
                self.assertNotIn("sasl_method", mail[0])

    def smtpscope(self, *args):
        return subprocess.run([harness.binary("smtpscope"), "--db", self.db, *args],
                              capture_output=True, text=True, check=True).stdout

    def test_the_timeline_and_the_reports_show_the_login(self):
        timeline = self.smtpscope("sessions", "--client", AUTHENTICATED)
        self.assertIn(f"C: MAIL FROM:<newsletter@test.example>   [AUTH {LOGIN} PLAIN]", timeline)
        self.assertIn(f"check MAIL FROM:<newsletter@test.example>   [AUTH {LOGIN} PLAIN]",
                      timeline)
        self.assertIn(f"[AUTH {LOGIN} PLAIN]", self.smtpscope("report", "--client", AUTHENTICATED))
        self.assertIn(f"<strong>[AUTH {LOGIN} PLAIN]</strong>",
                      self.smtpscope("report", "--client", AUTHENTICATED, "--format", "html"))
        self.assertNotIn("[AUTH", self.smtpscope("sessions", "--client", REFUSED))


if __name__ == "__main__":
    unittest.main()
