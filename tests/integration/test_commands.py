"""The programs as an admin meets them: help, version, exit codes, clear
errors naming file and line, daemon mode with a PID file and SIGTERM."""
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "schema")
GEN_SESSIONS = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "gen_sessions.py")
YEAR_9999_US = 253402300799 * 10**6  # 9999-12-31 23:59:59 UTC


def run(*args, user=None):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, user=user)


def database_at_schema(path, version, wal=False):
    """A database as smtpscope built it at schema `version` (migrations 1 to
    `version` of schema/), with one session of 192.0.2.1."""
    import sqlite3
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " applied_us INTEGER NOT NULL)")
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".sql") and int(name[:3]) <= version:
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                db.executescript(f.read())
            db.execute("INSERT INTO schema_version VALUES (?, ?, 0)", (int(name[:3]), name[:-4]))
    db.execute("INSERT INTO sessions (id, stream, client_addr, connect_us, close_us)"
               " VALUES (1, 's', '192.0.2.1', 1795600000000000, 1795600001000000)")
    db.commit()
    db.close()


def latest_schema():
    return max(int(name[:3]) for name in os.listdir(SCHEMA_DIR) if name.endswith(".sql"))


def peak_rss_kib(*args):
    """Runs args with stdout discarded; returns (exit code, peak RSS in KiB),
    measured in a fresh process whose only child it is. AddressSanitizer
    keeps freed memory in quarantine; that is turned off, so a sanitizer
    build measures what the program holds."""
    probe = ("import resource, subprocess, sys\n"
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
             "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "")
               + "quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                         timeout=300, env=env)
    code, rss = out.stdout.split()
    return int(code), int(rss)


def stop_signals_blocked(pid):
    """True once the process blocks SIGTERM (its SigBlk mask in /proc)."""
    status = harness.read_file(f"/proc/{pid}/status")
    blocked = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("SigBlk:")), 16)
    return bool(blocked & (1 << (signal.SIGTERM - 1)))


