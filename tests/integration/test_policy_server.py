"""smtpscope-policyd on its own, spoken to directly: protocol answers,
hostile and broken input, stalled clients, many connections, rules and
their reload. Postfix's side of the protocol is policy_client.py."""
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from policy_client import PolicyClient, encode  # noqa: E402

LIMITS = "  max_line_bytes: 256\n  max_request_bytes: 2048\n  request_timeout_s: 1\n"


class PolicyDaemonCase(unittest.TestCase):
    """A policy daemon on a unix socket per test, with the `extra` settings."""
    extra = LIMITS

    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("policy.sock")
        self.daemon = harness.policy_daemon(self.work, self.db, [f"unix:{self.socket}"],
                                            self.extra).start()

    def tearDown(self):
        self.daemon.stop()
        self.work.remove()

    def stop_and_count(self, sql="SELECT count(*) FROM events WHERE source = 'policy'"):
        self.assertEqual(self.daemon.stop(), 0)
        return harness.query(self.db, sql)[0][0]

    def daemon_log(self):
        return self.daemon.stderr()


class PolicyServer(PolicyDaemonCase):
    def test_every_request_is_answered_and_recorded(self):
        c = PolicyClient(self.socket)
        for state in ("CONNECT", "HELO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE"):
            self.assertEqual(c.ask(protocol_state=state), "DUNNO")
        c.send(encode() * 3)  # several requests in one write
        self.assertEqual([c.answer() for _ in range(3)], ["DUNNO"] * 3)
        c.close()
        self.assertEqual(self.stop_and_count(), 9)

    def test_broken_input_closes_only_that_connection(self):
        keeper = PolicyClient(self.socket)
        self.assertEqual(keeper.ask(), "DUNNO")
        broken_inputs = {
            "line without equals": b"this is not a policy request\n",
            "overlong line": b"helo_name=" + b"x" * 300 + b"\n",
            "oversized request": b"".join(b"a%d=%s\n" % (i, b"y" * 200) for i in range(20)),
            "binary junk": bytes(range(256)),
            "invalid utf-8 junk": b"\xff\xfe\x1b[2J\n\n",
        }
        for name, junk in broken_inputs.items():
            with self.subTest(name):
                c = PolicyClient(self.socket)
                self.assertEqual(c.ask(), "DUNNO")  # a good request first
                c.send(junk)
                self.assertIsNone(c.answer())  # closed, nothing wrong answered
                c.close()
                self.assertEqual(keeper.ask(), "DUNNO")  # the others are still served
        keeper.close()
        self.assertEqual(self.stop_and_count(), 1 + len(broken_inputs) * 2)
        log = self.daemon_log()
        self.assertEqual(log.count("event=bad-request"), 1)  # rate-limited: once per interval
        self.assertNotRegex(log, r"[\x00-\x08\x0b-\x1f\x7f]")  # escaped, never raw

    def test_a_client_stalled_mid_request_is_closed(self):
        stalled = PolicyClient(self.socket)
        stalled.send("request=smtpd_access_policy\nprotocol_state=RC")
        keeper = PolicyClient(self.socket)
        started = time.monotonic()
        self.assertTrue(stalled.closed_by_server())
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(keeper.ask(), "DUNNO")
        self.assertIn("event=stalled", self.daemon_log())

    def test_500_concurrent_connections(self):
        clients = [PolicyClient(self.socket) for _ in range(500)]
        for i, c in enumerate(clients):
            c.send(encode(client_port=str(10000 + i)))
        self.assertEqual([c.answer() for c in clients], ["DUNNO"] * 500)
        for i, c in enumerate(clients):  # still open, served again
            self.assertEqual(c.ask(client_port=str(10000 + i)), "DUNNO")
        for c in clients:
            c.close()
        self.assertEqual(self.stop_and_count(), 1000)
        self.assertEqual(harness.query(self.db, "SELECT count(*) FROM sessions")[0][0], 500)

    def test_tcp_and_unix_at_once(self):
        self.daemon.stop()
        port = harness.free_port()
        self.daemon = harness.policy_daemon(self.work, self.db, [f"unix:{self.socket}",
                                                                 f"inet:127.0.0.1:{port}"]).start()
        self.assertEqual(PolicyClient(("127.0.0.1", port)).ask(), "DUNNO")
        self.assertEqual(PolicyClient(self.socket).ask(), "DUNNO")
        self.assertEqual(self.stop_and_count(), 2)


LOG_FIELD = r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)'


