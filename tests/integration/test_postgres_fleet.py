"""Many mail servers, one store (issue 16): each host's milter and policy
server record into their own SQLite file as on one host, and forward it to
one private PostgreSQL 15 server (pg_server.py) in the background
(database.url; core/pg_forwarder.h).

- Two private Postfix instances stand for hosts mx1 and mx2 (daemon.host),
  each with its milter and policy server, writing at once; one client
  address sends through both. In PostgreSQL its sessions carry both host
  names, and every session's timeline (its events: sensor, stage,
  argument, attributes) is the one its host's SQLite file holds.
- PostgreSQL stopped mid-run: mail keeps flowing, the failure is logged
  with the URL and never the password, and after the restart every event
  is there exactly once, with the ids of its local rows, nothing dropped.
- A wrong password at start: the daemon says so (URL, no password), keeps
  serving Postfix, and `db forward` fails with the same kind of message.
- `db forward` of an ingested log: a second origin's ids never collide,
  a second run sends nothing again.
"""
import json
import os
import subprocess
import tempfile
import unittest
import urllib.request

import harness
import pg_server
import scenarios
from test_postgres_schema import PostgresDatabase

CLIENT = "127.0.0.91"
# The lab's scenarios, played on mx2 each from its own address.
SCENARIOS = {
    "127.0.0.92": scenarios.verification_probe,
    "127.0.0.93": scenarios.empty_helo,
    "127.0.0.94": scenarios.lost_after_rcpt,
    "127.0.0.95": scenarios.pipelined_probe,
    "127.0.0.96": scenarios.rejected_recipient,
    "127.0.0.97": lambda port, source: scenarios.intercepting_proxy(port, source, pause=1.0),
}
ORIGIN_SHIFT = 40
REAL_LOG = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real",
                        "mchirico-blockbadip-mail.log.gz")
OTHER_HOST_LOG = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real",
                              "monozoide-MailLogSentinel-sample_sasl.log")


def forwarding(daemon, url, host=None, password_file=None):
    """Rewrites a harness daemon's configuration to forward to url (as
    `host`, with the password in password_file, when given)."""
    with open(daemon.config_path) as f:
        text = f.read()
    fleet = f"  url: \"{url}\"\n  forward_interval_ms: 200\n"
    if password_file:
        fleet += f"  password_file: {password_file}\n"
    text = text.replace("database:\n", "database:\n" + fleet, 1)
    if host:
        text = text.replace("daemon:\n", f"daemon:\n  host: {host}\n", 1)
    with open(daemon.config_path, "w") as f:
        f.write(text)
    return daemon


class Host:
    """One MTA: a private Postfix with a forwarding milter and policy server."""

    def __init__(self, pg, name, password_file=None):
        self.work = harness.Workdir()
        self.name = name
        self.db = self.work.join(f"{name}.db")
        self.metrics_port = harness.free_port()
        milter_socket, policy_socket = self.work.join("m.sock"), self.work.join("p.sock")
        metrics = f"metrics:\n  milter_listen: \"{self.metrics_port}\"\n"
        password_file = password_file or pg.password_file
        self.milter = forwarding(harness.milter_daemon(self.work, self.db, milter_socket,
                                                       extra_milter=metrics),
                                 pg.url, name, password_file)
        self.policy = forwarding(harness.policy_daemon(self.work, self.db,
                                                       [f"unix:{policy_socket}"]),
                                 pg.url, name, password_file)
        self.postfix = harness.PostfixInstance(self.work, milter_socket=f"unix:{milter_socket}",
                                               policy_service=f"unix:{policy_socket}")

    def start(self):
        self.milter.start()
        self.policy.start()
        self.postfix.start()
        return self

    def stop(self):
        try:
            self.postfix.stop()
        finally:
            codes = (self.milter.stop(), self.policy.stop())
        return codes

    def remove(self):
        self.work.remove()

    def metric(self, name):
        """A metric of the milter's endpoint (its value as text)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith(name + " "):
                    return line.split()[1]
        return None

    def send(self, messages, source=CLIENT):
        """Sends ordinary messages; the reply codes to each message's DATA."""
        return [scenarios.ordinary_sender(self.postfix.port, source)[3]
                for _ in range(messages)]


def local_timelines(db):
    """{local session id: [(source, stage, argument, attributes)...]} of a host's file."""
    timelines = {}
    for session, source, stage, argument, attributes in harness.query(
            db, "SELECT session_id, source, stage, argument, attributes FROM events "
                "ORDER BY id"):
        timelines.setdefault(session, []).append(
            (source, stage, argument, json.loads(attributes)))
    return timelines


