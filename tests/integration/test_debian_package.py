"""The Debian package as an admin meets it: built with dpkg-buildpackage from
a copy of the source tree, lintian-clean, installed with dpkg -i on this
machine, the milter run from the installed files as its systemd unit runs
it (user, group, command line) against a private Postfix, then removed and
purged without a trace (files, user, /var/lib/smtpscope).

Needs root (dpkg -i), debhelper, dpkg-dev and lintian; skips otherwise, and
when a smtpscope package or user is already on the machine (it would replace
or delete them). The package build dominates the time: DEB_BUILD_OPTIONS
parallel=2 nocheck (the unit tests run in ctest anyway)."""
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "lintian")
PROGRAMS = ("/usr/bin/smtpscope", "/usr/sbin/smtpscope-milter", "/usr/sbin/smtpscope-policyd")
CONFIG = "/etc/smtpscope/smtpscope.yaml"
MAN_PAGES = ("smtpscope.1", "smtpscope-milter.8", "smtpscope-policyd.8", "smtpscope.yaml.5")
UNITS = ("smtpscope-milter.service", "smtpscope-policyd.service", "smtpscope-prune.service",
         "smtpscope-prune.timer")


def run(*args, timeout=120, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)


def cmake_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"^project\(smtpscope VERSION ([0-9.]+)", f.read(), re.M).group(1)


def changelog_version():
    with open(os.path.join(SOURCE_DIR, "debian", "changelog"), encoding="utf-8") as f:
        return re.match(r"^smtpscope \(([^)]+)\)", f.readline()).group(1)


def package_status():
    result = run("dpkg-query", "-W", "-f=${db:Status-Status}", "smtpscope")
    return result.stdout.strip() if result.returncode == 0 else "not-installed"


