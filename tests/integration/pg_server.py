"""A private PostgreSQL 15 server for integration tests.

PgServer runs initdb and pg_ctl from the system's PostgreSQL
(/usr/lib/postgresql/15/bin) in a temporary directory of its own, as an
unprivileged user (nobody: PostgreSQL refuses to run as root; the tests run as
root). It listens on a unix socket in that directory and on a free loopback
port, with password (SCRAM) authentication only, and has one test role owning
one test database. Nothing is copied from the build tree (a checkout under
root's mode-700 home is not readable by nobody). The server is stopped by its
postmaster's PID, never by name, so tests can run several servers in parallel.

    with PgServer() as pg:
        pg.url            # postgresql://smtpscope_test@127.0.0.1:PORT/smtpscope_test
        pg.socket_url     # postgresql://smtpscope_test@/smtpscope_test?host=DIR&port=PORT
        pg.password       # the test role's password (also in pg.password_file)
        pg.psql("SELECT 1")   # as the superuser, over the socket
        pg.stop(); pg.start() # a restart keeps the data
"""
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
RUN_AS = "nobody"
ROLE = "smtpscope_test"
DATABASE = "smtpscope_test"
SUPERUSER = "postgres"


def available():
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (to run PostgreSQL as an unprivileged user)"
    for tool in ("initdb", "pg_ctl", "postgres", "psql"):
        if not os.access(os.path.join(PG_BIN, tool), os.X_OK):
            return f"{PG_BIN}/{tool} missing (scripts/install-deps.sh installs postgresql-15)"
    if not shutil.which("runuser"):
        return "runuser missing (util-linux)"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_gone(pid):
    """True when pid no longer runs (a zombie counts as gone: the
    postmaster's parent, pg_ctl, has exited and nothing may reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class PgServer:
    def __init__(self, fsync=False):
        """fsync=False (the default) trades durability for speed, fine for a
        test server thrown away afterwards; benchmarks pass fsync=True."""
        self.fsync = fsync
        self.dir = tempfile.mkdtemp(prefix="smtpscope-pg-")
        # The server's own directory (data, socket, log) belongs to nobody;
        # the test's files beside it (the password file) stay root's.
        server_dir = os.path.join(self.dir, "server")
        self.data_dir = os.path.join(server_dir, "data")
        self.socket_dir = server_dir
        self.log_path = os.path.join(server_dir, "postgres.log")
        self.password = secrets.token_hex(16)
        self.superuser_password = secrets.token_hex(16)
        self.password_file = os.path.join(self.dir, "password")
        self.port = None
        self.pid = None
        self._role_created = False
        user = pwd.getpwnam(RUN_AS)
        self._uid, self._gid = user.pw_uid, user.pw_gid
        os.chmod(self.dir, 0o711)  # nobody reaches its subdirectory only
        os.mkdir(server_dir, 0o700)
        os.chown(server_dir, self._uid, self._gid)
        try:
            self._write_private(self.password_file, self.password + "\n")
            self._initdb()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # -- the server's life ------------------------------------------------

    def _write_private(self, path, text, owner_is_server=False):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if owner_is_server:
            os.chown(path, self._uid, self._gid)

    def _run_as_server(self, argv, **kwargs):
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": self.dir}
        return subprocess.run([shutil.which("runuser"), "-u", RUN_AS, "--", *argv], cwd=self.dir, env=env,
                              capture_output=True, text=True, timeout=120, **kwargs)

    def _initdb(self):
        superuser_pwfile = os.path.join(self.dir, "superuser-password")
        self._write_private(superuser_pwfile, self.superuser_password + "\n",
                            owner_is_server=True)
        done = self._run_as_server([
            f"{PG_BIN}/initdb", "-D", self.data_dir, "-U", SUPERUSER,
            f"--pwfile={superuser_pwfile}", "--auth=scram-sha-256",
            "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        os.unlink(superuser_pwfile)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")

    def start(self, attempts=5):
        """Starts the server (again, after stop(): the data and the port
        stay). A port taken meanwhile is retried with another."""
        if self.pid is not None:
            return self
        for _ in range(attempts):
            if self.port is None:
                self.port = _free_port()
            options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories={self.socket_dir} "
                       f"-c fsync={'on' if self.fsync else 'off'} "
                       f"-c synchronous_commit={'on' if self.fsync else 'off'} "
                       f"-c password_encryption=scram-sha-256")
            done = self._run_as_server([f"{PG_BIN}/pg_ctl", "-D", self.data_dir, "-l",
                                        self.log_path, "-o", options, "-w", "-t", "60",
                                        "start"])
            if done.returncode == 0:
                with open(os.path.join(self.data_dir, "postmaster.pid")) as pid_file:
                    self.pid = int(pid_file.readline())
                if not self._role_created:
                    self._create_role()
                return self
            self.port = None  # maybe taken meanwhile: choose another
        raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{self.log()}")

    def _create_role(self):
        # The password goes through psql's stdin, never its command line.
        escaped = self.password.replace("'", "''")
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{escaped}';\n"
                  f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n")
        self._role_created = True

    def stop(self, timeout=30):
        """Fast shutdown of the postmaster by its PID; SIGKILL after timeout."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 10)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if _process_gone(pid):
                    return
                time.sleep(0.05)
        raise RuntimeError(f"postgres {pid} still runs after SIGKILL")

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # -- using it ------------------------------------------------------------

    @property
    def url(self):
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def socket_url(self):
        return f"postgresql://{ROLE}@/{DATABASE}?host={self.socket_dir}&port={self.port}"

    def psql(self, sql, database="postgres"):
        """Runs sql (from stdin) as the superuser over the unix socket;
        returns psql's unaligned output. Raises on any error."""
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": self.dir,
               "PGPASSWORD": self.superuser_password}
        done = subprocess.run(
            [f"{PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.socket_dir, "-p", str(self.port), "-U", SUPERUSER, "-d", database],
            input=sql, capture_output=True, text=True, timeout=60, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def log(self):
        try:
            with open(self.log_path, errors="replace") as log:
                return log.read()
        except FileNotFoundError:
            return ""