class Commands(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.milter = harness.binary("smtpscope-milter")
        self.cli = harness.binary("smtpscope")
        self.policyd = harness.binary("smtpscope-policyd")

    def tearDown(self):
        self.work.remove()

    def write(self, name, text):
        path = self.work.join(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_help_and_version(self):
        for program in (self.milter, self.policyd, self.cli):
            result = run(program, "--help")
            self.assertEqual(result.returncode, 0)
            self.assertIn("Exit status", result.stdout)
            version = run(program, "--version")
            self.assertEqual(version.returncode, 0)
            self.assertRegex(version.stdout, r"^smtpscope(-milter|-policyd)? \d+\.\d+\.\d+\n$")

    def test_bad_configuration_exits_2_naming_file_line_and_key(self):
        path = self.write("bad.yaml", "database:\n  path: /tmp/x.db\nstore:\n  batch_size: -3\n")
        result = run(self.milter, "-c", path, "--check-config")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         f"smtpscope-milter: {path}:4: store.batch_size: -3 is out of range"
                         f" [1, 1000000]\n")

    def test_good_configuration_checks_ok(self):
        example = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "smtpscope.yaml")
        for program in (self.milter, self.policyd):
            result = run(program, "-c", example, "--check-config")
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_bad_listen_spec_is_a_configuration_error(self):
        path = self.write("listen.yaml", "policy:\n  listen: [\"tcp:127.0.0.1\"]\n")
        result = run(self.policyd, "-c", path, "--check-config")
        self.assertEqual(result.returncode, 2)
        self.assertIn('policy.listen: "tcp:127.0.0.1" is not unix:/path, inet:HOST:PORT or stdio',
                      result.stderr)

    def test_missing_socket_directory_is_a_clear_runtime_error(self):
        path = self.write("nodir.yaml", f"database:\n  path: {self.work.join('s.db')}\n"
                          "milter:\n  socket: unix:/nonexistent/dir/m.sock\n")
        result = run(self.milter, "-c", path, "--foreground")
        self.assertEqual(result.returncode, 1)
        self.assertIn("socket directory /nonexistent/dir does not exist", result.stderr)

    def test_sessions_without_a_database_exits_1(self):
        result = run(self.cli, "--db", self.work.join("none.db"), "sessions")
        self.assertEqual(result.returncode, 1)
        self.assertIn("no database at", result.stderr)

    def test_usage_errors_exit_2(self):
        self.assertEqual(run(self.cli).returncode, 2)
        self.assertEqual(run(self.cli, "sessions", "--limit", "0").returncode, 2)
        self.assertEqual(run(self.cli, "--db", "x", "sessions", "--since", "5w").returncode, 2)

    def test_configuration_errors_exit_2(self):
        """Before: a configuration error exited 1, -c naming a missing file was
        ignored (then "no database at /var/lib/..."), and an unknown command
        said "A subcommand is required"."""
        missing = self.work.join("missing.yaml")
        result = run(self.cli, "-c", missing, "sessions")
        self.assertEqual(result.returncode, 2)
        self.assertIn(missing, result.stderr)
        self.assertIn("does not exist", result.stderr)
        self.assertNotIn("no database", result.stderr)
        bad = self.write("bad.yaml", "database:\n  path: /tmp/x.db\nstore:\n  batch_size: -3\n")
        for command in (["sessions"], ["clients"], ["report", "--client", "192.0.2.1"],
                        ["servers"], ["db", "prune", "--older-than", "1d"]):
            result = run(self.cli, "-c", bad, *command)
            self.assertEqual(result.returncode, 2, command)
            self.assertEqual(result.stderr, f"smtpscope: {bad}:4: store.batch_size: -3 is out of"
                                            " range [1, 1000000]\n")
        result = run(self.cli, "--db", self.work.join("s.db"), "bogus")
        self.assertEqual(result.returncode, 2)
        self.assertIn('unknown command "bogus"', result.stderr)
        self.assertNotIn("A subcommand is required", result.stderr)
        self.assertEqual(result.stdout, "")
        result = run(self.cli, "db", "bogus")
        self.assertEqual(result.returncode, 2)
        self.assertIn('unknown command "bogus" (commands of db: prune', result.stderr)
        # No command at all is still "a subcommand is required".
        self.assertIn("A subcommand is required", run(self.cli).stderr)

    def test_client_options_take_an_address(self):
        """Before: `report --client ""` reported on some other client, exit 0."""
        db = self.work.join("s.db")
        database_at_schema(db, latest_schema())
        for command in (["report", "--client"], ["sessions", "--client"], ["watch", "--client"]):
            for bad in ("", "192.0.2", "mail.example.com", "192.0.2.1 "):
                result = run(self.cli, "--db", db, *command, bad)
                self.assertEqual(result.returncode, 2, (command, bad))
                self.assertEqual(result.stdout, "", (command, bad))
                self.assertIn("--client: ", result.stderr)
        self.assertIn("an empty address names no client",
                      run(self.cli, "--db", db, "report", "--client", "").stderr)
        self.assertIn('"mail.example.com" is not a client address',
                      run(self.cli, "--db", db, "sessions", "--client", "mail.example.com").stderr)
        # What smtpscope records as a client is accepted: IPv4, IPv6 and
        # Postfix's "unknown".
        result = run(self.cli, "--db", db, "report", "--client", "192.0.2.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("Client 192.0.2.1: 1 session"), result.stdout)
        for other in ("2001:db8::1", "unknown"):
            result = run(self.cli, "--db", db, "report", "--client", other)
            self.assertEqual(result.returncode, 1, other)
            self.assertIn(f"no sessions of client {other}", result.stderr)
            result = run(self.cli, "--db", db, "sessions", "--client", other)
            self.assertEqual((result.returncode, result.stdout), (0, "no sessions recorded\n"))

    def test_schema_upgrade_is_logged_on_stderr(self):
        """Before: the upgrade was logged on stdout, so the JSON of a database
        of an older version did not parse."""
        import json
        for command in (["clients", "--format", "json"], ["sessions", "--format", "json"],
                        ["report", "--client", "192.0.2.1", "--format", "json"],
                        ["correlate", "--format", "json"], ["servers", "--format", "json"]):
            db = self.work.join(f"old-{command[0]}.db")
            database_at_schema(db, 5)
            result = run(self.cli, "--db", db, *command)
            self.assertEqual(result.returncode, 0, result.stderr)
            json.loads(result.stdout)
            self.assertIn("schema event=upgrading", result.stderr)
            self.assertIn("schema event=upgraded", result.stderr)
            self.assertEqual(harness.query(db, "SELECT max(version) FROM schema_version"),
                             [(latest_schema(),)])

    def run_as_nobody(self, *args):
        """The command run as nobody: a copy of it in the test's own
        directory, since nobody may not reach the build folder (a checkout
        in root's mode-700 home)."""
        if os.geteuid() != 0:
            self.skipTest("needs root to run the command as nobody")
        cli = self.work.join("smtpscope-for-nobody")
        if not os.path.exists(cli):
            shutil.copy(self.cli, cli)
            os.chmod(cli, 0o755)
        return run(cli, *args, user="nobody")

    def test_read_only_database_is_named_read_only(self):
        """Before: "is not an smtpscope database: ... attempt to write a
        readonly database"; an older schema on a read-only file failed in
        migration 6 with the same SQLite message."""
        import json
        # The directory is not writable for nobody: SQLite cannot create the
        # WAL index it needs to read a WAL database.
        os.chmod(self.work.path, 0o755)
        db = self.work.join("wal.db")
        database_at_schema(db, latest_schema(), wal=True)
        os.chmod(db, 0o444)
        result = self.run_as_nobody("--db", db, "sessions")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"database {db} is read-only for this user", result.stderr)
        self.assertIn(f"{db}-shm", result.stderr)
        self.assertNotIn("not an smtpscope database", result.stderr)
        # An older schema needs an upgrade it may not write: said so, file untouched.
        old = self.work.join("old.db")
        database_at_schema(old, 5)
        os.chmod(old, 0o444)
        for command in (["sessions"], ["clients"], ["servers"]):
            result = self.run_as_nobody("--db", old, *command)
            self.assertEqual(result.returncode, 1, command)
            self.assertIn(f"database {old} is read-only for this user and has schema version 5",
                          result.stderr)
        self.assertEqual(harness.query(old, "SELECT max(version) FROM schema_version"), [(5,)])
        # A current read-only database is read; its stored analysis is
        # behind, so the sessions are analysed in memory, with a note;
        # maintenance refuses clearly.
        current = self.work.join("current.db")
        database_at_schema(current, latest_schema())
        os.chmod(current, 0o444)
        result = self.run_as_nobody("--db", current, "sessions")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("192.0.2.1", result.stdout)
        self.assertEqual(result.stderr, "")
        result = self.run_as_nobody("--db", current, "clients", "--format", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["clients"][0]["client"], "192.0.2.1")
        self.assertIn(f"note: {current} is read-only for this user and its newest sessions are not "
                      "analysed yet: analysing its sessions in memory", result.stderr)
        self.assertNotIn("attempt to write", result.stderr)
        result = self.run_as_nobody("--db", current, "db", "prune", "--older-than", "1d")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"database {current} is read-only for this user", result.stderr)

    def test_times_outside_chrono_range_are_shown_as_they_are(self):
        """Before: a session in year 9999 was shown as 1816-03-30."""
        import json
        db = self.work.join("s.db")
        database_at_schema(db, latest_schema())
        harness.query(db, "INSERT INTO sessions (id, stream, client_addr, connect_us, close_us)"
                          " VALUES (2, 't', '192.0.2.2', ?, ?)", YEAR_9999_US, YEAR_9999_US + 5000)
        harness.query(db, "INSERT INTO sessions (id, stream, client_addr, connect_us)"
                          " VALUES (3, 'u', '192.0.2.3', 0)")
        result = run(self.cli, "--db", db, "sessions")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("192.0.2.2 () -> ?  9999-12-31 23:59:59 UTC  0.005 s", result.stdout)
        self.assertIn("192.0.2.3 () -> ?  1970-01-01 00:00:00 UTC  open", result.stdout)
        self.assertNotIn("1816", result.stdout)
        result = run(self.cli, "--db", db, "sessions", "--format", "json")
        sessions = {s["id"]: s for s in json.loads(result.stdout)["sessions"]}
        self.assertEqual(sessions[2]["connect_us"], YEAR_9999_US)

    def test_sessions_are_streamed(self):
        """Before: every session asked for was held at once (sessions --limit
        1000000 held 1.45 GB; here 20,000 sessions took 69 MB more than 10 as
        text, 490 MB more as JSON). Now one at a time: ~5 MB more."""
        db = self.work.join("many.db")
        subprocess.run([sys.executable, GEN_SESSIONS, self.cli, db, "20000"], check=True,
                       timeout=300)
        for output in ("text", "json"):
            peaks = []
            for limit in ("10", "1000000"):
                code, rss = peak_rss_kib(self.cli, "--db", db, "sessions", "--limit", limit,
                                         "--format", output)
                self.assertEqual(code, 0)
                peaks.append(rss)
            self.assertLess(peaks[1] - peaks[0], 20 * 1024, (output, peaks))
        result = run(self.cli, "--db", db, "sessions", "--limit", "3", "--client", "10.0.0.199")
        self.assertEqual(result.stdout.count("\nsession "), 2)
        self.assertTrue(result.stdout.startswith("session 19998  10.0.0.199:"), result.stdout[:80])

    def test_daemon_mode_writes_a_pid_file_and_stops_on_sigterm(self):
        socket_path = self.work.join("m.sock")
        pid_file = self.work.join("milter.pid")
        path = self.write("daemon.yaml", f"database:\n  path: {self.work.join('s.db')}\n"
                          f"milter:\n  socket: unix:{socket_path}\n  pid_file: {pid_file}\n"
                          f"daemon:\n  allow_root: true\nlogging:\n  target: syslog\n")
        result = run(self.milter, "-c", path)
        self.assertEqual(result.returncode, 0, result.stderr)  # the parent returns at once
        harness.wait_for(lambda: os.path.exists(pid_file) and harness.read_file(pid_file).strip(),
                         10, "pid file")
        pid = int(harness.read_file(pid_file))
        self.assertTrue(harness.pid_alive(pid))
        self.assertEqual(os.stat(socket_path).st_mode & 0o777, 0o660)
        os.kill(pid, signal.SIGTERM)
        harness.wait_for(lambda: not harness.pid_alive(pid), 15, "daemon to exit")
        self.assertFalse(os.path.exists(pid_file))

    def test_refuses_to_run_as_root_without_a_user(self):
        path = self.write("root.yaml", f"database:\n  path: {self.work.join('s.db')}\n"
                          f"milter:\n  socket: unix:{self.work.join('m.sock')}\n")
        result = run(self.milter, "-c", path, "--foreground")
        self.assertEqual(result.returncode, 2)
        self.assertIn("refusing to run as root: set daemon.user", result.stderr)

    def test_daemons_drop_to_the_configured_user(self):
        import pwd
        nobody = pwd.getpwnam("nobody")
        os.chmod(self.work.path, 0o1777)  # the unprivileged daemons create the database here
        db, socket_path = self.work.join("s.db"), self.work.join("m.sock")
        port = harness.free_port()
        milter = harness.Daemon(self.work, "smtpscope-milter",
                                f"database:\n  path: {db}\nmilter:\n  socket: unix:{socket_path}\n"
                                "daemon:\n  user: nobody\n", lambda: os.path.exists(socket_path))
        policyd = harness.Daemon(self.work, "smtpscope-policyd",
                                 f"database:\n  path: {db}\npolicy:\n"
                                 f"  listen: [\"inet:127.0.0.1:{port}\"]\ndaemon:\n  user: nobody\n",
                                 lambda: harness.port_listening(port))
        self.addCleanup(milter.stop)  # also when an assertion fails first
        self.addCleanup(policyd.stop)
        for daemon in (milter.start(), policyd.start()):
            status = harness.read_file(f"/proc/{daemon.process.pid}/status")
            uids = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")][0]
            self.assertEqual(set(uids), {str(nobody.pw_uid)}, daemon.name)
        self.assertEqual(os.stat(socket_path).st_uid, nobody.pw_uid)
        self.assertEqual(os.stat(db).st_uid, nobody.pw_uid)
        self.assertEqual(milter.stop(), 0, milter.stderr())
        self.assertEqual(policyd.stop(), 0, policyd.stderr())

    def test_daemons_started_together_and_stopped_at_once_exit_cleanly(self):
        """systemd starts both units at once on a new database; an admin may stop
        them a moment later. Before: one of them often died with "set WAL mode:
        database is locked", and a SIGTERM during start-up killed a daemon
        halfway through creating the database."""
        import time
        for attempt in range(10):
            db = self.work.join(f"s{attempt}.db")
            port = harness.free_port()
            daemons = [harness.milter_daemon(self.work, db, self.work.join(f"m{attempt}.sock")),
                       harness.policy_daemon(self.work, db, [f"inet:127.0.0.1:{port}"])]
            processes = [subprocess.Popen([harness.binary(d.name), "-c", d.config_path,
                                           "--foreground"], stderr=subprocess.PIPE, text=True)
                         for d in daemons]
            for process in processes:
                self.addCleanup(lambda p=process: p.poll() is None and p.kill())
            for process in processes:
                # From the moment the daemon holds the stop signals (its first
                # step; before that the kernel's default applies to any program)
                # to up to 90 ms into its start-up.
                harness.wait_for(lambda: stop_signals_blocked(process.pid), 10, "signals blocked")
            time.sleep(0.01 * attempt)
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                _, stderr = process.communicate(timeout=30)
                self.assertEqual(process.returncode, 0, stderr)
            self.assertEqual(harness.query(db, "SELECT max(version) FROM schema_version"),
                             [(harness.query(db, "SELECT count(*) FROM schema_version")[0][0],)])

    def test_json_output_parses(self):
        import json
        db = self.work.join("s.db")
        socket_path = self.work.join("m.sock")
        milter = harness.milter_daemon(self.work, db, socket_path).start()
        milter.stop()
        out = run(self.cli, "--db", db, "sessions", "--format", "json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout), {"sessions": []})

    def test_db_prune_removes_old_sessions_and_reports_json(self):
        import json
        import time
        db = self.work.join("s.db")
        out = run(self.cli, "--db", db, "ingest", self.write("empty.log", ""))
        self.assertIn("empty.log: no complete line yet, nothing to read", out.stdout)
        now_us = int(time.time() * 1e6)
        day_us = 86400 * 10**6
        for i, age_days in enumerate((40, 35, 1)):
            harness.query(db, "INSERT INTO sessions (id, stream, client_addr, connect_us)"
                              " VALUES (?, 's', '192.0.2.1', ?)", i + 1, now_us - age_days * day_us)
            harness.query(db, "INSERT INTO events (session_id, source, stage, time_us)"
                              " VALUES (?, 'milter', 'connect', ?)", i + 1, now_us - age_days * day_us)
        out = run(self.cli, "--db", db, "db", "prune", "--older-than", "30d", "--format", "json",
                  "--vacuum")
        self.assertEqual(out.returncode, 0, out.stderr)
        counts = json.loads(out.stdout)
        self.assertEqual((counts["sessions"], counts["events"]), (2, 2))
        self.assertEqual(harness.query(db, "SELECT id FROM sessions"), [(3,)])
        out = run(self.cli, "--db", db, "db", "prune", "--older-than", "30d")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^pruned everything before \d{4}-\d\d-\d\d .*: 0 sessions")
        out = run(self.cli, "--db", db, "db", "prune", "--older-than", "soon")
        self.assertEqual(out.returncode, 2)
        self.assertIn("bad duration", out.stderr)
        out = run(self.cli, "--db", self.work.join("missing.db"), "db", "prune", "--older-than", "1d")
        self.assertEqual(out.returncode, 1)

    def test_systemd_units_are_valid(self):
        import shutil
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        units_dir = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "systemd")
        units = sorted(os.path.join(units_dir, name) for name in os.listdir(units_dir))
        self.assertEqual(len(units), 4)
        # The man pages are not installed here either: each page a unit's
        # Documentation= names must be one the build makes.
        out = run("systemd-analyze", "verify", "--man=no", *units)
        # The binaries are not installed here; anything else is a real problem.
        problems = [line for line in (out.stdout + out.stderr).splitlines()
                    if line.strip() and "is not executable" not in line]
        self.assertEqual(problems, [])
        for unit in units:
            for name, section in re.findall(r"man:([\w.-]+)\((\d)\)", harness.read_file(unit)):
                page = os.path.join(harness.BUILD_DIR, "man", f"{name}.{section}")
                self.assertTrue(os.path.exists(page), f"{unit} names {page}, not built")


if __name__ == "__main__":
    unittest.main()
