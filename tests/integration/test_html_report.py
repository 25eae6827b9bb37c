"""The HTML report stays data: a client whose HELO, sender address and
X-Mailer header carry markup and quotes, through a real Postfix; headless
Chromium (Debian's) loads the page: no script runs, no element is injected,
and a screenshot shows it renders."""
import os
import re
import struct
import subprocess
import sys
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


if __name__ == "__main__":
    unittest.main()