def fleet_timelines(store, origin):
    """The same, from PostgreSQL, for one origin's sessions (ids made local)."""
    out = store.run_psql(
        "SELECT json_build_array(session_id & 1099511627775, source, stage, argument,"
        f" attributes) FROM events WHERE id >> {ORIGIN_SHIFT} = {origin} ORDER BY id",
        separated=False)
    timelines = {}
    for line in out.splitlines():
        session, source, stage, argument, attributes = json.loads(line)
        timelines.setdefault(session, []).append(
            (source, stage, argument, json.loads(attributes)))
    return timelines


def local_analysis(db):
    """{local session id: (stages, pattern, patterns, fingerprint, helo_quirks)}."""
    return {row[0]: tuple(row[1:]) for row in harness.query(
        db, "SELECT session_id, stages, pattern, patterns, fingerprint, helo_quirks FROM "
            "session_analysis")}


def fleet_analysis(store, origin):
    out = store.run_psql(
        "SELECT json_build_array(session_id & 1099511627775, stages, pattern, patterns,"
        f" fingerprint, helo_quirks) FROM session_analysis WHERE session_id >> {ORIGIN_SHIFT}"
        f" = {origin}", separated=False)
    return {row[0]: tuple(row[1:]) for row in map(json.loads, out.splitlines())}


def password_env(pg):
    """The environment of a command that connects to pg: its password from
    SMTPSCOPE_DB_PASSWORD only."""
    env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
    env.pop("PGPASSWORD", None)
    return env


def origin_of(store, host):
    return int(store.value(f"SELECT id FROM origins WHERE name = '{host}'"))


def wait_forwarded(store, db, timeout=30):
    """Until the fleet store (of this file alone) holds every event row of it."""
    def caught_up():
        local = harness.query(db, "SELECT count(*) FROM event_rows")[0][0]
        return local > 0 and store.value("SELECT count(*) FROM event_rows") == str(local)
    harness.wait_for(caught_up, timeout, f"{db}'s events in PostgreSQL")


@unittest.skipIf(pg_server.available(), pg_server.available())
class TwoHostsOneStore(unittest.TestCase):
    def test_two_hosts_write_at_once_and_keep_their_timelines(self):
        with pg_server.PgServer() as pg:
            store = PostgresDatabase(pg)
            hosts = [Host(pg, "mx1"), Host(pg, "mx2")]
            try:
                for host in hosts:
                    host.start()
                hosts[0].send(2)
                hosts[1].send(3)
                for client, play in SCENARIOS.items():
                    play(hosts[1].postfix.port, client)
                harness.wait_for_closed(hosts[0].db, [CLIENT])
                harness.wait_for_closed(hosts[1].db, [CLIENT, *SCENARIOS])
                codes = [host.stop() for host in hosts]  # a clean stop forwards the rest
                self.assertEqual(codes, [(0, 0), (0, 0)])
                for host in hosts:
                    self.assertNotIn(pg.password, host.milter.stderr() + host.policy.stderr())
                # One client, both hosts, each session under its host's name.
                self.assertEqual(
                    store.value(f"SELECT string_agg(host || '=' || n, ' ' ORDER BY host) FROM "
                                f"(SELECT host, count(*) n FROM sessions WHERE client_addr = "
                                f"'{CLIENT}' GROUP BY host) s"),
                    "mx1=2 mx2=3")
                for host in hosts:
                    origin = origin_of(store, host.name)
                    local = local_timelines(host.db)
                    self.assertEqual(fleet_timelines(store, origin), local, host.name)
                    sources = {event[0] for timeline in local.values() for event in timeline}
                    self.assertEqual(sources, {"milter", "policy"})
                    # Each session's analysis as its host made it (stages, patterns...).
                    analysed = local_analysis(host.db)
                    self.assertEqual(len(analysed), len(local), host.name)
                    self.assertEqual(fleet_analysis(store, origin), analysed, host.name)
                named = store.value("SELECT string_agg(DISTINCT pattern, ' ' ORDER BY pattern) "
                                    "FROM session_analysis")
                for pattern in ("intercepting-proxy", "verification-probe"):
                    self.assertIn(pattern, named)
                # What an admin asks the fleet store: the client on both hosts.
                env = password_env(pg)
                listed = subprocess.run([harness.binary("smtpscope"), "--db", pg.url, "clients",
                                         "--format", "json"], capture_output=True, text=True,
                                        timeout=60, env=env, check=True)
                client = next(c for c in json.loads(listed.stdout)["clients"]
                              if c["client"] == CLIENT)
                self.assertEqual(client["sessions"], 5)
                self.assertEqual(client["hosts"], [{"host": "mx2", "sessions": 3},
                                                   {"host": "mx1", "sessions": 2}])
                text = subprocess.run([harness.binary("smtpscope"), "--db", pg.url, "clients"],
                                      capture_output=True, text=True, timeout=60, env=env,
                                      check=True).stdout
                self.assertRegex(text, rf"{CLIENT} .* mx2 \+1\n")
                report = subprocess.run([harness.binary("smtpscope"), "--db", pg.url, "report",
                                         "--client", CLIENT], capture_output=True, text=True,
                                        timeout=60, env=env, check=True).stdout
                self.assertIn("Hosts: mx2 (3), mx1 (2)", report)
                # The analysis came along: the client's sessions counted per host.
                self.assertEqual(
                    store.value(f"SELECT string_agg(host || '=' || sessions, ' ' ORDER BY host) "
                                f"FROM (SELECT host, sum(sessions) sessions FROM "
                                f"client_day_shapes WHERE client_addr = '{CLIENT}' GROUP BY "
                                f"host) s"),
                    "mx1=2 mx2=3")
            finally:
                for host in hosts:
                    host.stop()
                    host.remove()