def exists_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def exists_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def copy_source(destination):
    """The checkout's files (tracked and new, not ignored: no build trees)."""
    listed = run("git", "-C", SOURCE_DIR, "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard")
    if listed.returncode != 0:
        shutil.copytree(SOURCE_DIR, destination, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "build*", "__pycache__"))
        return
    for name in filter(None, listed.stdout.split("\0")):
        source = os.path.join(SOURCE_DIR, name)
        if not os.path.lexists(source):
            continue  # deleted in the working tree, not yet in the index
        target = os.path.join(destination, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def unit_settings(path):
    """Key -> [values] of a systemd unit file."""
    settings = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
            if match:
                settings.setdefault(match.group(1), []).append(match.group(2))
    return settings


class ChangelogVersion(unittest.TestCase):
    def test_changelog_has_the_cmake_project_version(self):
        """debian/rules refuses to build otherwise; this says so without a build."""
        self.assertEqual(changelog_version(), cmake_version(),
                         "add a debian/changelog entry for the version in CMakeLists.txt")


class DebianPackage(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: installs the package with dpkg -i")
        missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
        if missing:
            self.skipTest(f"{', '.join(missing)} not installed (Debian packages debhelper, "
                          "dpkg-dev, lintian)")
        if package_status() != "not-installed":
            self.skipTest(f"a smtpscope package is on this machine ({package_status()}); "
                          "the test would replace it")
        if exists_user("smtpscope") or os.path.exists("/var/lib/smtpscope"):
            self.skipTest("user smtpscope or /var/lib/smtpscope exists; purging would delete it")
        self.temp = tempfile.mkdtemp(prefix="smtpscope-deb-")
        self.addCleanup(shutil.rmtree, self.temp, ignore_errors=True)
        self.addCleanup(self.purge_if_installed)
        self.work = harness.Workdir()
        self.addCleanup(self.work.remove)
        self.milter = None
        self.postfix = None

    def purge_if_installed(self):
        if self.milter is not None and self.milter.poll() is None:
            self.milter.kill()
            self.milter.wait()
        if self.postfix is not None:
            self.postfix.stop()
        if package_status() != "not-installed":
            run("dpkg", "--purge", "smtpscope", timeout=300)

    def build(self):
        source = os.path.join(self.temp, f"smtpscope-{cmake_version()}")
        copy_source(source)
        log_path = os.path.join(self.temp, "build.log")
        env = os.environ | {"DEB_BUILD_OPTIONS": "parallel=2 nocheck", "LC_ALL": "C.UTF-8"}
        with open(log_path, "w") as log:
            result = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source,
                                    stdout=log, stderr=subprocess.STDOUT, env=env, timeout=1500)
        if result.returncode != 0:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                tail = "".join(log.readlines()[-40:])
            self.fail(f"dpkg-buildpackage exited {result.returncode}:\n{tail}")
        return os.path.join(self.temp, f"smtpscope_{cmake_version()}_amd64.deb")

    def check_installed(self):
        version = cmake_version()
        result = run("smtpscope", "--version")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, f"smtpscope {version}"))
        for daemon in ("smtpscope-milter", "smtpscope-policyd"):
            result = run(daemon, "--check-config")
            self.assertEqual((result.returncode, result.stdout.strip()[:len(CONFIG) + 4]),
                             (0, f"{CONFIG}: ok"), result.stderr)
            self.assertEqual(shutil.which(daemon), f"/usr/sbin/{daemon}")
        self.assertEqual(shutil.which("smtpscope"), "/usr/bin/smtpscope")
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "smtpscope").stdout
        self.assertIn(CONFIG, conffiles)
        with open(CONFIG, encoding="utf-8") as installed, \
                open(os.path.join(SOURCE_DIR, "conf", "smtpscope.yaml"), encoding="utf-8") as conf:
            self.assertEqual(installed.read(), conf.read())
        for page in MAN_PAGES:
            name, section = page.rsplit(".", 1)
            result = run("man", "-w", section, name)
            self.assertEqual(result.stdout.strip(), f"/usr/share/man/man{section}/{page}.gz")
        for unit in UNITS:
            self.assertTrue(os.path.exists(f"/lib/systemd/system/{unit}"), unit)
        user = pwd.getpwnam("smtpscope")
        self.assertEqual((user.pw_dir, user.pw_shell), ("/var/lib/smtpscope", "/usr/sbin/nologin"))
        self.assertLess(user.pw_uid, 1000)
        state = os.stat("/var/lib/smtpscope")
        self.assertEqual((state.st_uid, state.st_gid, state.st_mode & 0o7777),
                         (user.pw_uid, grp.getgrnam("postfix").gr_gid, 0o750))

    def start_milter_as_the_unit_does(self):
        """The installed configuration with the socket and database moved into
        a private directory; user, group and command lines from the unit."""
        unit = unit_settings("/lib/systemd/system/smtpscope-milter.service")
        user, group = unit["User"][0], unit["Group"][0]
        private = self.work.join("milter")
        os.mkdir(private, 0o750)
        shutil.chown(private, user=user, group=group)
        db, socket_path = os.path.join(private, "smtpscope.db"), os.path.join(private, "milter.sock")
        with open(CONFIG, encoding="utf-8") as f:
            config = f.read()
        config, moved_db = re.subn(r"(?m)^  path: .*$", f"  path: {db}", config)
        config, moved_socket = re.subn(r"(?m)^  socket: .*$", f"  socket: unix:{socket_path}",
                                       config)
        self.assertEqual((moved_db, moved_socket), (1, 1))
        config_path = self.work.join("smtpscope.yaml")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(config)

        def command(line):
            argv = line.replace(CONFIG, config_path).split()
            return ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", *argv]

        for line in unit.get("ExecStartPre", []):
            result = run(*command(line))
            self.assertEqual(result.returncode, 0, f"ExecStartPre {line}: {result.stderr}")
        stderr = open(self.work.join("milter.stderr"), "wb")
        self.addCleanup(stderr.close)
        self.milter = subprocess.Popen(command(unit["ExecStart"][0]), stdout=stderr,
                                       stderr=stderr)
        harness.wait_for(lambda: os.path.exists(socket_path) or self.milter.poll() is not None,
                         10, "the installed milter's socket")
        self.assertIsNone(self.milter.poll(), harness.read_file(self.work.join("milter.stderr")))
        return db, socket_path

    def record_one_session(self):
        db, socket_path = self.start_milter_as_the_unit_does()
        self.postfix = harness.PostfixInstance(self.work, milter_socket=f"unix:{socket_path}")
        self.postfix.start()
        client = SmtpClient(self.postfix.port, "127.0.0.1")
        self.assertEqual(client.command("EHLO mail.sender.example")[0], 250)
        self.assertEqual(client.command("MAIL FROM:<a@sender.example>")[0], 250)
        self.assertEqual(client.command("RCPT TO:<b@test.example>")[0], 250)
        self.assertEqual(client.message("Subject: packaged\n\nhello\n"), 250)
        self.assertEqual(client.quit(), 221)
        harness.wait_for_closed(db, count=1)
        self.milter.send_signal(signal.SIGTERM)
        self.assertEqual(self.milter.wait(30), 0,
                         harness.read_file(self.work.join("milter.stderr")))
        self.postfix.stop()
        self.assertEqual(harness.query(db, "SELECT count(*), min(client_addr) FROM sessions"
                                           " WHERE stream LIKE 'milter:%'"), [(1, "127.0.0.1")])
        # The installed command reads what the installed milter wrote.
        result = run("smtpscope", "--db", db, "sessions", "--format", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("127.0.0.1", result.stdout)
        self.assertEqual(os.stat(db).st_uid, pwd.getpwnam("smtpscope").pw_uid)

    def test_build_install_run_remove_purge(self):
        deb = self.build()
        self.assertTrue(os.path.exists(deb), f"no {os.path.basename(deb)}: "
                        f"{sorted(os.listdir(self.temp))}")
        changes = glob.glob(os.path.join(self.temp, "smtpscope_*_amd64.changes"))
        lint = run("lintian", "--fail-on", "error,warning", *changes, timeout=300)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

        result = run("dpkg", "-i", deb, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(package_status(), "installed")
        self.check_installed()
        self.record_one_session()

        result = run("dpkg", "-r", "smtpscope", timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(package_status(), "config-files")
        for path in PROGRAMS:
            self.assertFalse(os.path.exists(path), path)
        self.assertTrue(os.path.exists(CONFIG), "remove keeps the conffile")

        result = run("dpkg", "-P", "smtpscope", timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(package_status(), "not-installed")
        for path in ("/etc/smtpscope", "/var/lib/smtpscope", "/usr/share/doc/smtpscope",
                     *(f"/lib/systemd/system/{unit}" for unit in UNITS)):
            self.assertFalse(os.path.exists(path), path)
        self.assertEqual(glob.glob("/etc/systemd/system/*.wants/smtpscope-*"), [])
        self.assertFalse(exists_user("smtpscope"))
        self.assertFalse(exists_group("smtpscope"))


if __name__ == "__main__":
    unittest.main()
