"""The harness itself: a daemon counts as started only when it serves. A
milter killed with -9 leaves its socket file behind, so the file proves
nothing; start() waits until a connect() succeeds, within a bound, and
says what it waited for when it gives up."""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


def stale_socket(path):
    """A unix socket file nobody listens on, as a killed server leaves it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(path)
    return path


class MilterReadiness(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("m.sock")

    def tearDown(self):
        self.work.remove()

    def test_only_a_listening_socket_accepts(self):
        stale = stale_socket(self.work.join("stale.sock"))
        self.assertTrue(os.path.exists(stale))
        self.assertFalse(harness.unix_socket_accepts(stale))
        self.assertFalse(harness.unix_socket_accepts(self.work.join("missing.sock")))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(self.work.join("live.sock"))
            server.listen()
            self.assertTrue(harness.unix_socket_accepts(self.work.join("live.sock")))

    def test_after_kill_9_start_returns_once_the_new_milter_listens(self):
        milter = harness.milter_daemon(self.work, self.db, self.socket).start()
        try:
            os.kill(milter.process.pid, signal.SIGKILL)
            milter.process.wait()
            milter.process = None
            self.assertTrue(os.path.exists(self.socket), "the killed milter left its socket")
            milter.start()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(self.socket)  # refused if start() believed the stale file
        finally:
            # Not its exit status: a SIGTERM within milliseconds of start-up
            # can make smtpscope-milter exit 1 (a milter defect of its own,
            # as in test_commands' start-and-stop test), not the harness's.
            milter.stop()
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM sessions"), [(0,)],
                         "the readiness probe is not a session")

    def test_a_milter_that_never_listens_there_is_a_clear_error(self):
        stale = stale_socket(self.work.join("stale.sock"))
        listening = harness.milter_daemon(self.work, self.db, self.socket)
        daemon = harness.Daemon(self.work, "smtpscope-milter",
                                harness.read_file(listening.config_path),
                                lambda: harness.unix_socket_accepts(stale),
                                f"accept connections on {stale}")
        try:
            with self.assertRaises(TimeoutError) as raised:
                daemon.start()
        finally:
            daemon.stop()
        message = str(raised.exception)
        self.assertIn(f"timed out after 10s waiting for smtpscope-milter to accept connections"
                      f" on {stale}", message)
        self.assertIn("event=started", message)  # its stderr, to tell why


if __name__ == "__main__":
    unittest.main()