@unittest.skipIf(pg_server.available(), pg_server.available())
class StoreStoppedMidRun(unittest.TestCase):
    def test_mail_flows_and_every_event_arrives_once(self):
        with pg_server.PgServer() as pg:
            store = PostgresDatabase(pg)
            host = Host(pg, "mx1")
            try:
                host.start()
                self.assertEqual(host.send(3), [250] * 3)
                harness.wait_for_closed(host.db, count=3)
                wait_forwarded(store, host.db)
                pg.stop()
                self.assertEqual(host.send(4), [250] * 4)  # mail flows meanwhile
                harness.wait_for_closed(host.db, count=7)
                harness.wait_for(lambda: "forward event=failed" in host.milter.stderr(), 20,
                                 "the milter's forwarder to log its failure")
                logged = host.milter.stderr() + host.policy.stderr()
                self.assertIn(f"url=\"{pg.url}\"", logged)
                self.assertNotIn(pg.password, logged)
                self.assertEqual(host.metric("smtpscope_forward_connected"), "0")
                self.assertNotEqual(host.metric("smtpscope_forward_failures_total"), "0")
                pg.start()
                wait_forwarded(store, host.db)
                self.assertEqual(host.stop(), (0, 0))
                wait_forwarded(store, host.db)
                origin = origin_of(store, "mx1")
                local_ids = [row[0] for row in harness.query(
                    host.db, "SELECT id FROM event_rows ORDER BY id")]
                fleet_ids = [int(i) - (origin << ORIGIN_SHIFT) for i in store.value(
                    "SELECT string_agg(id::text, ' ' ORDER BY id) FROM event_rows").split()]
                self.assertEqual(fleet_ids, local_ids)  # each once, none missing
                self.assertEqual(store.value("SELECT count(*) FROM sessions"), "7")
                self.assertEqual(harness.query(host.db, "SELECT count(*) FROM drops")[0][0], 0)
                self.assertIn("forward event=recovered", host.milter.stderr() +
                              host.policy.stderr())
            finally:
                host.stop()
                host.remove()


@unittest.skipIf(pg_server.available(), pg_server.available())
class WrongPassword(unittest.TestCase):
    def test_a_wrong_password_is_named_without_the_password(self):
        with pg_server.PgServer() as pg, tempfile.TemporaryDirectory() as tmp:
            wrong = os.path.join(tmp, "wrong")
            with open(wrong, "w") as f:
                f.write("not-the-password-7f3a\n")
            os.chmod(wrong, 0o600)
            host = Host(pg, "mx1", password_file=wrong)
            try:
                host.start()
                self.assertEqual(host.send(1), [250])  # Postfix is served all the same
                harness.wait_for_closed(host.db, [CLIENT])
                harness.wait_for(lambda: "forward event=failed" in host.milter.stderr(), 20,
                                 "the milter's forwarder to report the failure")
                logged = host.milter.stderr()
                self.assertIn(f"url=\"{pg.url}\"", logged)
                self.assertIn("password authentication failed", logged)
                self.assertNotIn("not-the-password-7f3a", logged)
                self.assertNotIn(pg.password, logged)
                self.assertEqual(host.stop(), (0, 0))
                done = subprocess.run(
                    [harness.binary("smtpscope"), "--db", host.db, "db", "forward", "-q",
                     "--to", pg.url, "--password-file", wrong],
                    capture_output=True, text=True, timeout=60)
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertIn(pg.url, done.stderr)
                self.assertNotIn("not-the-password-7f3a", done.stdout + done.stderr)
            finally:
                host.stop()
                host.remove()


