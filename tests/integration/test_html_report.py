"""The HTML report stays data: a client whose HELO, sender address and
X-Mailer header carry markup and quotes, through a real Postfix; headless
Chromium (Debian's) loads the page: no script runs, no element is injected,
and a screenshot shows it renders. Clients whose HELO carries C1 controls
and bidi overrides (through the milter and through an ingested log line):
neither `sessions` nor the HTML report prints one raw."""
import html
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402
import scenarios  # noqa: E402

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


# Tag names the renderers (cli/report_html.cpp, cli/overview_html.cpp,
# cli/pattern_timeline.cpp) write: anything else came from a client string.
RENDERER_TAGS = {"!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3",
                 "p", "div", "span", "strong", "em", "code", "a", "table", "tr", "th", "td", "svg",
                 "line", "text", "rect", "circle"}
TAG = re.compile(r"<\s*/?\s*([^\s>/]+)")
OVERVIEW_HELO = "<img src=x onerror=\"document.title='XSS4'\">"
OVERVIEW_MAILER = "<svg onload=\"document.title='XSS5'\"><a href=\"http://evil.example/\">x</a>"
SCREENSHOT_DIR = os.environ.get("SMTPSCOPE_SCREENSHOT_DIR")  # set to keep the screenshots


def tags(page):
    return {m.group(1) for m in TAG.finditer(page)}


def screenshot(page, shot, cwd, height):
    chromium(f"--screenshot={shot}", f"--window-size=1280,{height}", "--hide-scrollbars",
             f"file://{page}", cwd=cwd)
    with open(shot, "rb") as f:
        png = f.read()
    if SCREENSHOT_DIR:
        shutil.copy(shot, os.path.join(SCREENSHOT_DIR, os.path.basename(shot)))
    return png


