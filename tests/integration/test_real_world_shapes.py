"""The real-world patterns no real log of ours shows (issue 14 item 5),
each played by a real client through a private Postfix (STARTTLS, SMTP
AUTH through Cyrus SASL, a MAIL restriction) and named from Postfix's log
alone: the log is ingested into a fresh database and `smtpscope clients
--format json` gives each client's top pattern.

  monitor        - EHLO, STARTTLS, EHLO, QUIT at a regular 2 s
                   interval: monitoring-check once it has 5 sessions, so
                   it plays enough sessions for that to be the most common;
  guesser        - 12 connections at once, each a wrong AUTH PLAIN, then
                   QUIT, twice more 2 s apart: parallel-auth-guessing;
  slow guesser   - one wrong AUTH PLAIN a session, 3 sessions 2 s apart:
                   auth-guessing;
  refused        - its MAIL refused at MAIL (check_client_access in
                   smtpd_sender_restrictions, smtpd_delay_reject = no),
                   then QUIT: mail-refused;
  grabber        - EHLO, STARTTLS, EHLO, QUIT once: greets-and-quits;
  ordinary       - a delivered message: no pattern.
"""
import base64
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from smtp_client import SmtpClient  # noqa: E402

MONITOR, GUESSER, SLOW_GUESSER = "127.0.0.91", "127.0.0.92", "127.0.0.93"
REFUSED, ORDINARY, GRABBER = "127.0.0.94", "127.0.0.95", "127.0.0.96"
LOGIN, PASSWORD = "alice@test.example", "correct horse"
# Postfix's log dates lines to the whole second, so a 1.2 s interval reads
# as 1, 1, 1, 2, ... s (a deviation of over 25%: not regular). A whole
# number of seconds, each session a little after the second begins, reads
# as exactly that. The first 4 sessions have no regular interval yet
# (greets-and-quits); from the 5th on they are monitoring-check.
MONITOR_SESSIONS, MONITOR_INTERVAL_S = 10, 2
# burst_at_least counts the connections so far: a burst's first 9 are
# auth-guessing, the rest parallel-auth-guessing. The guesser comes back
# with further bursts, as such bots do, which are all parallel (and
# outnumber the first even if a busy machine spreads that over 2 seconds).
PARALLEL_GUESSES, GUESSER_BURSTS, SLOW_GUESSES = 12, 3, 3

# Each client's top pattern: the one naming most of its sessions.
EXPECTED = {
    MONITOR: "monitoring-check",
    GUESSER: "parallel-auth-guessing",
    SLOW_GUESSER: "auth-guessing",
    REFUSED: "mail-refused",
    GRABBER: "greets-and-quits",
    ORDINARY: None,
}


def at_next_second(offset=0.2):
    """Sleeps until `offset` s after the next whole second of the clock, so
    that what follows is logged within one second (Postfix's log dates
    lines to the second)."""
    now = time.time()
    time.sleep(1 - now % 1 + offset)


def wrong_guess(port, source, start=None):
    """EHLO, AUTH PLAIN with a wrong password, QUIT; the AUTH reply code."""
    if start is not None:
        start.wait()
    client = SmtpClient(port, source)
    client.command("EHLO guess.example")
    token = base64.b64encode(f"\0{LOGIN}\0wrong-{time.monotonic()}".encode()).decode()
    code = client.command(f"AUTH PLAIN {token}")[0]
    client.quit()
    return code


def greet_and_quit(port, source, helo):
    """EHLO, STARTTLS, EHLO, QUIT: the reply codes."""
    client = SmtpClient(port, source)
    return (client.command(f"EHLO {helo}")[0], client.starttls(),
            client.command(f"EHLO {helo}")[0], client.quit())


def monitor(port):
    """MONITOR_SESSIONS of EHLO, STARTTLS, EHLO, QUIT, one every MONITOR_INTERVAL_S."""
    replies = []
    at_next_second()
    begin = time.monotonic()
    for i in range(MONITOR_SESSIONS):
        time.sleep(max(0.0, begin + i * MONITOR_INTERVAL_S - time.monotonic()))
        replies.append(greet_and_quit(port, MONITOR, "monitor.example"))
    return replies


def burst_of_guesses(port):
    """PARALLEL_GUESSES connections released at once, one guess each."""
    start = threading.Barrier(PARALLEL_GUESSES)
    codes = [None] * PARALLEL_GUESSES

    def guess(i):
        codes[i] = wrong_guess(port, GUESSER, start)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(PARALLEL_GUESSES)]
    at_next_second(0.1)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def parallel_guesser(port):
    codes = []
    for i in range(GUESSER_BURSTS):
        if i:
            time.sleep(2)
        codes += burst_of_guesses(port)
    return codes


def slow_guesser(port):
    codes = []
    for i in range(SLOW_GUESSES):
        if i:
            time.sleep(2)
        codes.append(wrong_guess(port, SLOW_GUESSER))
    return codes


def refused_sender(port):
    client = SmtpClient(port, REFUSED)
    return [client.command("EHLO app.example")[0],
            client.command("MAIL FROM:<app@client.example>")[0], client.quit()]


def ordinary_sender(port):
    client = SmtpClient(port, ORDINARY)
    return [client.command("EHLO mta.example")[0],
            client.command("MAIL FROM:<a@mta.example>")[0],
            client.command("RCPT TO:<bob@test.example>")[0],
            client.message("Subject: hi\n\nhello\n"), client.quit()]


