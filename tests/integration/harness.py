"""Test harness: a private Postfix on loopback and the smtpscope daemons.

Each PostfixInstance lives in its own temporary directory (config, queue,
data, maillog) and listens on a free loopback port, so tests can run in
parallel. Everything started here is stopped by PID. Used by the
integration tests and by the live demo.
"""
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

BUILD_DIR = os.environ.get("SMTPSCOPE_BUILD_DIR",
                           os.path.join(os.path.dirname(__file__), "..", "..", "build"))

MILTER_CONNECT_MACROS = ("j {daemon_name} {daemon_addr} {daemon_port} v _ {client_addr} "
                         "{client_port} {client_name} {client_ptr} {client_resolve} "
                         "{client_connections}")
REJECTED_RECIPIENT = "reject@test.example"


def binary(name):
    for sub in ("milter", "cli", "policyd", ""):
        path = os.path.join(BUILD_DIR, sub, name)
        if os.path.exists(path):
            return os.path.abspath(path)
    raise FileNotFoundError(f"{name} not built under {BUILD_DIR}")


def smtpscope(db, *args, check=False, stdin=None, timeout=300):
    """`smtpscope --db DB ARGS...` with its output captured as text."""
    return subprocess.run([binary("smtpscope"), "--db", db, *args], capture_output=True,
                          text=True, timeout=timeout, check=check, input=stdin)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_listening(port):
    """True when a TCP socket listens on the port; checked in /proc so no
    connection is made (a probe connection would be an SMTP session)."""
    with open("/proc/net/tcp") as table:
        next(table)
        for row in table:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                return True
    return False


