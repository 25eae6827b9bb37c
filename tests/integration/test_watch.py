"""smtpscope watch: sessions driven through the private Postfix appear
within a second of their end, classified, as JSON lines; filters apply;
a changed fingerprint is marked."""
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402


class Watch(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        socket_path = self.work.join("m.sock")
        self.milter = harness.milter_daemon(self.work, self.db, socket_path).start()
        self.postfix = harness.PostfixInstance(self.work,
                                               milter_socket=f"unix:{socket_path}").start()

    def tearDown(self):
        self.postfix.stop()
        self.milter.stop()
        self.work.remove()

    def watch(self, *args):
        process = subprocess.Popen([harness.binary("smtpscope"), "--db", self.db, "watch",
                                    "--json", *args], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # let it take its starting point
        return process

    def next_line(self, process, timeout):
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
        return json.loads(process.stdout.readline())

    def stop(self, process):
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        self.assertEqual(process.returncode, 0)

    def test_sessions_appear_within_a_second_classified(self):
        watcher = self.watch()
        try:
            for client, play, pattern in (
                    ("127.0.0.81", scenarios.verification_probe, "verification-probe"),
                    ("127.0.0.82", lambda p, s: scenarios.intercepting_proxy(p, s, pause=0.2),
                     "intercepting-proxy"),
                    ("127.0.0.83", scenarios.ordinary_sender, None)):
                play(self.postfix.port, client)
                ended = time.monotonic()
                line = self.next_line(watcher, timeout=3)
                self.assertIsNotNone(line, client)
                self.assertLess(time.monotonic() - ended, 1.0, client)
                self.assertEqual((line["client"], line["pattern"]), (client, pattern))
                self.assertTrue(line["stages"].startswith("C H M"))
        finally:
            self.stop(watcher)

    def test_filters_and_fingerprint_change(self):
        watcher = self.watch("--client", "127.0.0.84")
        try:
            scenarios.ordinary_sender(self.postfix.port, "127.0.0.85")  # filtered out
            scenarios.ordinary_sender(self.postfix.port, "127.0.0.84")
            first = self.next_line(watcher, timeout=3)
            self.assertEqual((first["client"], first["fingerprint_changed"],
                              first["behaviour_changed"]), ("127.0.0.84", False, False))
            scenarios.intercepting_proxy(self.postfix.port, "127.0.0.84", pause=0,
                                         helo="127.0.0.84")  # a bare IP now: new fingerprint
            second = self.next_line(watcher, timeout=3)
            self.assertTrue(second["fingerprint_changed"])
            self.assertTrue(second["behaviour_changed"])  # from no pattern to a proxy
            self.assertEqual(second["helo_quirks"], ["bare-ip"])
            self.assertIsNone(self.next_line(watcher, timeout=1))
        finally:
            self.stop(watcher)


if __name__ == "__main__":
    unittest.main()