class UnreachableAtStart(unittest.TestCase):
    def test_the_milter_serves_and_names_the_url(self):
        work = harness.Workdir()
        try:
            db, socket_path = work.join("mx.db"), work.join("m.sock")
            port = harness.free_port()  # nothing listens there
            milter = forwarding(harness.milter_daemon(work, db, socket_path),
                                f"postgresql://fleet@127.0.0.1:{port}/fleet").start()
            try:
                harness.wait_for(lambda: "forward event=failed" in milter.stderr(), 20,
                                 "the forwarder to report the unreachable store")
                self.assertTrue(harness.unix_socket_accepts(socket_path))  # still serving
            finally:
                self.assertEqual(milter.stop(), 0)
            logged = milter.stderr()
            self.assertIn(f'url="postgresql://fleet@127.0.0.1:{port}/fleet"', logged)
            self.assertEqual(logged.count("forward event=failed"), 1, "rate-limited")
        finally:
            work.remove()


class FleetConfiguration(unittest.TestCase):
    def test_a_password_in_the_url_is_a_configuration_error_that_hides_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "c.yaml")
            with open(config, "w") as f:
                f.write('database:\n  url: "postgresql://smtpscope:hunter2pw@db.example/s"\n')
            for daemon in ("smtpscope-milter", "smtpscope-policyd"):
                done = subprocess.run([harness.binary(daemon), "-c", config, "--check-config"],
                                      capture_output=True, text=True, timeout=30)
                self.assertEqual(done.returncode, 2, daemon)
                self.assertIn("postgresql://smtpscope@db.example/s", done.stderr)
                self.assertNotIn("hunter2pw", done.stdout + done.stderr)