def unix_socket_accepts(path):
    """True when a server accepts connections on the unix socket `path`.
    The file alone proves nothing: a server killed with -9 leaves it behind,
    and its successor replaces it only when it binds. The probe connects and
    closes without a word; the milter records nothing for it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(path)
        except OSError:  # no file yet, a stale file (refused), or not a socket
            return False
    return True


def read_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class Workdir:
    """A temporary directory that postfix-owned processes can traverse."""

    def __init__(self, prefix="smtpscope-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


class PostfixInstance:
    """A private Postfix: own config_directory, queue, data and maillog."""

    def __init__(self, workdir, milter_socket=None, policy_service=None, extra=None, tls=False,
                 sasl_users=None, postscreen=False):
        self.dir = workdir.join("postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.maillog = os.path.join(self.dir, "maillog")
        self.port = free_port()
        self.milter_socket = milter_socket
        self.policy_service = policy_service
        self.extra = extra or {}
        self.tls = tls
        self.sasl_users = sasl_users or {}  # {"user@realm": "password"}: SMTP AUTH on
        # postscreen(8) on the port in front of smtpd (smtpd pass), with the
        # greet test only: 1 s greet wait, pregreet enforced, loopback not
        # whitelisted (postscreen_access_list empty).
        self.postscreen = postscreen
        self.master_pid = None

    def postconf(self, *args):
        subprocess.run(["postconf", "-c", self.etc, *args], check=True,
                       stdout=subprocess.DEVNULL)

    def configure(self):
        os.makedirs(self.etc)
        os.makedirs(self.queue)
        os.chmod(self.dir, 0o755)
        shutil.copy("/etc/postfix/master.cf", os.path.join(self.etc, "master.cf"))
        open(os.path.join(self.etc, "main.cf"), "w").close()
        recipient_checks = (f"check_recipient_access inline:{{ {{{REJECTED_RECIPIENT} = "
                            f"REJECT no such user here}} }}, permit_mynetworks, "
                            f"reject_unauth_destination")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": os.path.join(self.dir, "data"),
            "myhostname": "mx.test.example",
            "mydomain": "test.example",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mydestination": "test.example",
            "mynetworks": "127.0.0.0/8",
            "default_transport": "discard",
            "local_transport": "discard",
            "relay_transport": "discard",
            "virtual_transport": "discard",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "smtpd_client_port_logging": "yes",
            "smtpd_recipient_restrictions": recipient_checks,
            "smtpd_error_sleep_time": "0",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "default_process_limit": "250",
        }
        if self.policy_service:
            settings.update(self.policy_settings())
        if self.milter_socket:
            settings.update({
                "smtpd_milters": self.milter_socket,
                "milter_default_action": "accept",
                "milter_connect_macros": MILTER_CONNECT_MACROS,
            })
        if self.tls:
            settings.update(self.tls_settings())
        if self.sasl_users:
            settings.update(self.sasl_settings())
        if self.postscreen:
            settings.update({"postscreen_access_list": "", "postscreen_greet_wait": "1s",
                             "postscreen_greet_action": "enforce",
                             "postscreen_pipelining_enable": "no",
                             "postscreen_bare_newline_enable": "no"})
        settings.update(self.extra)
        self.postconf("-e", *[f"{k} = {v}" for k, v in settings.items()])
        self.postconf("-M#", "smtp/inet")
        if self.postscreen:
            self.postconf("-M", f"127.0.0.1:{self.port}/inet = 127.0.0.1:{self.port} inet n - n - 1"
                                f" postscreen")
            self.postconf("-M", "smtpd/pass = smtpd pass - - n - - smtpd")
            self.postconf("-M", "dnsblog/unix = dnsblog unix - - n - 0 dnsblog")
            self.postconf("-M", "tlsproxy/unix = tlsproxy unix - - n - 0 tlsproxy")
        else:
            self.postconf("-M", f"127.0.0.1:{self.port}/inet = 127.0.0.1:{self.port} inet n - n - -"
                                f" smtpd")
        self.postconf("-F", "*/*/chroot = n")
        if getattr(self, "spawn_service", None):
            argv = " ".join(self.spawn_service["argv"])
            user = self.spawn_service.get("user", "nobody")
            self.postconf("-M", f"smtpscopepolicy/unix = smtpscopepolicy unix - n n - 0 spawn"
                                f" user={user} argv={argv}")

    def policy_settings(self):
        """check_policy_service at every stage. smtpd_delay_reject = no makes
        Postfix ask at CONNECT, HELO and MAIL instead of all at RCPT. The
        policy check comes before the recipient reject, so the policy server
        sees the recipient Postfix then rejects."""
        service = self.policy_service
        if isinstance(service, dict):  # spawn(8): {"argv": [...], "user": ...}
            self.spawn_service = service
            service = "unix:private/smtpscopepolicy"
        check = f"check_policy_service {service}"
        return {
            "smtpd_delay_reject": "no",
            "smtpd_policy_service_default_action": "DUNNO",
            "smtpd_client_restrictions": check,
            "smtpd_helo_restrictions": check,
            "smtpd_sender_restrictions": check,
            "smtpd_recipient_restrictions": (
                f"{check}, check_recipient_access inline:{{ {{{REJECTED_RECIPIENT} = "
                f"REJECT no such user here}} }}, permit_mynetworks, reject_unauth_destination"),
            "smtpd_data_restrictions": check,
            "smtpd_end_of_data_restrictions": check,
        } | ({"smtpscopepolicy_time_limit": "3600"} if isinstance(self.policy_service, dict)
             else {})

    def sasl_settings(self):
        """SMTP AUTH PLAIN/LOGIN through Cyrus SASL with a private sasldb
        (cyrus_sasl_config_path points at this instance's own smtpd.conf)."""
        sasl_dir = os.path.join(self.etc, "sasl")
        os.makedirs(sasl_dir)
        sasldb = os.path.join(sasl_dir, "sasldb2")
        with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as conf:
            conf.write(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                       f"mech_list: PLAIN LOGIN\nsasldb_path: {sasldb}\n")
        for login, password in self.sasl_users.items():
            user, realm = login.split("@", 1)
            subprocess.run(["saslpasswd2", "-p", "-c", "-f", sasldb, "-u", realm, user],
                           input=password.encode(), check=True)
        shutil.chown(sasldb, user="postfix")
        return {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "cyrus",
                "cyrus_sasl_config_path": sasl_dir, "smtpd_sasl_path": "smtpd",
                "smtpd_sasl_local_domain": ""}

    def tls_settings(self):
        """A self-signed certificate for STARTTLS (security level may)."""
        key, cert = os.path.join(self.etc, "key.pem"), os.path.join(self.etc, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mx.test.example", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        return {"smtpd_tls_cert_file": cert, "smtpd_tls_key_file": key,
                "smtpd_tls_security_level": "may", "smtpd_tls_loglevel": "1"}

    def start(self):
        self.configure()
        subprocess.run(["postfix", "-c", self.etc, "check"], check=True)
        subprocess.run(["postfix", "-c", self.etc, "start"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid_file = os.path.join(self.queue, "pid", "master.pid")
        wait_for(lambda: os.path.exists(pid_file) and read_file(pid_file).strip(), 10,
                 "postfix master.pid")
        self.master_pid = int(read_file(pid_file).strip())
        wait_for(lambda: port_listening(self.port), 10, f"postfix on port {self.port}")
        return self

    def stop(self):
        if self.master_pid is None:
            return
        subprocess.run(["postfix", "-c", self.etc, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: not pid_alive(self.master_pid), 15, "postfix master to exit")
        except TimeoutError:
            os.kill(self.master_pid, signal.SIGKILL)
        self.master_pid = None

    def log_lines(self):
        if not os.path.exists(self.maillog):
            return []
        with open(self.maillog, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()

    def wait_for_log(self, needle, timeout=10, count=1):
        wait_for(lambda: sum(needle in line for line in self.log_lines()) >= count, timeout,
                 f"{count}x '{needle}' in maillog")


class Daemon:
    """One of our daemons in the foreground, with a generated YAML config."""

    def __init__(self, workdir, name, config_text, ready, ready_means="listen"):
        """`ready()` is true once the daemon serves; `ready_means` says what it
        waits for, for the error when it never is."""
        self.workdir = workdir
        self.name = name
        self.config_path = workdir.join(f"{name}.yaml")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.ready = ready
        self.ready_means = ready_means
        self.process = None
        self.stderr_path = workdir.join(f"{name}.stderr")

    def start(self):
        stderr = open(self.stderr_path, "ab")
        self.process = subprocess.Popen([binary(self.name), "-c", self.config_path, "--foreground"],
                                        stdout=stderr, stderr=stderr)
        try:
            wait_for(lambda: self.ready() or self.process.poll() is not None, 10,
                     f"{self.name} to {self.ready_means}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; its stderr: {self.stderr()[-2000:]}") from None
        finally:
            stderr.close()
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.stderr()}")
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the daemon by PID and returns its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        rc = self.process.returncode
        self.process = None
        return rc

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def store_section(settings=None):
    """The store: section; batches every 50 ms unless `settings` says otherwise."""
    merged = {"batch_interval_ms": 50} | (settings or {})
    return "store:\n" + "".join(f"  {key}: {value}\n" for key, value in merged.items())


def milter_daemon(workdir, db_path, socket_path, extra_milter="", store=None):
    config = f"""database:
  path: {db_path}
{store_section(store)}milter:
  socket: unix:{socket_path}
  socket_mode: "0666"
{extra_milter}daemon:
  allow_root: true
logging:
  level: info
"""
    return Daemon(workdir, "smtpscope-milter", config, lambda: unix_socket_accepts(socket_path),
                  f"accept connections on {socket_path}")


def policy_daemon(workdir, db_path, listen, extra_policy="", store=None):
    """smtpscope-policyd on `listen` (a list of unix:/path or inet:HOST:PORT)."""
    listen_yaml = ", ".join(f'"{spec}"' for spec in listen)
    config = f"""database:
  path: {db_path}
{store_section(store)}policy:
  listen: [{listen_yaml}]
  socket_mode: "0666"
{extra_policy}daemon:
  allow_root: true
logging:
  level: info
"""

    def ready():
        for spec in listen:
            if spec.startswith("unix:") and not os.path.exists(spec[5:]):
                return False
            if spec.startswith("inet:") and not port_listening(int(spec.rsplit(":", 1)[1])):
                return False
        return True

    return Daemon(workdir, "smtpscope-policyd", config, ready)


def query(db_path, sql, *params):
    db = sqlite3.connect(db_path, timeout=10)
    try:
        with db:  # commits a write
            return db.execute(sql, params).fetchall()
    finally:
        db.close()


def wait_for_closed(db_path, clients=None, count=None, timeout=20):
    """Waits until the milter has recorded the end of the sessions: Postfix
    logs "disconnect from" before it sends the milter its QUIT, so a test
    that stops the milter right after that line can lose the close. With
    `clients`: each has a session and none is open; with `count`: at least
    that many closed milter sessions."""
    def closed():
        try:
            if clients is not None:
                rows = [query(db_path, "SELECT count(*), count(close_us) FROM sessions"
                              " WHERE client_addr = ? AND stream LIKE 'milter:%'", c)[0]
                        for c in clients]
                return all(total > 0 and total == closed for total, closed in rows)
            return query(db_path, "SELECT count(close_us) FROM sessions WHERE stream LIKE"
                         " 'milter:%'")[0][0] >= count
        except sqlite3.OperationalError:
            return False
    wait_for(closed, timeout, f"recorded closes of {clients or count}")


def session_stages(db_path, client_addr, source="milter"):
    """One source's stage sequences for every session of a client, oldest first."""
    sessions = query(db_path, "SELECT id FROM sessions WHERE client_addr = ? ORDER BY connect_us",
                     client_addr)
    return [[stage for (stage,) in query(
        db_path, "SELECT stage FROM events WHERE session_id = ? AND source = ? ORDER BY id",
        session_id, source)] for (session_id,) in sessions]


def merged_timeline(db_path, client_addr):
    """(source, stage) of every event of a client's sessions, in time order."""
    return query(db_path, """SELECT e.source, e.stage FROM events e JOIN sessions s
        ON s.id = e.session_id WHERE s.client_addr = ? ORDER BY e.time_us, e.id""", client_addr)
