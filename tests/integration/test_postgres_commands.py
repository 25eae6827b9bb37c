"""The read commands on PostgreSQL (issue 16): two real logs from two mail
servers (hosts "t" and "gds39d") ingested and analysed into SQLite, copied
with `smtpscope db copy` into a private PostgreSQL 15 server (pg_server.py),
then every view run on both stores with --db: sessions (text, and JSON over
more than one cursor batch), clients, report (text, JSON, one client's HTML
and the overview), correlate and servers print the same (JSON compared as
data; floats to 9 digits, as db copy carries SQLite's 15-digit text of a
double). --host filters on PostgreSQL; the configuration's database.url and
password_file are used without --db; `db prune` on PostgreSQL leaves the
rows and client_day_shapes that prune on SQLite leaves; watch prints a
session another host forwarded. A wrong password names the URL, never the
password; the commands that work on the local file refuse a URL.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
import pg_server

LOGS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real")
HOST_LOGS = (os.path.join(LOGS, "mchirico-blockbadip-mail.log.gz"),  # host t
             os.path.join(LOGS, "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz"))
PRUNED_TABLES = ("sessions", "transactions", "event_rows", "session_analysis",
                 "client_day_shapes", "client_timing", "remote_events", "drops")


def rounded(value):
    """JSON data with floats to 9 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


