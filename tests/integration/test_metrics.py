"""Prometheus metrics through a real private Postfix: smtpscope-milter and
smtpscope-policyd with metrics endpoints, real SMTP traffic, then scrapes.
The counters match what the database recorded, the exposition passes
`promtool check metrics`, a private Prometheus scrapes both daemons, the
Grafana dashboard uses only metrics that exist, and `smtpscope metrics`
writes and serves the population's metrics."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(SOURCE_DIR, "contrib", "grafana", "smtpscope.json")

CLIENTS = {
    "127.0.0.41": scenarios.ordinary_sender,
    "127.0.0.42": scenarios.verification_probe,
    "127.0.0.43": scenarios.rejected_recipient,
    "127.0.0.44": scenarios.lost_after_rcpt,
    "127.0.0.45": scenarios.helo_client,
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of labels): value} of an exposition text."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(match.group(3) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def families(text):
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def total(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def http_get(port, path="/metrics", timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
        return answer.status, answer.headers.get("Content-Type"), answer.read().decode()


def promtool_check(test, text):
    if shutil.which("promtool") is None:
        test.skipTest("promtool not installed (Debian package prometheus)")
    run = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=30)
    test.assertEqual((run.returncode, run.stdout, run.stderr), (0, "", ""))


class DaemonMetrics(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        cls.milter_port = harness.free_port()
        cls.policy_port = harness.free_port()
        milter_socket = cls.work.join("milter.sock")
        policy_socket = cls.work.join("policy.sock")
        cls.milter = harness.milter_daemon(
            cls.work, cls.db, milter_socket,
            extra_milter=f'metrics:\n  milter_listen: "{cls.milter_port}"\n').start()
        cls.policy = harness.policy_daemon(
            cls.work, cls.db, [f"unix:{policy_socket}"],
            extra_policy=f'metrics:\n  policy_listen: "127.0.0.1:{cls.policy_port}"\n').start()
        harness.wait_for(lambda: harness.port_listening(cls.milter_port), 10, "milter metrics")
        harness.wait_for(lambda: harness.port_listening(cls.policy_port), 10, "policy metrics")
        cls.postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{milter_socket}",
                                              policy_service=f"unix:{policy_socket}").start()
        # A scraper that connects and never sends a request holds the
        # milter's metrics thread while the mail flows: it must not matter.
        cls.silent = socket.create_connection(("127.0.0.1", cls.milter_port))
        for client, play in CLIENTS.items():
            play(cls.postfix.port, client)
        for client in CLIENTS:
            cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
        harness.wait_for_closed(cls.db, list(CLIENTS))
        cls.silent.close()

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.milter.stop()
        cls.policy.stop()
        cls.work.remove()

    def scrape_until_settled(self):
        """Both daemons' samples once their counts of recorded events equal
        the database's (the store commits every 50 ms)."""
        recorded = {(source, stage): count for source, stage, count in harness.query(
            self.db, "SELECT source, stage, count(*) FROM events GROUP BY source, stage")}
        last = {}

        def settled():
            nonlocal last
            last = {"milter": parse(http_get(self.milter_port)[2]),
                    "policy": parse(http_get(self.policy_port)[2])}
            return all(total(last[source], "smtpscope_events_recorded_total", source=source,
                             stage=stage) == count for (source, stage), count in recorded.items())
        try:
            harness.wait_for(settled, 10, "the metrics to count every recorded event")
        except TimeoutError:
            self.fail(f"database {recorded} vs scrapes {last}")
        return recorded, last

    def test_events_recorded_match_the_database(self):
        recorded, scraped = self.scrape_until_settled()
        self.assertIn(("milter", "connect"), recorded)
        self.assertIn(("policy", "rcpt"), recorded)
        for source in ("milter", "policy"):
            with self.subTest(source=source):
                samples = scraped[source]
                in_db = sum(c for (s, _), c in recorded.items() if s == source)
                self.assertEqual(total(samples, "smtpscope_events_recorded_total"), in_db)
                self.assertEqual(total(samples, "smtpscope_events_enqueued_total"), in_db)
                self.assertEqual(total(samples, "smtpscope_events_dropped_total"), 0)
                self.assertEqual(total(samples, "smtpscope_database_errors_total"), 0)
                self.assertEqual(total(samples, "smtpscope_queue_events"), 0)
                batches = total(samples, "smtpscope_store_batches_total")
                self.assertGreater(batches, 0)
                self.assertEqual(total(samples, "smtpscope_store_commit_seconds_count"), batches)
                self.assertEqual(total(samples, "smtpscope_store_batch_events_sum"), in_db)

    def test_milter_callbacks_and_sessions_match_the_database(self):
        recorded, scraped = self.scrape_until_settled()
        samples = scraped["milter"]
        for stage in ("connect", "helo", "mail", "rcpt", "data", "eom", "abort"):
            with self.subTest(stage=stage):
                self.assertEqual(total(samples, "smtpscope_milter_callbacks_total", stage=stage),
                                 recorded.get(("milter", stage), 0))
        self.assertEqual(total(samples, "smtpscope_sessions_open", source="milter"), 0)
        self.assertEqual(recorded[("milter", "connect")], len(CLIENTS))

    def test_policy_requests_match_the_database(self):
        recorded, scraped = self.scrape_until_settled()
        samples = scraped["policy"]
        self.assertEqual(total(samples, "smtpscope_policy_requests_total"),
                         sum(c for (s, _), c in recorded.items() if s == "policy"))
        self.assertEqual(total(samples, "smtpscope_policy_requests_total", protocol_state="RCPT",
                               action="DUNNO"), recorded[("policy", "rcpt")])

    def test_no_client_address_is_a_label(self):
        for port in (self.milter_port, self.policy_port):
            text = http_get(port)[2]
            for client in CLIENTS:
                self.assertNotIn(client, text)

    def test_exposition_passes_promtool(self):
        for port in (self.milter_port, self.policy_port):
            with self.subTest(port=port):
                status, content_type, text = http_get(port)
                self.assertEqual(status, 200)
                self.assertTrue(content_type.startswith("text/plain; version=0.0.4"))
                promtool_check(self, text)

    def test_only_get_metrics_is_served(self):
        with self.assertRaises(urllib.error.HTTPError) as caught:
            http_get(self.milter_port, "/")
        self.assertEqual(caught.exception.code, 404)
        with socket.create_connection(("127.0.0.1", self.milter_port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 431"))

    def test_grafana_dashboard_uses_metrics_that_exist(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
        self.assertTrue(exprs)
        used = set()
        for expr in exprs:
            used |= set(re.findall(r"\bsmtpscope_[a-z_]+", expr))
        population = subprocess.run([harness.binary("smtpscope"), "--db", self.db, "metrics"],
                                    capture_output=True, text=True, timeout=60)
        self.assertEqual(population.returncode, 0, population.stderr)
        exposed = set()
        for text in (http_get(self.milter_port)[2], http_get(self.policy_port)[2],
                     population.stdout):
            exposed |= families(text)
        for name in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            with self.subTest(metric=name):
                self.assertTrue(name in exposed or base in exposed, f"{name} is not exposed")

    def test_a_private_prometheus_scrapes_both_daemons(self):
        if shutil.which("prometheus") is None:
            self.skipTest("prometheus not installed")
        web_port = harness.free_port()
        config = self.work.join("prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: smtpscope
    static_configs:
      - targets: ['127.0.0.1:{self.milter_port}', '127.0.0.1:{self.policy_port}']
""")
        log = open(self.work.join("prometheus.log"), "wb")
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={self.work.join('prometheus-data')}",
             f"--web.listen-address=127.0.0.1:{web_port}"], stdout=log, stderr=log)
        try:
            def query(q):
                url = (f"http://127.0.0.1:{web_port}/api/v1/query?"
                       + urllib.parse.urlencode({"query": q}))
                with urllib.request.urlopen(url, timeout=5) as answer:
                    return json.load(answer)["data"]["result"]

            def both_up():
                try:
                    return sorted(r["value"][1] for r in query("up")) == ["1", "1"]
                except OSError:
                    return False
            harness.wait_for(both_up, 30, "prometheus to scrape both daemons")
            recorded, _ = self.scrape_until_settled()
            in_db = sum(recorded.values())
            harness.wait_for(
                lambda: [float(r["value"][1]) for r in
                         query("sum(smtpscope_events_recorded_total)")] == [in_db],
                15, "prometheus to hold the recorded events")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            log.close()


class PopulationMetrics(unittest.TestCase):
    """`smtpscope metrics` on a database with sessions (ingested from a log)."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("t.db")
        log = os.path.join(SOURCE_DIR, "tests", "fixtures", "logs", "modoboa", "mail.log")
        subprocess.run([harness.binary("smtpscope"), "--db", cls.db, "ingest", "-q", log],
                       check=True, capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def smtpscope(self, *args, **kwargs):
        return subprocess.run([harness.binary("smtpscope"), "--db", self.db, "metrics", *args],
                              capture_output=True, text=True, timeout=60, **kwargs)

    def test_stdout_has_patterns_quirks_and_top_clients(self):
        run = self.smtpscope("--top", "3")
        self.assertEqual(run.returncode, 0, run.stderr)
        samples = parse(run.stdout)
        self.assertGreater(total(samples, "smtpscope_analysed_sessions"), 0)
        self.assertIn(("smtpscope_pattern_sessions", frozenset({("pattern", "timeout")})),
                      samples)
        self.assertIn(("smtpscope_helo_quirk_sessions", frozenset({("quirk", "empty")})),
                      samples)
        clients = [ls for (n, ls) in samples if n == "smtpscope_client_anomaly_score"]
        self.assertEqual(len(clients), 3)
        promtool_check(self, run.stdout)

    def test_out_file_is_written_whole(self):
        out = self.work.join("smtpscope.prom")
        run = self.smtpscope("--out", out)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, "")
        self.assertEqual([n for n in os.listdir(self.work.path) if n.startswith("smtpscope.prom")],
                         ["smtpscope.prom"], "no temporary file left behind")
        with open(out) as f:
            promtool_check(self, f.read())
        bad = self.smtpscope("--out", self.work.join("no", "such", "dir.prom"))
        self.assertEqual(bad.returncode, 1)

    def test_listen_serves_until_sigterm(self):
        port = harness.free_port()
        process = subprocess.Popen([harness.binary("smtpscope"), "--db", self.db, "metrics",
                                    "--listen", str(port)], stderr=subprocess.DEVNULL)
        try:
            harness.wait_for(lambda: harness.port_listening(port), 10, "metrics --listen")
            status, _, text = http_get(port)
            self.assertEqual(status, 200)
            self.assertIn("smtpscope_pattern_sessions", text)
        finally:
            process.send_signal(signal.SIGTERM)
            self.assertEqual(process.wait(10), 0)

    def test_usage_errors(self):
        self.assertEqual(self.smtpscope("--listen", "nonsense").returncode, 2)
        self.assertEqual(self.smtpscope("--top", "1001").returncode, 2)
        self.assertEqual(self.smtpscope("--out", "x", "--listen", "1").returncode, 2)


if __name__ == "__main__":
    unittest.main()