def play_all(port):
    """Every client at once (each its own address); {client: replies}."""
    plays = {MONITOR: monitor, GUESSER: parallel_guesser, SLOW_GUESSER: slow_guesser,
             REFUSED: refused_sender, ORDINARY: ordinary_sender,
             GRABBER: lambda port: greet_and_quit(port, GRABBER, "grabber.example")}
    out, errors = {}, []

    def run(client, play):
        try:
            out[client] = play(port)
        except Exception as e:  # reported below, with the client's name
            errors.append(f"{client}: {e!r}")

    threads = [threading.Thread(target=run, args=item) for item in plays.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError("; ".join(errors))
    return out


class RealWorldShapes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        try:
            refuse = (f"check_client_access inline:{{ {{{REFUSED} = "
                      f"530 5.7.0 authentication required}} }}")
            postfix = harness.PostfixInstance(
                cls.work, tls=True, sasl_users={LOGIN: PASSWORD},
                extra={"smtpd_delay_reject": "no", "smtpd_sender_restrictions": refuse}).start()
            try:
                cls.replies = play_all(postfix.port)
                sessions = {MONITOR: MONITOR_SESSIONS, GUESSER: PARALLEL_GUESSES * GUESSER_BURSTS,
                            SLOW_GUESSER: SLOW_GUESSES, REFUSED: 1, ORDINARY: 1, GRABBER: 1}
                for client, count in sessions.items():
                    postfix.wait_for_log(f"disconnect from unknown[{client}]", count=count)
                cls.log = postfix.log_lines()
            finally:
                postfix.stop()
            cls.db = cls.work.join("log.db")
            harness.smtpscope(cls.db, "ingest", "-q", postfix.maillog, check=True)
            listed = json.loads(harness.smtpscope(cls.db, "clients", "--format", "json",
                                                  check=True).stdout)
            cls.clients = {c["client"]: c for c in listed["clients"]}
            cls.sessions = {client: json.loads(harness.smtpscope(
                cls.db, "report", "--client", client, "--format", "json",
                check=True).stdout)["session_details"] for client in EXPECTED}
        except BaseException:
            cls.work.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_postfix_answered_as_planned(self):
        self.assertEqual(self.replies[MONITOR], [(250, 220, 250, 221)] * MONITOR_SESSIONS)
        self.assertEqual(self.replies[GUESSER], [535] * PARALLEL_GUESSES * GUESSER_BURSTS)
        self.assertEqual(self.replies[SLOW_GUESSER], [535] * SLOW_GUESSES)
        self.assertEqual(self.replies[REFUSED], [250, 530, 221])
        self.assertEqual(self.replies[ORDINARY], [250, 250, 250, 250, 221])
        self.assertEqual(self.replies[GRABBER], (250, 220, 250, 221))

    def test_each_client_is_named_by_its_pattern(self):
        for client, pattern in EXPECTED.items():
            with self.subTest(client=client):
                patterns = self.clients[client]["patterns"]
                self.assertEqual(patterns[0]["name"] if patterns else None, pattern,
                                 json.dumps(self.clients[client], indent=1))

    def names(self, client):
        """The pattern naming each of the client's sessions, in time order."""
        return [s["patterns"][0] if s["patterns"] else None for s in self.sessions[client]]

    def test_a_monitor_is_named_once_its_interval_is_regular(self):
        self.assertEqual(self.names(MONITOR), ["greets-and-quits"] * 4 +
                         ["monitoring-check"] * (MONITOR_SESSIONS - 4))
        for session in self.sessions[MONITOR]:
            self.assertEqual(session["stages"], "C H H Q")

    def test_the_guessers_later_bursts_are_all_parallel(self):
        self.assertEqual(self.names(GUESSER)[PARALLEL_GUESSES:],
                         ["parallel-auth-guessing"] * PARALLEL_GUESSES * (GUESSER_BURSTS - 1))

    @unittest.expectedFailure
    def test_a_single_burst_is_all_parallel(self):
        # burst_at_least is the client's timing up to and including the
        # session: the burst's first 9 connections cannot know about the
        # 10th, and are named auth-guessing. Passes once a burst names all
        # its sessions (issue 14, item 5).
        self.assertEqual(self.names(GUESSER)[:PARALLEL_GUESSES],
                         ["parallel-auth-guessing"] * PARALLEL_GUESSES)

    def test_a_refused_mail_shows_in_the_log_alone(self):
        (session,) = self.sessions[REFUSED]
        self.assertEqual((session["stages"], session["patterns"]), ("C H Q", ["mail-refused"]))
        self.assertTrue(any(f"reject: MAIL from unknown[{REFUSED}]" in line for line in self.log))

    def test_the_timing_behind_the_names(self):
        monitor_timing = self.clients[MONITOR]["timing"]
        self.assertAlmostEqual(monitor_timing["regular_every_s"], MONITOR_INTERVAL_S, delta=0.3)
        self.assertGreaterEqual(self.clients[GUESSER]["timing"]["burst"], 10)
        self.assertIsNone(self.clients[SLOW_GUESSER]["timing"]["regular_every_s"])


if __name__ == "__main__":
    unittest.main()
