"""One very long session through a private Postfix with the milter: a
relay's cached connection delivering 7,000 messages (smtp-source -d -s 1
-m 7000). Issue 13: with std::regex matching the stage string (it
recursed per character), `clients`, `report`, `correlate` crashed for
every user once such a session was stored, and `watch` died when it
ended. Each must now finish, exit 0, list the client and name its
pattern: the built-in patterns and one anchored at both ends of the
whole 56 KB stage string."""
import functools
import json
import os
import selectors
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

MESSAGES = 7000
CLIENT = "127.0.0.1"  # smtp-source cannot choose its source address
BULK_PATTERN = """
  - name: bulk-connection
    title: Thousands of messages over one connection
    stages: '^C H( M R D E)+ [QLZ]$'
    when:
      delivered_at_least: 1000
    weight: 0
    explanation: One connection delivered thousands of messages.
    advice: Harmless.
"""


smtpscope = functools.partial(harness.smtpscope, timeout=120)


def patterns_file(work):
    """The built-in patterns and one that must see the whole stage string."""
    builtin = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "patterns.yaml")
    path = work.join("patterns.yaml")
    with open(builtin) as source, open(path, "w") as out:
        out.write(source.read().rstrip("\n") + "\n" + BULK_PATTERN)
    return path


def read_line(process, timeout):
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        return None
    line = process.stdout.readline()
    return json.loads(line) if line else None


class LongSession(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        try:
            cls.record()
        except BaseException:
            cls.work.remove()
            raise

    @classmethod
    def record(cls):
        cls.db = cls.work.join("smtpscope.db")
        cls.patterns = patterns_file(cls.work)
        socket_path = cls.work.join("m.sock")
        milter = harness.milter_daemon(cls.work, cls.db, socket_path).start()
        try:
            postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{socket_path}").start()
            try:
                watcher = subprocess.Popen([harness.binary("smtpscope"), "--db", cls.db, "watch",
                                            "--json", "--patterns", cls.patterns],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True)
                try:
                    subprocess.run(["smtp-source", "-d", "-s", "1", "-m", str(MESSAGES),
                                    "-f", "relay@corp.example", "-t", "sink@test.example",
                                    f"127.0.0.1:{postfix.port}"], check=True, timeout=300)
                    postfix.wait_for_log(f"disconnect from localhost[{CLIENT}]", timeout=60)
                    harness.wait_for_closed(cls.db, [CLIENT], timeout=60)
                    cls.watched = read_line(watcher, timeout=15)
                    cls.watch_alive = watcher.poll() is None
                finally:
                    if watcher.poll() is None:
                        watcher.send_signal(signal.SIGTERM)
                    watcher.wait(10)
                    cls.watch_exit = watcher.returncode
                    cls.watch_stderr = watcher.stderr.read()
                    watcher.stdout.close()
                    watcher.stderr.close()
            finally:
                postfix.stop()
        finally:
            milter.stop()
        cls.ingest = smtpscope(cls.db, "ingest", postfix.maillog)

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def run_ok(self, *args):
        result = smtpscope(self.db, *args, "--patterns", self.patterns)
        self.assertEqual(result.returncode, 0, f"{args}: {result.stderr}")
        return result.stdout

    def test_one_session_holds_every_message(self):
        self.assertEqual(self.ingest.returncode, 0, self.ingest.stderr)
        self.assertEqual(harness.query(self.db, """SELECT count(DISTINCT s.id), count(t.id),
            count(t.id) FILTER (WHERE t.outcome = 'delivered') FROM sessions s
            JOIN transactions t ON t.session_id = s.id WHERE s.client_addr = ?""", CLIENT),
                         [(1, MESSAGES, MESSAGES)])

    def test_clients_lists_the_client(self):
        clients = json.loads(self.run_ok("clients", "--format", "json"))["clients"]
        self.assertEqual([(c["client"], c["sessions"], c["transactions"], c["delivered"])
                          for c in clients], [(CLIENT, 1, MESSAGES, MESSAGES)])
        self.assertIn(CLIENT, self.run_ok("clients"))

    def test_report_names_the_pattern_of_the_whole_session(self):
        report = json.loads(self.run_ok("report", "--client", CLIENT, "--format", "json"))
        self.assertEqual(report["client"], CLIENT)
        self.assertEqual(report["sessions"], 1)
        [session] = report["session_details"]
        self.assertEqual(session["stages"], "C H" + " M R D E" * MESSAGES + " Q")
        self.assertEqual(session["patterns"], ["bulk-connection"])
        self.assertEqual(session["end"], "quit")
        text = self.run_ok("report", "--client", CLIENT)
        self.assertIn(f"Client {CLIENT}: 1 session, {MESSAGES} transactions", text)
        self.assertIn("bulk-connection", text)

    def test_correlate_finds_the_pattern_with_the_fingerprint(self):
        associations = json.loads(self.run_ok("correlate", "--format", "json"))["associations"]
        self.assertIn(("fingerprint", "bulk-connection", 1),
                      [(a["kind"], a["pattern"], a["group_sessions"]) for a in associations])
        self.assertIn("bulk-connection", self.run_ok("correlate"))

    def test_watch_shows_the_session_and_keeps_running(self):
        self.assertIsNotNone(self.watched, self.watch_stderr)
        self.assertEqual((self.watched["client"], self.watched["pattern"]),
                         (CLIENT, "bulk-connection"))
        self.assertEqual(self.watched["stages"], "C H" + " M R D E" * MESSAGES + " Z")
        self.assertTrue(self.watch_alive, self.watch_stderr)
        self.assertEqual(self.watch_exit, 0, self.watch_stderr)


if __name__ == "__main__":
    unittest.main()
