"""The HTML report stays data: a client whose HELO, sender address and
X-Mailer header carry markup and quotes, through a real Postfix; headless
Chromium (Debian's) loads the page: no script runs, no element is injected,
and a screenshot shows it renders. Clients whose HELO carries C1 controls
and bidi overrides (through the milter and through an ingested log line):
neither `sessions` nor the HTML report prints one raw."""
import os
import re
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402

CLIENT = "127.0.0.61"
HOSTILE_HELO = "<script>document.title='XSS'</script>\"'&"
HOSTILE_SENDER = "<\"<script>document.title='XSS2'</script>\"@evil.example>"
HOSTILE_MAILER = "<img src=x onerror=\"document.title='XSS3'\">"


def chromium(*args, cwd):
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", "--no-first-run", f"--user-data-dir={cwd}/profile",
                           *args], capture_output=True, text=True, timeout=120, cwd=cwd)


class HtmlReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        db = cls.work.join("smtpscope.db")
        socket_path = cls.work.join("m.sock")
        milter = harness.milter_daemon(cls.work, db, socket_path).start()
        postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{socket_path}").start()
        try:
            c = SmtpClient(postfix.port, CLIENT)
            c.command(f"EHLO {HOSTILE_HELO}")
            c.command(f"MAIL FROM:{HOSTILE_SENDER}")
            c.command("RCPT TO:<boss@test.example>")
            c.command("RSET")
            c.command(f"MAIL FROM:{HOSTILE_SENDER}")
            c.command("RCPT TO:<boss@test.example>")
            c.message(f"Subject: x\nX-Mailer: {HOSTILE_MAILER}\n\nhello\n")
            c.quit()
            postfix.wait_for_log(f"disconnect from unknown[{CLIENT}]")
            harness.wait_for_closed(db, [CLIENT])
        finally:
            milter.stop()
            postfix.stop()
        cls.page = cls.work.join("report.html")
        result = subprocess.run([harness.binary("smtpscope"), "--db", db, "report", "--client",
                                 CLIENT, "--format", "html"], capture_output=True, text=True,
                                check=True)
        cls.html = result.stdout
        with open(cls.page, "w") as f:
            f.write(cls.html)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_source_has_no_markup_from_the_client(self):
        self.assertIsNone(re.search(r"<\s*(script|img|iframe)", self.html, re.IGNORECASE))
        self.assertIn("&lt;script&gt;document.title=&#39;XSS&#39;&lt;/script&gt;&quot;&#39;&amp;",
                      self.html)
        self.assertIn("&lt;img src=x onerror=&quot;document.title=&#39;XSS3&#39;&quot;&gt;",
                      self.html)
        self.assertIn("Content-Security-Policy", self.html)
        self.assertIsNone(re.search(r"(src|href)=\"https?:", self.html))  # self-contained

    def test_chromium_runs_no_script_and_keeps_the_dom(self):
        dom = chromium("--dump-dom", f"file://{self.page}", cwd=self.work.path).stdout
        self.assertIn("<title>smtpscope report: 127.0.0.61</title>", dom)
        self.assertNotIn("XSS</title>", dom)
        self.assertIsNone(re.search(r"<(script|img|iframe)\b", dom, re.IGNORECASE))
        self.assertIn("Most likely: Intercepting SMTP proxy", dom)

    def test_screenshot_renders(self):
        shot = self.work.join("report.png")
        chromium(f"--screenshot={shot}", "--window-size=1200,1400", f"file://{self.page}",
                 cwd=self.work.path)
        with open(shot, "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        self.assertEqual((width, height), (1200, 1400))
        self.assertGreater(len(png), 30_000)  # text, tables and the timeline, not a blank page


# Code points a terminal or a browser acts on instead of showing them. The
# milter's client sends them in its HELO; the log's in its client name, its
# reject reply and its HELO.
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = [chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x2028, 0x202F), *range(0x2066, 0x206A))]
DISPLAY_HELO = ("mx\u202egro.elpmaxe\u202c\u2066x\u2069\u2067\u2068\u202a\u202b\u202d"
                "\u200e\u200f\u061c\u009b31m\u0080\u009f\u0085.example")
MILTER_CLIENT = "127.0.0.62"
LOG_CLIENT = "192.0.2.63"


def raw_display_controls(output):
    """The C1 and bidi code points (as UTF-8 bytes) found raw in `output`."""
    return [hex(ord(c)) for c in C1 + BIDI if c.encode() in output]


class DisplayControls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        socket_path = cls.work.join("m.sock")
        milter = harness.milter_daemon(cls.work, cls.db, socket_path).start()
        postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{socket_path}").start()
        try:
            c = SmtpClient(postfix.port, MILTER_CLIENT)
            c.command(f"EHLO {DISPLAY_HELO}")
            c.command("MAIL FROM:<a@corp.example>")
            c.command("RSET")
            c.quit()
            postfix.wait_for_log(f"disconnect from unknown[{MILTER_CLIENT}]")
            harness.wait_for_closed(cls.db, [MILTER_CLIENT])
        finally:
            milter.stop()
            postfix.stop()
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(time.time() - 60))
        log = cls.work.join("mail.log")
        with open(log, "w", encoding="utf-8") as f:
            smtpd = f"{stamp} mx postfix/smtpd[4242]:"
            client = f"{DISPLAY_HELO}[{LOG_CLIENT}]"  # a name no resolver gave Postfix
            f.write(f"{smtpd} connect from {client}\n"
                    f"{smtpd} NOQUEUE: reject: RCPT from {client}: 554 5.7.1 "
                    f"<x@test.example>: Relay access denied {DISPLAY_HELO}; "
                    f"from=<a@corp.example> to=<x@test.example> proto=ESMTP "
                    f"helo=<{DISPLAY_HELO}>\n"
                    f"{smtpd} disconnect from {client} ehlo=1 mail=1 rcpt=0/1 "
                    f"quit=1 commands=3/4\n")
        subprocess.run([harness.binary("smtpscope"), "--db", cls.db, "ingest", log], check=True,
                       capture_output=True)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def cli(self, *args):
        return subprocess.run([harness.binary("smtpscope"), "--db", self.db, *args],
                              capture_output=True, check=True).stdout

    def test_sessions_prints_no_c1_or_bidi_character_raw(self):
        for client in (MILTER_CLIENT, LOG_CLIENT):
            with self.subTest(client):
                out = self.cli("sessions", "--client", client)
                self.assertIn(b"\\u202egro.elpmaxe\\u202c", out)  # shown, escaped
                self.assertIn(b"\\u009b31m", out)
                self.assertEqual(raw_display_controls(out), [])

    def test_the_html_report_has_no_c1_or_bidi_character_raw(self):
        for client in (MILTER_CLIENT, LOG_CLIENT):
            with self.subTest(client):
                page = self.cli("report", "--client", client, "--format", "html")
                self.assertIn(b"\\u202egro.elpmaxe", page)
                self.assertEqual(raw_display_controls(page), [])


if __name__ == "__main__":
    unittest.main()
