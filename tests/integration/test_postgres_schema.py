"""One schema for both backends (issue 16): schema/pg applied to a private
PostgreSQL 15 server (pg_server.py) reaches the version SQLite's schema
does, and a real log's history, ingested and analysed into SQLite, copied
with `smtpscope db copy`, reads the same through every view of
schema/README.md (session_timeline, client_summary, abort_patterns, events)
in both: each view's rows dumped by sqlite3 and by psql -At, sorted, JSON
attributes compared as objects (PostgreSQL orders a merged object's names
its own way), numbers rounded to 3 places. A second copy into the same
database is refused and adds nothing; a wrong password fails with a message
that names the URL and never the password.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import harness
import pg_server

REAL_LOG = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real",
                        "mchirico-blockbadip-mail.log.gz")
VIEWS = ("session_timeline", "client_summary", "abort_patterns", "events")
NULL = "<NULL>"
FLOAT_COLUMNS = ("seconds_after_connect", "abort_rate")


def normalise(column, text):
    """One cell as both databases' text should agree on it."""
    if text == NULL:
        return text
    if column == "attributes":
        return json.dumps(json.loads(text), sort_keys=True)
    if column in FLOAT_COLUMNS:
        return f"{float(text):.3f}"
    return text


def sqlite_rows(path, view):
    """The view's rows as sqlite3 prints them (NUL-separated, NULL marked)."""
    done = subprocess.run(["sqlite3", "-readonly", "-bail", "-noheader", "-list",
                           "-separator", "\x1f", "-newline", "\x1e", "-nullvalue", NULL,
                           path, f"SELECT * FROM {view}"],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return [record.decode("utf-8", "replace").split("\x1f")
            for record in done.stdout.split(b"\x1e") if record]


class PostgresDatabase:
    def __init__(self, pg):
        self.pg = pg

    def run_psql(self, sql, separated=True):
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": self.pg.dir,
               "PGPASSWORD": self.pg.password}
        extra = ["-F", "\x1f", "-R", "\x1e"] if separated else []
        done = subprocess.run(
            [f"{pg_server.PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-P", f"null={NULL}", *extra, "-h", self.pg.socket_dir, "-p", str(self.pg.port),
             "-U", pg_server.ROLE, "-d", pg_server.DATABASE, "-c", sql],
            capture_output=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout.decode("utf-8")

    def rows(self, view):
        out = self.run_psql(f"SELECT * FROM {view}")
        return [record.split("\x1f") for record in out.rstrip("\n").split("\x1e") if record]

    def value(self, sql):
        return self.run_psql(sql, separated=False).strip()


def columns_of(path, view):
    done = subprocess.run(["sqlite3", "-readonly", path,
                           f"SELECT name FROM pragma_table_info('{view}')"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def comparable(columns, rows):
    return sorted(tuple(normalise(c, v) for c, v in zip(columns, row, strict=True))
                  for row in rows)


@unittest.skipIf(pg_server.available(), pg_server.available())
class PostgresSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_server.PgServer()
        try:
            cls.pg.start()
        except BaseException:
            cls.pg.close()
            raise
        cls.db = PostgresDatabase(cls.pg)
        cls.tmp = tempfile.mkdtemp(prefix="smtpscope-pgschema-")
        cls.sqlite = os.path.join(cls.tmp, "smtpscope.db")
        # For the error cases: a database at its version, no rows.
        cls.empty = os.path.join(cls.tmp, "empty.db")
        nothing = os.path.join(cls.tmp, "empty.log")
        open(nothing, "w").close()
        harness.smtpscope(cls.empty, "ingest", "-q", nothing, check=True)

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy(self, *extra, env_password=True, password=None, sqlite=None):
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        env.pop("SMTPSCOPE_DB_PASSWORD", None)
        if env_password:
            env["SMTPSCOPE_DB_PASSWORD"] = password or self.pg.password
        return subprocess.run([harness.binary("smtpscope"), "--db", sqlite or self.sqlite, "db",
                               "copy", "--to", self.pg.url, *extra],
                              capture_output=True, text=True, timeout=600, env=env)

    def test_1_history_copied_reads_the_same_through_every_view(self):
        ingest = harness.smtpscope(self.sqlite, "ingest", "-q", REAL_LOG)
        self.assertEqual(ingest.returncode, 0, ingest.stderr)
        analyse = harness.smtpscope(self.sqlite, "analyse")
        self.assertEqual(analyse.returncode, 0, analyse.stderr)
        sessions = int(harness.query(self.sqlite, "SELECT count(*) FROM sessions")[0][0])
        self.assertGreater(sessions, 1000)

        done = self.copy("--password-file", self.pg.password_file, env_password=False)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("copied ", done.stdout)
        self.assertNotIn(self.pg.password, done.stdout + done.stderr)

        # The schema is PostgreSQL's own, at SQLite's version.
        sqlite_version = harness.query(self.sqlite, "SELECT max(version) FROM schema_version")[0][0]
        self.assertEqual(self.db.value("SELECT max(version) FROM schema_version"),
                         str(sqlite_version))
        # Rows stored as merge patches: the events view's smtpscope_json_patch is exercised.
        self.assertNotEqual(self.db.value("SELECT count(*) FROM event_rows WHERE set_id IS NOT "
                                          "NULL OR base_id IS NOT NULL"), "0")

        for table in ("sessions", "transactions", "event_rows", "attribute_sets",
                      "session_analysis", "client_day_shapes", "remote_events", "ingest_files"):
            with self.subTest(table=table):
                expected = harness.query(self.sqlite, f"SELECT count(*) FROM {table}")[0][0]
                self.assertEqual(self.db.value(f"SELECT count(*) FROM {table}"), str(expected))

        for view in VIEWS:
            with self.subTest(view=view):
                columns = columns_of(self.sqlite, view)
                expected = comparable(columns, sqlite_rows(self.sqlite, view))
                got = comparable(columns, self.db.rows(view))
                self.assertGreater(len(expected), 0)
                self.assertEqual(len(got), len(expected))
                self.assertEqual(got, expected)
        # The timeline's order is the view's own (session, time, id): the same row by row.
        columns = columns_of(self.sqlite, "session_timeline")
        in_order = [[normalise(c, v) for c, v in zip(columns, row)]
                    for row in self.db.rows("session_timeline")]
        self.assertEqual(in_order, [[normalise(c, v) for c, v in zip(columns, row)]
                                    for row in sqlite_rows(self.sqlite, "session_timeline")])

        # The second copy: refused, and the database keeps exactly the first.
        events = self.db.value("SELECT count(*) FROM event_rows")
        again = self.copy()
        self.assertEqual(again.returncode, 1, again.stdout + again.stderr)
        self.assertIn("already holds rows", again.stderr)
        self.assertIn(self.pg.url, again.stderr)
        self.assertEqual(self.db.value("SELECT count(*) FROM event_rows"), events)

        # New rows get ids after the copied ones.
        last_id = harness.query(self.sqlite, "SELECT max(id) FROM sessions")[0][0]
        next_id = self.db.value(
            "INSERT INTO sessions (stream, connect_us) VALUES ('test', 1) RETURNING id")
        self.assertEqual(int(next_id), last_id + 1)

    def test_2_wrong_password_names_the_url_not_the_password(self):
        wrong = "not-the-password-" + self.pg.password[:6]
        done = self.copy(password=wrong, sqlite=self.empty)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn(self.pg.url, done.stderr)
        self.assertIn("password authentication failed", done.stderr)
        self.assertNotIn(wrong, done.stdout + done.stderr)
        self.assertNotIn(self.pg.password, done.stdout + done.stderr)

    def test_3_a_password_in_the_url_is_a_usage_error(self):
        url = self.pg.url.replace("@", ":secret123@", 1)
        done = subprocess.run([harness.binary("smtpscope"), "--db", self.empty, "db", "copy",
                               "--to", url], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertNotIn("secret123", done.stdout + done.stderr)


def sqlite_schema(path):
    """{table or view: [columns in order]} and the index names of SQLite's schema."""
    names = harness.query(path, "SELECT name, type FROM sqlite_master WHERE type IN "
                                "('table', 'view', 'index') AND name NOT LIKE 'sqlite_%'")
    relations = {name: [row[1] for row in harness.query(
                     path, "SELECT cid, name FROM pragma_table_info(?) ORDER BY cid", name)]
                 for name, kind in names if kind != "index"}
    return relations, {name for name, kind in names if kind == "index"}


def pg_schema(db):
    relations = {}
    for line in db.value("SELECT table_name || ' ' || string_agg(column_name, ' ' ORDER BY "
                         "ordinal_position) FROM information_schema.columns WHERE "
                         "table_schema = 'public' GROUP BY table_name").splitlines():
        name, *columns = line.replace('"', "").split()
        relations[name] = columns
    indexes = set(db.value("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
                  .split())
    return relations, indexes


@unittest.skipIf(pg_server.available(), pg_server.available())
class PostgresMigrationTest(unittest.TestCase):
    """The schema alone: applied on connect, once, and a newer database refused."""

    def test_schema_applied_once_and_newer_refused(self):
        with pg_server.PgServer() as pg, tempfile.TemporaryDirectory() as tmp:
            db = PostgresDatabase(pg)
            empty = os.path.join(tmp, "empty.db")
            env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
            env.pop("PGPASSWORD", None)

            def copy():
                return subprocess.run([harness.binary("smtpscope"), "--db", empty, "db", "copy",
                                       "-q", "--to", pg.socket_url],
                                      capture_output=True, text=True, timeout=120, env=env)

            nothing = os.path.join(tmp, "empty.log")
            open(nothing, "w").close()
            # An empty log read: the SQLite file at its version, no rows.
            created = harness.smtpscope(empty, "ingest", "-q", nothing)
            self.assertEqual(created.returncode, 0, created.stderr)
            first = copy()
            self.assertEqual(first.returncode, 0, first.stderr)
            second = copy()  # an empty history copied again: nothing to collide with
            self.assertEqual(second.returncode, 0, second.stderr)
            self.assertEqual(db.value("SELECT string_agg(version::text, ' ' ORDER BY version) "
                                      "FROM schema_version"), "9 10")
            # The same tables and views with the same columns in the same order,
            # and SQLite's named indexes (PostgreSQL adds its own for keys);
            # but each side's forwarding bookkeeping (schema 10): SQLite's
            # local notes, PostgreSQL's origins.
            sqlite_relations, sqlite_indexes = sqlite_schema(empty)
            for local_only in ("forward_state", "forward_queue"):
                del sqlite_relations[local_only]
            pg_relations, pg_indexes = pg_schema(db)
            del pg_relations["origins"]
            self.assertEqual(pg_relations, sqlite_relations)
            self.assertLessEqual(sqlite_indexes, pg_indexes)
            # The events view's RFC 7396: null removes a name, nested objects merge.
            self.assertEqual(json.loads(db.value(
                "SELECT smtpscope_json_patch('{\"a\":\"1\",\"b\":\"2\",\"n\":{\"x\":1,\"y\":2}}', "
                "'{\"b\":null,\"c\":\"3\",\"n\":{\"y\":null}}')")),
                {"a": "1", "c": "3", "n": {"x": 1}})
            pg.psql("INSERT INTO schema_version VALUES (99, '099_future', 0)",
                    database=pg_server.DATABASE)
            newer = copy()
            self.assertEqual(newer.returncode, 1, newer.stderr)
            self.assertIn("schema version 99, newer than this smtpscope knows", newer.stderr)


if __name__ == "__main__":
    unittest.main()


@unittest.skipIf(pg_server.available(), pg_server.available())
class PostgresCopyEdgeTest(unittest.TestCase):
    def test_concurrent_copies_apply_the_schema_once_and_text_is_made_valid(self):
        with pg_server.PgServer() as pg, tempfile.TemporaryDirectory() as tmp:
            db = PostgresDatabase(pg)
            nothing = os.path.join(tmp, "empty.log")
            open(nothing, "w").close()
            paths = []
            for name in ("a.db", "b.db"):
                path = os.path.join(tmp, name)
                harness.smtpscope(path, "ingest", "-q", nothing, check=True)
                paths.append(path)
            # a.db holds a session whose HELO PostgreSQL text cannot hold as is.
            harness.query(paths[0], "INSERT INTO sessions (id, stream, connect_us, helo) "
                                    "VALUES (5, 'milter:1:1', 1, CAST(? AS TEXT))",
                          b"bad\xffhelo\x00x")
            env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
            env.pop("PGPASSWORD", None)
            # Both start at once on a new database: the schema is applied once
            # (the other waits for the lock and finds it there).
            runs = [subprocess.Popen([harness.binary("smtpscope"), "--db", path, "db", "copy",
                                      "-q", "--to", pg.url], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
                    for path in paths]
            outputs = [run.communicate(timeout=120) for run in runs]
            codes = [run.returncode for run in runs]
            self.assertEqual(db.value("SELECT count(*) FROM schema_version"), "2", outputs)
            # a.db's copy succeeds wherever it lands (b.db adds no rows); b.db's
            # too when it goes first, and is refused when a.db's rows are there.
            self.assertEqual(codes[0], 0, outputs)
            if codes[1] != 0:
                self.assertEqual(codes[1], 1, outputs)
                self.assertIn("already holds rows", outputs[1][1])
            self.assertIn("1 value held bytes PostgreSQL text cannot hold", outputs[0][0])
            self.assertEqual(db.value("SELECT helo FROM sessions WHERE id = 5"),
                             "bad\ufffdhelo\ufffdx")
            self.assertEqual(db.value("SELECT count(*) FROM sessions"), "1")