@unittest.skipIf(pg_server.available(), pg_server.available())
class ForwardAnIngestedLog(unittest.TestCase):
    def test_origins_never_collide_and_nothing_goes_twice(self):
        with pg_server.PgServer() as pg, tempfile.TemporaryDirectory() as tmp:
            store = PostgresDatabase(pg)
            env = password_env(pg)
            dbs = [os.path.join(tmp, name) for name in ("a.db", "b.db")]

            def forward(db):
                return subprocess.Popen([harness.binary("smtpscope"), "--db", db, "db",
                                         "forward", "-q", "--to", pg.url, "--host", "loghost"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env)

            for db in dbs:
                harness.smtpscope(db, "ingest", "-q", REAL_LOG, check=True)
            # Another origin's forwarder holds the same clients' timing in an
            # open transaction (a session of psql standing for it): this
            # one waits for it and then keeps the newer timing, never fails
            # on the other's rows.
            other = subprocess.Popen(
                [f"{pg_server.PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                 pg.socket_dir, "-p", str(pg.port), "-U", pg_server.ROLE, "-d",
                 pg_server.DATABASE],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env={"PATH": "/usr/bin:/bin", "PGPASSWORD": pg.password,
                                "HOME": pg.dir})
            # The schema first (an empty file forwarded), then psql's rows.
            empty, nothing = os.path.join(tmp, "empty.db"), os.path.join(tmp, "empty.log")
            open(nothing, "w").close()
            harness.smtpscope(empty, "ingest", "-q", nothing, check=True)
            self.assertEqual(forward(empty).wait(timeout=60), 0)
            other.stdin.write("BEGIN; INSERT INTO client_timing (client_addr, last_connect_us, "
                              "sessions, burst) SELECT DISTINCT client_addr, 0, 1, 1 FROM "
                              "(VALUES " + ", ".join(f"('{a}')" for (a,) in harness.query(
                                  dbs[0], "SELECT client_addr FROM client_timing")) +
                              ") AS c(client_addr); SELECT pg_sleep(2); COMMIT;\n")
            other.stdin.flush()
            harness.wait_for(lambda: store.value(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' AND "
                "state = 'active' AND pid <> pg_backend_pid()") == "1", 20,
                "the other transaction to hold its rows")
            runs = [forward(db) for db in dbs]
            other.stdin.close()
            self.assertEqual(other.wait(timeout=60), 0, other.stderr.read())
            for run in runs:
                out, err = run.communicate(timeout=120)
                self.assertEqual(run.returncode, 0, err)
            self.assertEqual(store.value("SELECT count(*) FROM client_timing WHERE "
                                         "last_connect_us = 0"), "0")
            self.assertEqual(store.value("SELECT count(*) FROM client_timing"),
                             str(harness.query(dbs[0], "SELECT count(*) FROM client_timing")[0][0]))
            again = forward(dbs[0])
            out, err = again.communicate(timeout=120)
            self.assertEqual(again.returncode, 0, err)
            self.assertIn("forwarded 0 events", out)
            local = {table: harness.query(dbs[0], f"SELECT count(*) FROM {table}")[0][0]
                     for table in ("sessions", "event_rows", "attribute_sets",
                                   "session_analysis")}
            for table, count in local.items():
                self.assertEqual(store.value(f"SELECT count(*) FROM {table}"), str(2 * count),
                                 table)
            # Two origins, the same history twice: the views count it twice.
            self.assertEqual(store.value("SELECT count(DISTINCT id >> 40) FROM sessions"), "2")
            self.assertEqual(store.value("SELECT count(*) FROM origins"), "3")
            shapes = harness.query(dbs[0], "SELECT sum(sessions) FROM client_day_shapes")[0][0]
            self.assertEqual(store.value("SELECT sum(sessions) FROM client_day_shapes"),
                             str(2 * shapes))
            origin = int(harness.query(dbs[0], "SELECT value FROM forward_state WHERE key = "
                                               "'origin'")[0][0])
            self.assertEqual(fleet_timelines(store, origin), local_timelines(dbs[0]))


@unittest.skipIf(pg_server.available(), pg_server.available())
class IngestIntoTheFleetStore(unittest.TestCase):
    """`ingest` reads into this host's file and forwards (--db URL or database.url)."""

    def test_logs_of_two_hosts_and_a_followed_log(self):
        with pg_server.PgServer() as pg, tempfile.TemporaryDirectory() as tmp:
            store = PostgresDatabase(pg)
            env = password_env(pg)
            local = os.path.join(tmp, "local.db")
            config = os.path.join(tmp, "smtpscope.yaml")
            with open(config, "w") as f:
                f.write(f"database:\n  path: {local}\n")
            done = subprocess.run([harness.binary("smtpscope"), "-c", config, "--db", pg.url,
                                   "ingest", "-q", REAL_LOG, OTHER_HOST_LOG],
                                  capture_output=True, text=True, timeout=120, env=env)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn(f"to {pg.url}", done.stdout)
            # Both hosts' sessions, as the file has them, under their syslog hosts.
            self.assertEqual(store.value("SELECT string_agg(host || '=' || n, ' ' ORDER BY host)"
                                         " FROM (SELECT host, count(*) n FROM sessions GROUP BY"
                                         " host) s"),
                             " ".join(f"{h}={n}" for h, n in harness.query(
                                 local, "SELECT host, count(*) FROM sessions GROUP BY host "
                                        "ORDER BY host")))
            self.assertEqual(store.value("SELECT count(*) FROM event_rows"),
                             str(harness.query(local, "SELECT count(*) FROM event_rows")[0][0]))
            # Following, with database.url in the configuration: lines that
            # arrive are in PostgreSQL within a few intervals.
            followed_db = os.path.join(tmp, "followed.db")
            log = os.path.join(tmp, "mail.log")
            with open(config, "w") as f:
                f.write(f"database:\n  path: {followed_db}\n  url: \"{pg.url}\"\n"
                        f"  forward_interval_ms: 100\n")
            with open(OTHER_HOST_LOG) as f:
                lines = f.readlines()
            with open(log, "w") as f:
                f.writelines(lines[:10])
            follower = subprocess.Popen([harness.binary("smtpscope"), "-c", config, "ingest",
                                         "-q", "--follow", log], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env)
            try:
                before = int(store.value("SELECT count(*) FROM event_rows"))
                harness.wait_for(lambda: int(store.value("SELECT count(*) FROM event_rows")) ==
                                 before + 10, 30, "the first lines forwarded")
                with open(log, "a") as f:
                    f.writelines(lines[10:])
                harness.wait_for(lambda: int(store.value("SELECT count(*) FROM event_rows")) ==
                                 before + len(lines), 30, "the appended lines forwarded")
            finally:
                follower.terminate()
                out, err = follower.communicate(timeout=60)
            self.assertEqual(follower.returncode, 0, err)
            self.assertEqual(store.value("SELECT count(*) FROM origins"), "2")


if __name__ == "__main__":
    unittest.main()