def log_fields(line, prefix):
    """The key=value pairs of a log line after `prefix`, values unquoted and
    unescaped; fails unless the whole rest of the line is such pairs."""
    rest = line[line.index(prefix) + len(prefix):]
    if not re.fullmatch(f"{LOG_FIELD}(?: {LOG_FIELD})*", rest):
        raise AssertionError(f"not key=value pairs: {rest!r}")
    fields = []
    for key, value in re.findall(LOG_FIELD, rest):
        if value.startswith('"'):
            value = re.sub(r'\\(.)', r'\1', value[1:-1])
        fields.append((key, value))
    return fields


class PolicyLogInjection(PolicyDaemonCase):
    """A refused request's text is logged as one quoted field: quotes in it
    cannot end the field and forge others."""
    FORGED = 'x=" reason="forged" client="10.6.6.6'

    def bad_request_fields(self, junk):
        c = PolicyClient(self.socket)
        c.send(junk)
        self.assertIsNone(c.answer())
        c.close()
        harness.wait_for(lambda: "event=bad-request" in self.daemon_log(), 5, "the log line")
        line = [line for line in self.daemon_log().splitlines() if "event=bad-request" in line]
        self.assertEqual(len(line), 1)
        return log_fields(line[0], ": policy ")

    def test_a_forged_line_without_a_name_stays_one_field(self):
        text = "=" + self.FORGED[1:]  # an empty name: refused
        fields = self.bad_request_fields(text + "\n")
        self.assertEqual([key for key, _ in fields],
                         ["event", "stream", "reason", "text", "suppressed"])
        self.assertEqual(dict(fields)["reason"], "line without '='")
        self.assertEqual(dict(fields)["text"], text)

    def test_a_forged_overlong_line_stays_one_field(self):
        fields = self.bad_request_fields(self.FORGED + "\\" + "y" * 300 + "\n")
        self.assertEqual([key for key, _ in fields],
                         ["event", "stream", "reason", "text", "suppressed"])
        self.assertEqual(dict(fields)["reason"], "line over the length limit")
        self.assertEqual(dict(fields)["text"], (self.FORGED + "\\" + "y" * 300)[:80])


RULES = """rules:
  - name: blocked-recipient
    when:
      protocol_state: RCPT
      recipient: blocked@test.example
    action: REJECT 5.7.1 blocked by an smtpscope rule
  - name: known-proxy
    when:
      protocol_state: RCPT
    client_history:
      pattern: intercepting-proxy
      helo_quirk: bare-ip
    action: "PREPEND X-Smtpscope: client behind an intercepting proxy"
  - name: known-resetter
    when:
      protocol_state: RCPT
    client_history:
      aborted_transactions_at_least: 2
      within: 1h
    action: DEFER_IF_PERMIT 4.7.1 you reset too often
"""