class Overview(unittest.TestCase):
    """`report --format html` without --client: the overview of a lab
    database (the scenarios, plus clients whose HELO and X-Mailer carry
    markup), written with --out beside the pages of the clients it lists."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        socket_path = cls.work.join("m.sock")
        milter = harness.milter_daemon(cls.work, cls.db, socket_path).start()
        postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{socket_path}").start()
        plays = {"127.0.0.81": lambda p, s: scenarios.intercepting_proxy(p, s, pause=1.0),
                 "127.0.0.82": scenarios.verification_probe,
                 "127.0.0.83": scenarios.empty_helo, "127.0.0.84": scenarios.lost_after_rcpt,
                 "127.0.0.85": scenarios.pipelined_probe,
                 "127.0.0.86": scenarios.rejected_recipient,
                 "127.0.0.87": scenarios.helo_client, "127.0.0.88": scenarios.ordinary_sender}
        try:
            for round_ in range(2):
                for client, play in plays.items():
                    play(postfix.port, client)
            for client in ("127.0.0.89", "127.0.0.90"):
                c = SmtpClient(postfix.port, client)
                c.command(f"EHLO {OVERVIEW_HELO}")
                c.command("MAIL FROM:<a@evil.example>")
                c.command("RCPT TO:<boss@test.example>")
                c.message(f"Subject: x\nX-Mailer: {OVERVIEW_MAILER}\n\nhello\n")
                c.command(f"HELO {HOSTILE_HELO}")
                c.drop()
            clients = list(plays) + ["127.0.0.89", "127.0.0.90"]
            for client in clients:
                postfix.wait_for_log(f"disconnect from unknown[{client}]")
            harness.wait_for_closed(cls.db, clients)
        finally:
            milter.stop()
            postfix.stop()
        subprocess.run([harness.binary("smtpscope"), "--db", cls.db, "ingest", postfix.maillog],
                       check=True, capture_output=True)
        cls.out = cls.work.join("overview")
        result = subprocess.run([harness.binary("smtpscope"), "--db", cls.db, "report", "--format",
                                 "html", "--out", cls.out, "--top", "6"], capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr
        cls.index = os.path.join(cls.out, "index.html")
        with open(cls.index) as f:
            cls.html = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_top_n_clients_are_listed_and_linked_to_their_pages(self):
        links = re.findall(r'<a href="([^"]+)">', self.html)
        self.assertEqual(len(links), 6, links)
        self.assertIn("The 6 most anomalous of 10 clients (--top shows more).", self.html)
        for link in links:
            with open(os.path.join(self.out, html.unescape(link))) as f:
                self.assertIn("<h1>Client <code>127.0.0.", f.read())
        self.assertEqual(sorted(os.listdir(self.out)), sorted(links + ["index.html"]))

    def test_sections_chart_and_advice(self):
        for heading in ("Patterns over time", "Clients", "What to do",
                        "Fingerprints and HELO quirks with their patterns"):
            self.assertIn(f"<h2>{heading}</h2>", self.html)
        self.assertIn('aria-label="sessions per minute by pattern"', self.html)
        self.assertIn(">sessions</text>", self.html)  # the y axis label
        self.assertIn("time (UTC), one bar per minute", self.html)
        for pattern in ("intercepting-proxy", "verification-probe", "lost-connection"):
            self.assertIn(f"<code>{pattern}</code>", self.html)  # advice and legend
        self.assertIn("<strong>What to do:</strong>", self.html)
        self.assertIn("<td>helo-quirk</td>", self.html)

    def test_nothing_from_client_strings_becomes_markup(self):
        self.assertLessEqual(tags(self.html), RENDERER_TAGS, tags(self.html) - RENDERER_TAGS)
        mailer = "&lt;svg onload=&quot;document.title=&#39;XSS5&#39;&quot;&gt;"
        # in a fingerprint's title attribute (its features keep 40 bytes of the header)
        self.assertIn("mailer=X-Mailer: &lt;svg onload=&quot;document.title=&#39;", self.html)
        with open(os.path.join(self.out, "client-127.0.0.89.html")) as f:
            page = f.read()
        self.assertIn(mailer, page)
        self.assertIn("&lt;img src=x onerror=&quot;document.title=&#39;XSS4&#39;&quot;&gt;", page)
        self.assertIn("Content-Security-Policy", self.html)
        self.assertIsNone(re.search(r"(src|href)=\"https?:", self.html))
        for name in os.listdir(self.out):
            with open(os.path.join(self.out, name)) as f:
                page = f.read()
            self.assertLessEqual(tags(page), RENDERER_TAGS, name)

    def test_chromium_runs_no_script_and_renders_at_1280(self):
        dom = chromium("--dump-dom", f"file://{self.index}", cwd=self.work.path).stdout
        self.assertIn("<title>smtpscope overview</title>", dom)
        self.assertIsNone(re.search(r"<(script|img|iframe)\b", dom, re.IGNORECASE))
        self.assertEqual(len(re.findall(r"<a\b", dom)), 6)  # the client links, none injected
        png = screenshot(self.index, self.work.join("overview-lab.png"), self.work.path, 1800)
        self.assertEqual(struct.unpack(">II", png[16:24]), (1280, 1800))
        self.assertGreater(len(png), 60_000)

    def test_stdout_without_out_and_usage_errors(self):
        page = subprocess.run([harness.binary("smtpscope"), "--db", self.db, "report", "--format",
                               "html"], capture_output=True, text=True, check=True).stdout
        self.assertIn("The 10 most anomalous of 10 clients.", page)
        self.assertNotIn("<a href", page)  # no pages beside it to link to
        for args in (["report"], ["report", "--format", "json"],
                     ["report", "--format", "html", "--client", "127.0.0.81", "--out", self.out]):
            result = subprocess.run([harness.binary("smtpscope"), "--db", self.db, *args],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn("smtpscope: report:", result.stderr)


class OverviewOfRealLogs(unittest.TestCase):
    """The overview of real servers' logs (tests/fixtures/logs): renders,
    stays within its own tags, and lists the top clients of many."""

    REAL = os.path.join(os.path.dirname(__file__), "../fixtures/logs/real/"
                        "mchirico-blockbadip-mail.log.gz")
    FIXTURE = os.path.join(os.path.dirname(__file__), "../fixtures/logs/modoboa/mail.log")

    def overview_of(self, source, top):
        work = harness.Workdir()
        self.addCleanup(work.remove)
        log = work.join("mail.log" + (".gz" if source.endswith(".gz") else ""))
        shutil.copy(source, log)
        db = work.join("smtpscope.db")
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", "-q", log], check=True,
                       capture_output=True)
        out = work.join("out")
        subprocess.run([harness.binary("smtpscope"), "--db", db, "report", "--format", "html",
                        "--out", out, "--top", str(top)], check=True, capture_output=True)
        with open(os.path.join(out, "index.html")) as f:
            return work, os.path.join(out, "index.html"), f.read()

    def test_a_real_servers_log(self):
        for source in (self.FIXTURE, self.REAL):
            with self.subTest(source=os.path.basename(source)):
                work, index, page = self.overview_of(source, 12)
                self.assertLessEqual(tags(page), RENDERER_TAGS)
                self.assertIn("<h2>What to do</h2>", page)
                self.assertRegex(page, r"The \d+ most anomalous of \d+ clients")
                self.assertIn("<rect ", page)  # the chart has bars
                png = screenshot(index, work.join("overview-real.png"), work.path, 1800)
                self.assertEqual(struct.unpack(">II", png[16:24]), (1280, 1800))


class OverviewOfManyClients(unittest.TestCase):
    """10,000 clients (a generated log): the overview lists the top N, says
    how many there are, and stays small."""

    def test_ten_thousand_clients(self):
        work = harness.Workdir()
        self.addCleanup(work.remove)
        log = work.join("mail.log")
        with open(log, "w") as f:
            for i in range(10_000):
                client = f"unknown[10.{i // 65536}.{i // 256 % 256}.{i % 256}]"
                stamp = f"Nov {1 + i // 1000:2d} {i // 60 % 24:02d}:{i % 60:02d}:00"
                smtpd = f"{stamp} mx postfix/smtpd[{1000 + i}]:"
                f.write(f"{smtpd} connect from {client}\n")
                if i % 7 == 0:
                    f.write(f"{smtpd} lost connection after RCPT from {client}\n"
                            f"{smtpd} disconnect from {client} ehlo=1 mail=1 rcpt=1 "
                            f"commands=3\n")
                else:
                    f.write(f"{smtpd} disconnect from {client} ehlo=1 quit=1 commands=2\n")
        db = work.join("smtpscope.db")
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", "-q", "--year", "2026",
                        log], check=True, capture_output=True)
        start = time.monotonic()
        page = subprocess.run([harness.binary("smtpscope"), "--db", db, "report", "--format",
                               "html", "--top", "50"], capture_output=True, text=True,
                              check=True).stdout
        self.assertLess(time.monotonic() - start, 60)
        self.assertIn("The 50 most anomalous of 10000 clients (--top shows more).", page)
        self.assertEqual(page.count('<tr><td class="n">'), 50)
        self.assertIn('aria-label="sessions per day by pattern"', page)
        self.assertIn("<code>lost-connection</code>", page)
        self.assertLess(len(page), 150_000)


class WholeSecondTimes(unittest.TestCase):
    """A session from a log with whole-second stamps: the HTML timeline
    labels those times as the text timeline does ("<+1.0s"), in order."""

    def test_whole_second_rows_are_marked_and_in_order(self):
        work = harness.Workdir()
        self.addCleanup(work.remove)
        log = work.join("mail.log")
        smtpd = "Nov 30 01:00:{:02d} mx postfix/smtpd[77]:"
        client = "unknown[192.0.2.77]"
        with open(log, "w") as f:
            f.write(f"{smtpd.format(0)} connect from {client}\n"
                    f"{smtpd.format(0)} 4F1A2B3C4D: client={client}\n"
                    f"Nov 30 01:00:10 mx postfix/cleanup[78]: 4F1A2B3C4D: "
                    f"message-id=<x@example.net>\n"
                    f"{smtpd.format(10)} disconnect from {client} ehlo=1 mail=1 rcpt=1 data=1 "
                    f"quit=1 commands=5\n")
        db = work.join("smtpscope.db")
        subprocess.run([harness.binary("smtpscope"), "--db", db, "ingest", "--year", "2026", log],
                       check=True, capture_output=True)
        page = subprocess.run([harness.binary("smtpscope"), "--db", db, "report", "--client",
                               "192.0.2.77", "--format", "html"], capture_output=True, text=True,
                              check=True).stdout
        text = subprocess.run([harness.binary("smtpscope"), "--db", db, "sessions", "--client",
                               "192.0.2.77"], capture_output=True, text=True, check=True).stdout
        cells = re.findall(r'<tr><td class="coarse"[^>]*>([^<]+)</td>', page)
        self.assertGreaterEqual(len(cells), 3, page)
        labels = [html.unescape(c) for c in cells]
        self.assertTrue(all(label.startswith("<+") for label in labels), labels)
        values = [float(label[1:-1]) for label in labels]
        self.assertEqual(values, sorted(values))
        for label in labels:
            self.assertIn(label, text)  # the same labels as the text timeline


if __name__ == "__main__":
    unittest.main()
