"""postscreen in front of smtpd through a real private Postfix: a client
that passes and delivers, one that talks before the greeting (pregreet),
one that hangs up during the greet wait. From the maillog alone (smtpd
without client port logging, the default): the passing connection is one
session holding postscreen's and smtpd's lines, the pregreet session is
closed and carries its HELO, and no session stays open or partial."""
import json
import os
import smtplib
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

PASSER, PREGREETER, HANGUP = "127.0.0.61", "127.0.0.62", "127.0.0.63"


def pregreet(port):
    """EHLO before the banner, then a transaction postscreen rejects (or,
    with greet action drop, a reset)."""
    try:
        talk_first(port)
    except ConnectionResetError:
        pass


def talk_first(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15,
                                  source_address=(PREGREETER, 0)) as sock:
        sock.sendall(b"EHLO pregreet.example\r\n")
        received = b""
        deadline = time.monotonic() + 10
        # postscreen answers the early EHLO with its dummy SMTP engine.
        while b"\r\n250 " not in b"\r\n" + received and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return
            received += chunk
        sock.sendall(b"MAIL FROM:<bot@example.org>\r\nRCPT TO:<user@test.example>\r\nQUIT\r\n")
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return


def hang_up(port):
    """Connects, reads the first banner line, and leaves within the greet wait."""
    with socket.create_connection(("127.0.0.1", port), timeout=15,
                                  source_address=(HANGUP, 0)) as sock:
        sock.recv(4096)


def deliver(port):
    """Waits out the greet test, then one message through smtpd."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(PASSER, 0)) as smtp:
        smtp.ehlo("passer.example")
        smtp.sendmail("sender@example.org", ["user@test.example"],
                      "Subject: through postscreen\r\n\r\nhello\r\n")


class PostscreenThenSmtpd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        cls.postfix = harness.PostfixInstance(
            cls.work, postscreen=True, extra={"smtpd_client_port_logging": "no"}).start()
        pregreet(cls.postfix.port)
        hang_up(cls.postfix.port)
        deliver(cls.postfix.port)
        cls.postfix.wait_for_log(f"[{PASSER}] ehlo=", timeout=20)
        cls.postfix.wait_for_log(f"DISCONNECT [{PREGREETER}]", timeout=20)
        cls.postfix.wait_for_log("HANGUP after", timeout=20)
        cls.postfix.stop()
        cls.ingested = subprocess.run(
            [harness.binary("smtpscope"), "--db", cls.db, "ingest", cls.postfix.maillog],
            capture_output=True, text=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.work.remove()

    def log(self):
        return "\n".join(self.postfix.log_lines())

    def sessions(self, client):
        return harness.query(self.db, "SELECT id, close_us, partial FROM sessions"
                                      " WHERE client_addr = ?", client)

    def programs(self, session_id):
        rows = harness.query(self.db, "SELECT attributes FROM events WHERE session_id = ?",
                             session_id)
        return {json.loads(a).get("program", "").rsplit("/", 1)[-1] for (a,) in rows}

    def test_ingest_succeeds(self):
        self.assertEqual(self.ingested.returncode, 0, self.ingested.stderr)

    def test_the_passing_connection_is_one_session(self):
        sessions = self.sessions(PASSER)
        self.assertEqual(len(sessions), 1, self.log())
        session_id, close_us, partial = sessions[0]
        self.assertEqual(self.programs(session_id), {"postscreen", "smtpd"}, self.log())
        self.assertIsNotNone(close_us)
        self.assertEqual(partial, 0)

    def test_the_pregreet_session_is_closed_with_its_helo(self):
        sessions = self.sessions(PREGREETER)
        self.assertEqual(len(sessions), 1, self.log())
        session_id, close_us, partial = sessions[0]
        self.assertIsNotNone(close_us, self.log())
        self.assertEqual(partial, 0)
        pregreets = harness.query(
            self.db, "SELECT count(*) FROM events WHERE session_id = ?"
                     " AND json_extract(attributes, '$.verdict') = 'PREGREET'"
                     " AND json_extract(attributes, '$.helo') = 'pregreet.example'", session_id)
        self.assertEqual(pregreets[0][0], 1, self.log())

    def test_the_hangup_session_is_closed(self):
        sessions = self.sessions(HANGUP)
        self.assertEqual(len(sessions), 1, self.log())
        self.assertIsNotNone(sessions[0][1], self.log())

    def test_no_session_stays_open_or_partial(self):
        open_or_partial = harness.query(
            self.db, "SELECT client_addr, client_port FROM sessions"
                     " WHERE close_us IS NULL OR partial != 0")
        self.assertEqual(open_or_partial, [], self.log())


class PostscreenDropsAPregreet(unittest.TestCase):
    """postscreen_greet_action = drop: postscreen hangs up at once (its
    DISCONNECT ends the session), and the HELO is still read."""

    def test_the_dropped_session_is_closed_with_its_helo(self):
        work = harness.Workdir()
        postfix = harness.PostfixInstance(work, postscreen=True,
                                          extra={"postscreen_greet_action": "drop"}).start()
        try:
            pregreet(postfix.port)
            postfix.wait_for_log(f"DISCONNECT [{PREGREETER}]", timeout=20)
            postfix.stop()
            db = work.join("smtpscope.db")
            ingested = subprocess.run(
                [harness.binary("smtpscope"), "--db", db, "ingest", postfix.maillog],
                capture_output=True, text=True, timeout=120)
            self.assertEqual(ingested.returncode, 0, ingested.stderr)
            log = "\n".join(postfix.log_lines())
            self.assertEqual(harness.query(db, "SELECT count(*), sum(partial), sum(close_us IS NULL)"
                                               " FROM sessions"), [(1, 0, 0)], log)
            helo = harness.query(db, "SELECT json_extract(attributes, '$.helo') FROM events"
                                     " WHERE json_extract(attributes, '$.verdict') = 'PREGREET'")
            self.assertEqual(helo, [("pregreet.example",)], log)
        finally:
            postfix.stop()
            work.remove()


if __name__ == "__main__":
    unittest.main()