class PolicyServerUnderAbuse(PolicyDaemonCase):
    """Idle connections up to the limit, clients that trickle a request a
    byte at a time, clients that send oversized requests: the well-behaved
    client is answered as fast as ever."""
    extra = LIMITS + "  max_connections: 1100\n"

    def test_over_the_limit_connections_are_refused_and_the_others_served(self):
        idle = [PolicyClient(self.socket) for _ in range(1000)]
        good = PolicyClient(self.socket)
        self.assertEqual(good.ask(), "DUNNO")
        extra = [PolicyClient(self.socket) for _ in range(120)]
        answers = []
        for c in extra:
            try:
                answers.append(c.ask())
            except ConnectionError:
                answers.append(None)
        self.assertEqual(answers.count("DUNNO"), 99)  # 1100 - 1000 idle - 1 good
        self.assertEqual(answers.count(None), 21)
        for c in extra:
            c.close()
        self.assertEqual(idle[0].ask(), "DUNNO")
        self.assertEqual(idle[-1].ask(), "DUNNO")
        self.assertIn("event=refused reason=max-connections", self.daemon_log())

    def test_slow_and_oversized_clients_do_not_slow_the_good_one(self):
        idle = [PolicyClient(self.socket) for _ in range(1000)]
        stop = threading.Event()
        abusers = ([threading.Thread(target=self.trickle, args=(stop,)) for _ in range(20)]
                   + [threading.Thread(target=self.oversize, args=(stop,)) for _ in range(4)])
        for thread in abusers:
            thread.start()
        try:
            time.sleep(2.5)  # trickling clients reach their request timeout meanwhile
            good = PolicyClient(self.socket)
            latencies = []
            for i in range(300):
                started = time.monotonic()
                self.assertEqual(good.ask(client_port=str(20000 + i)), "DUNNO")
                latencies.append(time.monotonic() - started)
        finally:
            stop.set()
            for thread in abusers:
                thread.join()
        latencies.sort()
        self.assertLess(latencies[len(latencies) // 2], 0.02)
        self.assertLess(latencies[-1], 0.25)
        self.assertEqual(idle[0].ask(), "DUNNO")  # idle ones are kept (idle_timeout 600 s)
        log = self.daemon_log()
        self.assertIn("request not complete within 1s", log)  # the trickle is cut
        self.assertIn("event=bad-request", log)  # the oversized requests
        self.assertLessEqual(log.count("event=stalled"), 2, "rate-limited")

    def trickle(self, stop):
        """A byte every 50 ms: at this pace a request would take half a minute."""
        while not stop.is_set():
            c = PolicyClient(self.socket)
            try:
                for byte in encode().encode():
                    if stop.is_set():
                        break
                    c.send(bytes([byte]))
                    time.sleep(0.05)
            except OSError:
                pass  # cut off at the request timeout
            c.close()

    def oversize(self, stop):
        """Requests beyond max_request_bytes, one connection each."""
        while not stop.is_set():
            c = PolicyClient(self.socket)
            try:
                c.send("".join(f"a{i}={'y' * 200}\n" for i in range(20)))
                self.assertIsNone(c.answer())
            except OSError:
                pass  # closed while still sending
            c.close()
            time.sleep(0.01)


def rss_bytes(pid):
    """The resident set size of process `pid` (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def sanitized(pid):
    """True when process `pid` runs with AddressSanitizer, whose shadow memory
    and quarantine of freed blocks make its RSS say nothing of ours."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


class Flood:
    """A client that sends requests as fast as the server takes them and
    reads no answer, then (finish) completes its last request and reads
    every answer: it knows exactly how many requests the server read."""

    def __init__(self, address, client_address):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        # Small buffers, so the server's answers are not absorbed by the
        # kernel (a TCP receive buffer may grow to tens of MB by itself).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.connect(address)
        self.sock.setblocking(False)
        self.request = (f"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                        f"client_address={client_address}\n\n").encode()
        self.chunk = self.request * 64
        self.sent = 0  # bytes

    def send_some(self, timeout=0.05):
        """Sends what the socket takes now; False when it took nothing."""
        if not select.select([], [self.sock], [], timeout)[1]:
            return False
        offset = self.sent % len(self.request)
        try:
            n = self.sock.send(self.chunk[offset:])
        except BlockingIOError:
            return False
        self.sent += n
        return n > 0

    def requests(self):
        return -(-self.sent // len(self.request))  # the partial last one is completed

    def finish(self, timeout=60):
        """Sends the rest of the last request, reads every answer; the count."""
        rest = self.request[self.sent % len(self.request):] if self.sent % len(self.request) else b""
        expected, answers, tail = self.requests(), 0, b""
        deadline = time.monotonic() + timeout
        while answers < expected and time.monotonic() < deadline:
            readable, writable, _ = select.select([self.sock], [self.sock] if rest else [], [], 1)
            try:
                if writable:
                    rest = rest[self.sock.send(rest):]
                data = self.sock.recv(1 << 20) if readable else None
            except OSError:  # closed by the server
                break
            if data is not None:
                if not data:
                    break
                tail += data
                answers += tail.count(b"\n\n")
                tail = tail[tail.rfind(b"\n\n") + 2:] if b"\n\n" in tail else tail
        return answers

    def close(self):
        self.sock.close()


class FloodedDaemonCase(unittest.TestCase):
    """A policy daemon on a unix socket and a TCP port, with extra()."""

    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("policy.sock")
        self.port = harness.free_port()
        self.daemon = harness.policy_daemon(
            self.work, self.db, [f"unix:{self.socket}", f"inet:127.0.0.1:{self.port}"],
            self.extra()).start()

    def extra(self):
        raise NotImplementedError

    def tearDown(self):
        self.daemon.stop()
        self.work.remove()

    def recorded(self):
        rows = harness.query(self.db, "SELECT s.client_addr, count(*) FROM events e "
                                      "JOIN sessions s ON s.id = e.session_id "
                                      "WHERE e.source = 'policy' GROUP BY s.client_addr")
        return dict(rows)

class PolicyServerOutputBound(FloodedDaemonCase):
    """Clients that send requests and never read the answers: the server
    stops reading them once max_output_bytes of answers wait (backpressure),
    so its memory stays small, the others are served as fast as ever, and
    every request it read is answered and recorded, no other."""
    FLOOD_SECONDS = 5
    RSS_LIMIT = 50 * 1024 * 1024

    def extra(self):
        return "  max_output_bytes: 65536\n"

    def test_unread_answers_stop_the_reading_not_the_server(self):
        floods = {"192.0.2.101": Flood(("127.0.0.1", self.port), "192.0.2.101"),
                  "192.0.2.102": Flood(self.socket, "192.0.2.102")}
        pid = self.daemon.process.pid
        good = PolicyClient(self.socket)
        latencies, rss = [], []
        deadline = time.monotonic() + self.FLOOD_SECONDS
        while time.monotonic() < deadline:
            for flood in floods.values():
                while flood.send_some(timeout=0.01):
                    pass
            started = time.monotonic()
            self.assertEqual(good.ask(client_address="192.0.2.7"), "DUNNO")
            latencies.append(time.monotonic() - started)
            rss.append(rss_bytes(pid))
        good.close()
        if not sanitized(pid):  # the plain build checks the memory
            self.assertLess(max(rss), self.RSS_LIMIT, f"RSS grew to {max(rss) >> 20} MiB")
        self.assertLess(sorted(latencies)[len(latencies) // 2], 0.05)
        self.assertLess(max(latencies), 1.0)
        # The server stopped reading: what it read is a small part of a
        # flood that would have run at thousands of requests a second.
        for address, flood in floods.items():
            with self.subTest(address):
                self.assertEqual(flood.finish(), flood.requests())
                flood.close()
        self.assertEqual(self.daemon.stop(), 0)
        expected = {address: flood.requests() for address, flood in floods.items()}
        expected["192.0.2.7"] = len(latencies)
        self.assertEqual(self.recorded(), expected)
        stopped = [line for line in self.daemon.stderr().splitlines() if "event=stopped" in line]
        self.assertIn(f"requests={sum(expected.values())} ", stopped[-1])
        self.assertIn(" dropped=0 ", stopped[-1])


    def test_a_client_that_stops_sending_gets_every_answer_before_the_close(self):
        count = 20000  # 280 kB of answers: past the bound and the socket buffers
        request = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.105\n\n"
        c = PolicyClient(self.socket)

        def send_all_then_stop():
            c.sock.sendall(request * count)
            c.sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_all_then_stop)
        sender.start()
        time.sleep(1)  # reads nothing for a while: the answers wait
        answers = [c.answer() for _ in range(count)]
        sender.join()
        self.assertEqual(answers, ["DUNNO"] * count)
        self.assertIsNone(c.answer())  # then closed
        c.close()
        self.assertEqual(self.daemon.stop(), 0)
        self.assertEqual(self.recorded(), {"192.0.2.105": count})


class PolicyServerUnreadTimeout(FloodedDaemonCase):
    """A client that does not read its answers for request_timeout is closed,
    logged once per interval."""

    def extra(self):
        return "  max_output_bytes: 4096\n  request_timeout_s: 1\n"

    def test_a_client_that_never_reads_is_closed(self):
        floods = [Flood(self.socket, "192.0.2.103") for _ in range(2)]
        floods.append(Flood(("127.0.0.1", self.port), "192.0.2.104"))
        for flood in floods:
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                flood.send_some()
        # Each is closed 1 s after its output filled, at the next sweep (1/s).
        time.sleep(3.5)
        self.assertEqual(self.daemon.stderr().count("event=unread"), 1)
        good = PolicyClient(self.socket)
        self.assertEqual(good.ask(), "DUNNO")
        good.close()
        for flood in floods:  # the server closed them: at most what it had answered
            self.assertLess(flood.finish(timeout=10), flood.requests())
            flood.close()
        self.assertEqual(self.daemon.stop(), 0)
        log = self.daemon.stderr()
        self.assertEqual(log.count("event=unread"), 1, "rate-limited")
        self.assertIn('reason="answers not read within 1s"', log)
        self.assertIn("unread=3 ", log)


class PolicyRules(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir()
        self.db = self.work.join("smtpscope.db")
        self.socket = self.work.join("policy.sock")
        self.rules = self.work.join("rules.yaml")
        with open(self.rules, "w") as f:
            f.write(RULES)
        self.daemon = harness.policy_daemon(self.work, self.db, [f"unix:{self.socket}"],
                                            f"  rules_file: {self.rules}\n"
                                            "  history_cache_s: 0\n").start()

    def tearDown(self):
        self.daemon.stop()
        self.work.remove()

    def test_rules_answer_and_are_recorded(self):
        c = PolicyClient(self.socket)
        self.assertEqual(c.ask(recipient="blocked@test.example"),
                         "REJECT 5.7.1 blocked by an smtpscope rule")
        self.assertEqual(c.ask(recipient="fine@test.example"), "DUNNO")
        self.daemon.stop()
        rows = harness.query(self.db, "SELECT json_extract(attributes, '$.rule') FROM events"
                             " ORDER BY time_us")
        self.assertEqual(rows, [("blocked-recipient",), (None,)])

    def test_client_history_comes_from_the_database(self):
        now_us = int(time.time() * 1e6)
        harness.query(self.db, "INSERT INTO sessions (id, stream, client_addr, client_port,"
                      " connect_us, sources) VALUES (900, 'milter:1:1', '192.0.2.50', 1, ?,"
                      " 'milter')", now_us - 60_000_000)
        for seq in (1, 2):
            harness.query(self.db, "INSERT INTO transactions (session_id, seq, started_us,"
                          " outcome) VALUES (900, ?, ?, 'aborted')", seq, now_us - 50_000_000)
        c = PolicyClient(self.socket)
        self.assertEqual(c.ask(client_address="192.0.2.50"),
                         "DEFER_IF_PERMIT 4.7.1 you reset too often")
        self.assertEqual(c.ask(client_address="192.0.2.51"), "DUNNO")

    def test_rules_match_what_the_analysis_found(self):
        now_us = int(time.time() * 1e6)
        harness.query(self.db, "INSERT INTO sessions (id, stream, client_addr, client_port,"
                      " connect_us, sources) VALUES (901, 'milter:1:2', '192.0.2.70', 2, ?,"
                      " 'milter')", now_us - 60_000_000)
        harness.query(self.db, "INSERT INTO session_analysis (session_id, client_addr, host,"
                      " connect_us, stages, pattern, patterns, fingerprint, helo_quirks,"
                      " transactions, aborted, delivered, local, analysed_us)"
                      " VALUES (901, '192.0.2.70', '', ?, 'C H M R A M R D E Q',"
                      " 'intercepting-proxy', 'intercepting-proxy', '1a2b3c4d', 'bare-ip',"
                      " 2, 1, 1, 0, ?)", now_us - 60_000_000, now_us)
        c = PolicyClient(self.socket)
        self.assertEqual(c.ask(client_address="192.0.2.70"),
                         "PREPEND X-Smtpscope: client behind an intercepting proxy")
        self.assertEqual(c.ask(client_address="192.0.2.71"), "DUNNO")

    def test_reload_takes_good_rules_and_refuses_bad_ones(self):
        c = PolicyClient(self.socket)
        self.assertEqual(c.ask(recipient="blocked@test.example"),
                         "REJECT 5.7.1 blocked by an smtpscope rule")
        with open(self.rules, "w") as f:
            f.write("rules:\n  - name: broken\n    action: MAYBE\n")
        os.kill(self.daemon.process.pid, signal.SIGHUP)
        harness.wait_for(lambda: "reload-refused" in self.daemon.stderr(), 10, "refusal")
        self.assertIn(f'{self.rules}:3: action "MAYBE" is not an access(5) action',
                      self.daemon.stderr())
        self.assertEqual(c.ask(recipient="blocked@test.example"),
                         "REJECT 5.7.1 blocked by an smtpscope rule")  # old rules kept
        with open(self.rules, "w") as f:
            f.write("rules:\n  - name: new\n    when:\n      recipient: blocked@test.example\n"
                    "    action: WARN seen by the new rules\n")
        os.kill(self.daemon.process.pid, signal.SIGHUP)
        harness.wait_for(lambda: "event=reloaded rules=1" in self.daemon.stderr(), 10, "reload")
        self.assertEqual(c.ask(recipient="blocked@test.example"), "WARN seen by the new rules")


class PolicyStartup(unittest.TestCase):
    def test_a_bad_rules_file_refuses_to_start(self):
        work = harness.Workdir()
        try:
            rules = work.join("rules.yaml")
            with open(rules, "w") as f:
                f.write("rules:\n  - name: x\n    when:\n      helo_name: {matches: \"([\"}\n"
                        "    action: DUNNO\n")
            config = work.join("p.yaml")
            with open(config, "w") as f:
                f.write(f"database:\n  path: {work.join('s.db')}\npolicy:\n"
                        f"  listen: [\"unix:{work.join('p.sock')}\"]\n  rules_file: {rules}\n")
            import subprocess
            result = subprocess.run([harness.binary("smtpscope-policyd"), "-c", config, "-f"],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 2)
            self.assertRegex(result.stderr, re.escape(rules) + r":4: when\.helo_name: bad regular")
            check = subprocess.run([harness.binary("smtpscope-policyd"), "-c", config,
                                    "--check-config"], capture_output=True, text=True)
            self.assertEqual(check.returncode, 2)
        finally:
            work.remove()


if __name__ == "__main__":
    unittest.main()
