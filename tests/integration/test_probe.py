"""smtpscope probe: a conformant real Postfix passes (also the opt-in DATA
group), a server that answers only the QUIT of a pipelined group fails with
the explanation, and a server without PIPELINING is probed unpipelined."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from broken_server import BrokenServer  # noqa: E402


def probe(*args):
    return subprocess.run([harness.binary("smtpscope"), "probe", *args], capture_output=True,
                          text=True, timeout=60)


class Probe(unittest.TestCase):
    def test_a_conformant_postfix_passes(self):
        work = harness.Workdir()
        postfix = harness.PostfixInstance(work).start()
        try:
            result = probe(f"127.0.0.1:{postfix.port}", "--source", "127.0.0.71",
                           "--recipient", "postmaster@test.example",
                           "--data-sink", "sink@test.example", "--format", "json")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            report = json.loads(result.stdout)
            self.assertTrue(report["pipelining"])
            envelope, data = report["checks"]
            self.assertEqual([s["code"] for s in envelope["steps"]], [250, 250, 250, 221])
            self.assertTrue(envelope["pipelined"])
            self.assertEqual([s["code"] for s in data["steps"]], [250, 250, 354, 250, 221])
            postfix.wait_for_log("disconnect from unknown[127.0.0.71]", count=2)
            log = "\n".join(postfix.log_lines())
            self.assertNotIn("improper command pipelining", log)
        finally:
            postfix.stop()
            work.remove()

    def test_a_server_answering_only_quit_fails_with_the_explanation(self):
        server = BrokenServer("only-quit")
        try:
            result = probe(f"127.0.0.1:{server.port}", "--timeout", "2")
            self.assertEqual(result.returncode, 1)
            self.assertIn("PIPELINING: offered", result.stdout)
            self.assertIn("FAIL answered only the QUIT of the pipelined group", result.stdout)
            self.assertIn("smtp_discard_ehlo_keyword_address_maps", result.stdout)
        finally:
            server.close()

    def test_a_server_without_pipelining_is_probed_unpipelined(self):
        work = harness.Workdir()
        postfix = harness.PostfixInstance(
            work, extra={"smtpd_discard_ehlo_keywords": "pipelining"}).start()
        try:
            result = probe(f"127.0.0.1:{postfix.port}", "--recipient", "postmaster@test.example")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("PIPELINING: not offered", result.stdout)
            self.assertIn("(one command at a time)", result.stdout)
            self.assertIn("PASS answers MAIL/RCPT/RSET/QUIT one at a time", result.stdout)
        finally:
            postfix.stop()
            work.remove()

    def test_an_ip_target_gets_an_address_literal_recipient(self):
        work = harness.Workdir()
        postfix = harness.PostfixInstance(work).start()
        try:
            result = probe(f"127.0.0.1:{postfix.port}", "--format", "json")
            envelope = json.loads(result.stdout)["checks"][0]
            rcpt = envelope["steps"][1]
            self.assertEqual(rcpt["sent"], "RCPT TO:<postmaster@[127.0.0.1]>")
            self.assertNotEqual(rcpt["code"], 501, rcpt["text"])  # not "bad address syntax"
            result = probe(f"[127.0.0.1]:{postfix.port}", "--format", "json")
            self.assertEqual(json.loads(result.stdout)["checks"][0]["steps"][1]["sent"],
                             "RCPT TO:<postmaster@[127.0.0.1]>")
        finally:
            postfix.stop()
            work.remove()

    def test_unreachable_target_is_a_clear_error(self):
        port = harness.free_port()
        result = probe(f"127.0.0.1:{port}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("cannot connect", result.stderr)


if __name__ == "__main__":
    unittest.main()