@unittest.skipIf(pg_server.available(), pg_server.available())
class PostgresCommandsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpscope-pgcommands-")
        cls.pg = pg_server.PgServer()
        try:
            cls.pg.start()
            cls.sqlite = os.path.join(cls.tmp, "smtpscope.db")
            harness.smtpscope(cls.sqlite, "ingest", "-q", *HOST_LOGS, check=True)
            harness.smtpscope(cls.sqlite, "analyse", check=True)
            # Prune below changes both stores: the views compare this copy.
            cls.pristine = os.path.join(cls.tmp, "pristine.db")
            shutil.copy(cls.sqlite, cls.pristine)
            copied = subprocess.run(
                [harness.binary("smtpscope"), "--db", cls.sqlite, "db", "copy", "-q", "--to",
                 cls.pg.url, "--password-file", cls.pg.password_file],
                capture_output=True, text=True, timeout=300, env=cls.env())
            assert copied.returncode == 0, copied.stderr
        except BaseException:
            cls.pg.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def env(**extra):
        env = dict(os.environ, **extra)
        for name in ("PGPASSWORD", "SMTPSCOPE_DB_PASSWORD"):
            if name not in extra:
                env.pop(name, None)
        return env

    def on_pg(self, *args, timeout=120):
        return subprocess.run([harness.binary("smtpscope"), "--db", self.pg.url,
                               "--password-file", self.pg.password_file, *args],
                              capture_output=True, text=True, timeout=timeout, env=self.env())

    def on_sqlite(self, *args, db=None):
        return harness.smtpscope(db or self.sqlite, *args)

    def pg_value(self, sql):
        return self.pg.psql(sql, database=pg_server.DATABASE).strip()

    def both(self, *args):
        """The command's stdout on SQLite and on PostgreSQL, both successful."""
        local = self.on_sqlite(*args, db=self.pristine)
        fleet = self.on_pg(*args)
        self.assertEqual(local.returncode, 0, local.stderr)
        self.assertEqual(fleet.returncode, 0, fleet.stderr)
        self.assertNotIn(self.pg.password, fleet.stdout + fleet.stderr)
        return local.stdout, fleet.stdout

    def most_anomalous_client(self):
        listed = json.loads(self.on_sqlite("clients", "--format", "json", db=self.pristine).stdout)
        return listed["clients"][0]["client"]

    def test_1_views_print_the_same_on_both_stores(self):
        client = self.most_anomalous_client()
        text_views = [("sessions", "--limit", "200"), ("clients",), ("correlate",), ("servers",),
                      ("report", "--client", client),
                      ("report", "--client", client, "--format", "html"),
                      ("report", "--format", "html")]
        for args in text_views:
            with self.subTest(args=args):
                local, fleet = self.both(*args)
                self.assertGreater(len(local.splitlines()), 5)
                self.assertEqual(fleet, local)
        json_views = [("sessions", "--limit", "1500", "--format", "json"),
                      ("clients", "--format", "json"), ("correlate", "--format", "json"),
                      ("servers", "--format", "json"),
                      ("report", "--client", client, "--format", "json")]
        printed = {}
        for args in json_views:
            with self.subTest(args=args):
                local, fleet = printed[args] = self.both(*args)
                self.assertEqual(rounded(json.loads(fleet)), rounded(json.loads(local)))
        # metrics: the same series (the timestamp line aside).
        local, fleet = self.both("metrics")
        stamp = "smtpscope_metrics_generated_timestamp_seconds "
        self.assertEqual([l for l in fleet.splitlines() if not l.startswith(stamp)],
                         [l for l in local.splitlines() if not l.startswith(stamp)])
        self.assertIn("smtpscope_client_anomaly_score", fleet)
        # More sessions than one FETCH of the cursor holds (1,000), and the
        # JSON timelines carry the host of each.
        sessions = json.loads(printed[json_views[0]][1])
        self.assertEqual(len(sessions["sessions"]), 1500)
        self.assertEqual({s["host"] for s in sessions["sessions"]}, {"t"})

    def test_2_host_filters_on_postgres(self):
        for host in ("t", "gds39d"):
            with self.subTest(host=host):
                local, fleet = self.both("sessions", "--host", host, "--limit", "50", "--format",
                                         "json")
                got = json.loads(fleet)["sessions"]
                self.assertEqual(len(got), 50)
                self.assertEqual({s["host"] for s in got}, {host})
                self.assertEqual(rounded(got), rounded(json.loads(local)["sessions"]))
                local, fleet = self.both("clients", "--host", host, "--format", "json")
                self.assertEqual(rounded(json.loads(fleet)), rounded(json.loads(local)))
        everyone = json.loads(self.on_pg("clients", "--format", "json").stdout)["clients"]
        only_t = json.loads(self.on_pg("clients", "--host", "t", "--format", "json").stdout)
        self.assertLess(len(only_t["clients"]), len(everyone))
        # Timelines in text name the host too.
        text = self.on_pg("sessions", "--host", "gds39d", "--limit", "1")
        self.assertIn(" on gds39d", text.stdout)

    def test_3_configuration_names_the_store(self):
        config = os.path.join(self.tmp, "smtpscope.yaml")
        with open(config, "w") as out:
            out.write(f"database:\n  path: {self.sqlite}\n  url: \"{self.pg.url}\"\n"
                      f"  password_file: {self.pg.password_file}\n")
        done = subprocess.run([harness.binary("smtpscope"), "-c", config, "clients"],
                              capture_output=True, text=True, timeout=120, env=self.env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, self.on_pg("clients").stdout)
        # db copy takes the configured password file too: connected, it finds
        # the rows copied before and refuses.
        done = subprocess.run([harness.binary("smtpscope"), "-c", config, "db", "copy", "-q",
                               "--to", self.pg.url], capture_output=True, text=True, timeout=120,
                              env=self.env())
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("already holds rows", done.stderr)
        # The password from the environment instead of a file.
        done = subprocess.run([harness.binary("smtpscope"), "--db", self.pg.url, "servers",
                               "--format", "json"], capture_output=True, text=True, timeout=120,
                              env=self.env(SMTPSCOPE_DB_PASSWORD=self.pg.password))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertGreater(len(json.loads(done.stdout)["servers"]), 100)

    def test_4_errors_name_the_url_never_the_password(self):
        wrong = os.path.join(self.tmp, "wrong-password")
        with open(wrong, "w") as out:
            out.write("not-the-password-" + self.pg.password[:6] + "\n")
        os.chmod(wrong, 0o600)
        done = subprocess.run([harness.binary("smtpscope"), "--db", self.pg.url,
                               "--password-file", wrong, "clients"],
                              capture_output=True, text=True, timeout=60, env=self.env())
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn(self.pg.url, done.stderr)
        self.assertIn("password authentication failed", done.stderr)
        self.assertNotIn(self.pg.password[:6], done.stdout + done.stderr)
        secret = self.pg.url.replace("@", ":secret123@", 1)
        done = subprocess.run([harness.binary("smtpscope"), "--db", secret, "sessions"],
                              capture_output=True, text=True, timeout=60, env=self.env())
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertNotIn("secret123", done.stdout + done.stderr)
        # (ingest reads into this host's file and forwards: test_postgres_fleet)
        for args in (("analyse",), ("discover",)):
            with self.subTest(args=args):
                done = self.on_pg(*args)
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertIn("SQLite file", done.stderr)
        done = self.on_pg("watch", "--log", HOST_LOGS[0])
        self.assertEqual(done.returncode, 2, done.stderr)

    def test_5_prune_on_postgres_leaves_what_prune_on_sqlite_leaves(self):
        # A cutoff in the middle of host t's sessions, in a gap between two of
        # them (the two runs start a moment apart).
        times = [row[0] for row in harness.query(
            self.sqlite, "SELECT connect_us FROM sessions WHERE host = 't' ORDER BY connect_us")]
        middle = len(times) // 2
        gap, at = max((times[i + 1] - times[i], i) for i in range(middle - 200, middle + 200))
        self.assertGreater(gap, 30_000_000)
        cutoff_us = times[at] + gap // 2
        older_than = f"{int(time.time() - cutoff_us / 1e6)}s"
        local = self.on_sqlite("db", "prune", "--older-than", older_than, "--format", "json")
        fleet = self.on_pg("db", "prune", "--older-than", older_than, "--format", "json")
        self.assertEqual(local.returncode, 0, local.stderr)
        self.assertEqual(fleet.returncode, 0, fleet.stderr)
        counted = ("sessions", "transactions", "events", "remote_events", "drops")
        local_counts, fleet_counts = json.loads(local.stdout), json.loads(fleet.stdout)
        # More than one chunk of 10,000 sessions' rows, with events and outbound records.
        self.assertGreater(local_counts["sessions"], 8000)
        self.assertEqual({k: fleet_counts[k] for k in counted},
                         {k: local_counts[k] for k in counted})
        for table in PRUNED_TABLES:
            with self.subTest(table=table):
                expected = harness.query(self.sqlite, f"SELECT count(*) FROM {table}")[0][0]
                self.assertEqual(self.pg_value(f"SELECT count(*) FROM {table}"), str(expected))
        shapes = ("SELECT client_addr, host, day, fingerprint, patterns, helo_quirks, sessions,"
                  " transactions, aborted, delivered FROM client_day_shapes")
        expected = sorted("|".join(str(v) for v in row)
                          for row in harness.query(self.sqlite, shapes))
        self.assertGreater(len(expected), 10)
        self.assertEqual(sorted(self.pg_value(shapes).splitlines()), expected)
        self.assertEqual(self.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM sessions"),
                         ",".join(str(row[0]) for row in harness.query(
                             self.sqlite, "SELECT id FROM sessions ORDER BY id")))

    def next_line(self, watch):
        ready, _, _ = select.select([watch.stdout], [], [], 20)
        self.assertTrue(ready, "watch printed nothing in 20 s")
        return json.loads(watch.stdout.readline())

    def test_6_watch_prints_a_session_another_host_forwarded(self):
        watch = subprocess.Popen([harness.binary("smtpscope"), "--db", self.pg.url,
                                  "--password-file", self.pg.password_file, "watch", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=self.env())
        try:
            time.sleep(1.0)  # its first poll: what ended before it started is not shown
            now_us = int(time.time() * 1e6)
            self.pg_value("INSERT INTO sessions (stream, client_addr, connect_us, close_us, helo,"
                          f" host) VALUES ('forwarded', '192.0.2.77', {now_us - 2_000_000},"
                          f" {now_us}, 'bot.example', 'mx2')")
            line = self.next_line(watch)
            self.assertEqual(line["client"], "192.0.2.77")
            self.assertEqual(line["host"], "mx2")
            self.assertEqual(line["stages"], "C +2s Z")
            # The server restarted: watch connects again and goes on.
            self.pg.stop()
            time.sleep(0.5)
            self.pg.start()
            now_us = int(time.time() * 1e6)
            self.pg_value("INSERT INTO sessions (stream, client_addr, connect_us, close_us, helo,"
                          f" host) VALUES ('forwarded', '192.0.2.78', {now_us - 1_000_000},"
                          f" {now_us}, 'bot.example', 'mx3')")
            line = self.next_line(watch)
            self.assertEqual((line["client"], line["host"]), ("192.0.2.78", "mx3"))
        finally:
            watch.send_signal(signal.SIGTERM)
            try:
                watch.wait(timeout=10)
            finally:
                if watch.poll() is None:
                    watch.kill()
                    watch.wait()
                watch_errors = watch.stderr.read()
                watch.stdout.close()
                watch.stderr.close()
        self.assertEqual(watch.returncode, 0)
        self.assertIn("connecting again", watch_errors)
        self.assertIn("reading again", watch_errors)


if __name__ == "__main__":
    unittest.main()
