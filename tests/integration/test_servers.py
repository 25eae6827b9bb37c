"""Outbound: Postfix as a client verifies recipients at a server that drops
pipelined groups and delivers to a conformant one; after `smtpscope ingest`
of its log, `smtpscope servers` names the broken server, with the probes
failing while sending MAIL FROM and the workarounds, and finds the
conformant one without failures."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from broken_server import BrokenServer  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402


class Servers(unittest.TestCase):
    def test_a_server_breaking_probes_is_named(self):
        broken = BrokenServer("drop")
        work, good_work = harness.Workdir(), harness.Workdir()
        good = harness.PostfixInstance(good_work).start()  # accepts mail for test.example
        client = harness.PostfixInstance(work, extra={
            "myhostname": "relay.client.example",
            "mydestination": "",
            "relay_domains": "remote.example, test.example",
            "transport_maps": f"inline:{{ {{remote.example = smtp:[127.0.0.1]:{broken.port}}}, "
                              f"{{test.example = smtp:[127.0.0.1]:{good.port}}} }}",
            "default_transport": "smtp", "relay_transport": "smtp",
            "smtpd_recipient_restrictions": "reject_unverified_recipient, permit_mynetworks, reject",
            "address_verify_poll_count": "3", "address_verify_poll_delay": "1s",
        }).start()
        try:
            for i in range(3):  # each recipient makes the client probe the broken server
                c = SmtpClient(client.port, "127.0.0.92")
                c.command("EHLO sender.example")
                c.command("MAIL FROM:<a@sender.example>")
                code, text = c.command(f"RCPT TO:<user{i}@remote.example>")
                self.assertEqual(code, 450, text)
                c.quit()
            c = SmtpClient(client.port, "127.0.0.92")  # a normal delivery to the good one
            c.command("EHLO sender.example")
            c.command("MAIL FROM:<a@sender.example>")
            self.assertEqual(c.command("RCPT TO:<postmaster@test.example>")[0], 250)
            self.assertEqual(c.message("Subject: hi\n\nhello\n"), 250)
            c.quit()
            client.wait_for_log("status=sent", timeout=30)
            client.wait_for_log("status=undeliverable", count=3, timeout=30)
        finally:
            client.stop()
            good.stop()
            broken.close()
        db = work.join("smtpscope.db")
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", client.maillog],
                       check=True, capture_output=True)
        result = subprocess.run([harness.binary("smtpscope"), "--db", db, "servers", "--format",
                                 "json"], capture_output=True, text=True, check=True)
        servers = {s["server"] + ":" + s["name"]: s for s in json.loads(result.stdout)["servers"]}
        first = json.loads(result.stdout)["servers"][0]
        self.assertTrue(first["pipelining_trouble"])
        self.assertEqual((first["probes"], first["probes_failed"], first["lost_or_timeout"]),
                         (3, 3, 3))
        self.assertEqual(first["lost_while"], {"MAIL FROM": 3})
        self.assertIn("smtp_discard_ehlo_keyword_address_maps", first["verdict"])
        self.assertIn("smtpscope probe 127.0.0.1", first["verdict"])
        others = [s for s in servers.values() if not s["pipelining_trouble"]]
        self.assertTrue(any(s["sent"] >= 1 and s["verdict"] == "no failures" for s in others),
                        others)
        text = subprocess.run([harness.binary("smtpscope"), "--db", db, "servers"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("connections are lost while sending MAIL FROM (3 of 3)", text)
        work.remove()
        good_work.remove()


class ServersText(unittest.TestCase):
    def test_long_server_names_are_shown_whole(self):
        work = harness.Workdir()
        hosts = [f"mx{i}.inbound-filtering.mail-protection.provider-example.net" for i in (1, 2, 3)]
        log = work.join("mail.log")
        with open(log, "w") as f:
            for i, host in enumerate(hosts):
                f.write(f"Nov 30 01:00:0{i} mx postfix/smtp[31{i}]: 9CD1E3FC54{i}: "
                        f"to=<u{i}@example.net>, relay={host}[203.0.113.{i + 10}]:25, "
                        f"delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)\n")
        db = work.join("smtpscope.db")
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", log], check=True,
                       capture_output=True)
        text = subprocess.run([harness.binary("smtpscope"), "--db", db, "servers"],
                              capture_output=True, text=True, check=True).stdout
        rows = [line for line in text.splitlines() if "provider-example.net" in line]
        self.assertEqual(len(rows), 3, text)
        for i, host in enumerate(hosts):
            self.assertIn(f"{host}[203.0.113.{i + 10}]:25", text)
        self.assertEqual(len(set(rows)), 3, text)
        work.remove()


if __name__ == "__main__":
    unittest.main()
