"""Acceptance of smtpscope-milter: real clients through a real private
Postfix, asserting the exact stage sequence recorded per session."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

PROXY, PROBE, EMPTY_HELO, LOST, PIPELINED, REJECTED, REUSE, TLS = (
    "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15", "127.0.0.16",
    "127.0.0.17", "127.0.0.18")


class MilterScenarios(unittest.TestCase):
    """Scenarios 1-7 of the foundation issue against one Postfix + milter."""

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        socket_path = cls.work.join("milter.sock")
        cls.milter = harness.milter_daemon(cls.work, cls.db, socket_path).start()
        cls.postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{socket_path}",
                                              tls=True).start()
        port = cls.postfix.port
        cls.replies = {
            PROXY: scenarios.intercepting_proxy(port, PROXY, pause=2.0),
            PROBE: scenarios.verification_probe(port, PROBE),
            EMPTY_HELO: scenarios.empty_helo(port, EMPTY_HELO),
            LOST: scenarios.lost_after_rcpt(port, LOST),
            PIPELINED: scenarios.pipelined_probe(port, PIPELINED),
            REJECTED: scenarios.rejected_recipient(port, REJECTED),
            TLS: scenarios.starttls_client(port, TLS),
        }
        reuse_work = harness.Workdir()
        try:
            scenarios.connection_reuse(cls.postfix, reuse_work, REUSE, messages=4)
        finally:
            reuse_work.remove()
        for client in (PROXY, PROBE, EMPTY_HELO, LOST, PIPELINED, REJECTED, TLS):
            cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
        harness.wait_for_closed(cls.db, [PROXY, PROBE, EMPTY_HELO, LOST, PIPELINED, REJECTED,
                                         TLS, REUSE])
        # A clean stop commits everything still queued.
        cls.milter_exit = cls.milter.stop()

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.milter.stop()
        cls.work.remove()

    def transactions(self, client):
        return harness.query(
            self.db, "SELECT t.seq, t.mail_from, t.rcpt_accepted, t.rcpt_rejected, t.outcome,"
            " t.queue_id, t.data_us IS NOT NULL FROM transactions t JOIN sessions s"
            " ON s.id = t.session_id WHERE s.client_addr = ? ORDER BY t.id", client)

    def disconnect_line(self, client):
        lines = [l for l in self.postfix.log_lines() if f"disconnect from unknown[{client}]" in l]
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def test_milter_stopped_cleanly(self):
        self.assertEqual(self.milter_exit, 0)

    def test_the_milter_stored_the_analysis_of_each_session_it_saw_end(self):
        """Schema 8: each session is analysed once when it ends, by the
        daemon that recorded its end (here the milter's analysis thread, and
        its last pass at stop); no smtpscope command has run."""
        rows = harness.query(self.db, "SELECT s.client_addr, a.stages, a.pattern FROM sessions s"
                             " LEFT JOIN session_analysis a ON a.session_id = s.id")
        self.assertTrue(rows)
        for client, stages, _ in rows:
            self.assertIsNotNone(stages, client)
        named = {client: pattern for client, _, pattern in rows}
        self.assertEqual(named[PROXY], "intercepting-proxy")
        self.assertEqual(named[PROBE], "verification-probe")
        (counted,) = harness.query(self.db, "SELECT sum(sessions) FROM client_day_shapes")
        self.assertEqual(counted, (len(rows),))

    def test_1_intercepting_proxy(self):
        self.assertEqual(self.replies[PROXY], [250, 250, 250, 250, 250, 250, 250, 221])
        self.assertEqual(harness.session_stages(self.db, PROXY), [[
            "connect", "helo", "mail", "rcpt", "abort", "mail", "rcpt", "data", "header", "eom",
            "close"]])
        (first, second) = self.transactions(PROXY)
        self.assertEqual(first[:5], (1, "<clerk@corp.example>", 1, 0, "aborted"))
        self.assertFalse(first[6], "the aborted transaction never reached DATA")
        self.assertEqual(second[:5], (2, "<clerk@corp.example>", 1, 0, "delivered"))
        self.assertRegex(second[5], r"^[0-9A-F]{6,}$")
        self.assertIn(f"{second[5]}: removed", "\n".join(self.postfix.log_lines()))
        # The pause before the retry is in the stage times (the abort itself
        # reaches the milter with Postfix's next milter command: the retry).
        (gap,) = harness.query(self.db, """
            SELECT max(time_us) FILTER (WHERE stage = 'mail')
                   - min(time_us) FILTER (WHERE stage = 'rcpt')
            FROM events e JOIN sessions s ON s.id = e.session_id WHERE s.client_addr = ?""",
                               PROXY)[0]
        self.assertGreaterEqual(gap, 2_000_000)
        self.assertLess(gap, 10_000_000)
        (header,) = harness.query(self.db, """SELECT argument FROM events e JOIN sessions s
            ON s.id = e.session_id WHERE s.client_addr = ? AND stage = 'header'""", PROXY)[0]
        self.assertEqual(header, "X-Mailer: Blat v3.2.24")
        self.assertIn("rset=2", self.disconnect_line(PROXY))

    def test_2_verification_probe(self):
        self.assertEqual(self.replies[PROBE], [250, 250, 250, 221])
        self.assertEqual(harness.session_stages(self.db, PROBE),
                         [["connect", "helo", "mail", "rcpt", "abort", "close"]])
        self.assertEqual(self.transactions(PROBE), [(1, "<>", 1, 0, "aborted", None, 0)])

    def test_3_empty_helo_is_still_a_session(self):
        self.assertEqual(self.replies[EMPTY_HELO], [501, 221])
        self.assertEqual(harness.session_stages(self.db, EMPTY_HELO), [["connect", "close"]])
        (helo, closed) = harness.query(
            self.db, "SELECT helo, close_us IS NOT NULL FROM sessions WHERE client_addr = ?",
            EMPTY_HELO)[0]
        self.assertIsNone(helo)
        self.assertEqual(closed, 1)
        self.assertIn("helo=0/1", self.disconnect_line(EMPTY_HELO))

    def test_4_lost_connection_after_rcpt(self):
        self.assertEqual(harness.session_stages(self.db, LOST),
                         [["connect", "helo", "mail", "rcpt", "abort", "close"]])
        self.assertEqual(self.transactions(LOST)[0][4], "aborted")
        self.assertTrue(any(f"lost connection after RCPT from unknown[{LOST}]" in l
                            for l in self.postfix.log_lines()))

    def test_5_pipelined_probe(self):
        self.assertEqual(self.replies[PIPELINED], [250, 250, 250, 221])
        self.assertEqual(harness.session_stages(self.db, PIPELINED),
                         [["connect", "helo", "mail", "rcpt", "abort", "close"]])
        self.assertNotIn("improper command pipelining",
                         "\n".join(l for l in self.postfix.log_lines() if PIPELINED in l))

    def test_6_rejected_recipient_then_rset_noop_quit(self):
        self.assertEqual(self.replies[REJECTED], [250, 554, 250, 250, 221])
        self.assertEqual(harness.session_stages(self.db, REJECTED),
                         [["connect", "helo", "mail", "rcpt", "abort", "close"]])
        self.assertEqual(self.transactions(REJECTED)[0][:5],
                         (1, "<a@rejected.example>", 0, 1, "aborted"))
        (argument, attributes) = harness.query(self.db, """SELECT argument, attributes FROM events e
            JOIN sessions s ON s.id = e.session_id WHERE client_addr = ? AND stage = 'rcpt'""",
                                               REJECTED)[0]
        self.assertEqual(argument, f"<{harness.REJECTED_RECIPIENT}>")
        self.assertIn('"rejected":"1"', attributes)
        self.assertIn('"status":"5.7.1"', attributes)
        self.assertIn("Recipient address rejected: no such user here", attributes)
        self.assertIn("noop=1", self.disconnect_line(REJECTED))

    def test_7_connection_reuse(self):
        # Postfix's smtp client caches the connection and sends RSET before
        # each further MAIL; the milter sees no event for that RSET.
        sessions = harness.query(self.db, "SELECT id, client_port FROM sessions"
                                 " WHERE client_addr = ? ORDER BY id", REUSE)
        messages_per_session = []
        for session_id, port in sessions:
            stages = [s for (s,) in harness.query(
                self.db, "SELECT stage FROM events WHERE session_id = ? ORDER BY id", session_id)]
            n = stages.count("mail")
            self.assertEqual(stages, ["connect", "helo"] + ["mail", "rcpt", "data", "eom"] * n
                             + ["close"])
            line = [l for l in self.postfix.log_lines()
                    if f"disconnect from unknown[{REUSE}]:{port} " in l][0]
            self.assertIn(f"mail={n} ", line)
            if n > 1:
                self.assertIn(f"rset={n - 1} ", line)
            messages_per_session.append(n)
        self.assertEqual(sum(messages_per_session), 4)
        self.assertGreaterEqual(max(messages_per_session), 2, "a connection was reused")
        self.assertEqual({t[4] for t in self.transactions(REUSE)}, {"delivered"})

    def test_starttls_shows_as_a_second_helo_with_tls_macros(self):
        self.assertEqual(self.replies[TLS], [220, 250, 250, 250, 221])
        self.assertEqual(harness.session_stages(self.db, TLS),
                         [["connect", "helo", "helo", "mail", "rcpt", "abort", "close"]])
        helos = harness.query(self.db, """SELECT json_extract(attributes, '$."{tls_version}"'),
            json_extract(attributes, '$."{cipher}"') FROM events e JOIN sessions s
            ON s.id = e.session_id WHERE client_addr = ? AND stage = 'helo' ORDER BY e.id""", TLS)
        self.assertEqual(helos[0], (None, None))
        self.assertRegex(helos[1][0], r"^TLSv1\.[23]$")
        self.assertTrue(helos[1][1])
        self.assertEqual(harness.query(self.db, "SELECT helo_count FROM sessions"
                                       " WHERE client_addr = ?", TLS), [(2,)])

    def test_sessions_carry_client_and_server_endpoints(self):
        rows = harness.query(self.db, "SELECT client_addr, client_port, server_port FROM sessions"
                             " WHERE client_addr = ?", PROBE)
        (addr, port, server_port) = rows[0]
        self.assertEqual(server_port, self.postfix.port)
        self.assertTrue(any(f"connect from unknown[{addr}]:{port}" in l
                            for l in self.postfix.log_lines()))


class InetSocket(unittest.TestCase):
    """The milter on libmilter's inet:PORT@HOST, Postfix on inet:HOST:PORT;
    bodies skipped (the default), so no body size is recorded."""

    def test_a_session_over_tcp(self):
        work = harness.Workdir()
        db = work.join("smtpscope.db")
        port = harness.free_port()
        milter = harness.Daemon(work, "smtpscope-milter",
                                f"database:\n  path: {db}\nmilter:\n  socket: inet:{port}@127.0.0.1\n"
                                "daemon:\n  allow_root: true\n",
                                lambda: harness.port_listening(port)).start()
        postfix = harness.PostfixInstance(work, milter_socket=f"inet:127.0.0.1:{port}").start()
        try:
            scenarios.intercepting_proxy(postfix.port, "127.0.0.21", pause=0.1)
            postfix.wait_for_log("disconnect from unknown[127.0.0.21]")
            harness.wait_for_closed(db, ["127.0.0.21"])
            self.assertEqual(milter.stop(), 0)
            self.assertEqual(harness.session_stages(db, "127.0.0.21"), [[
                "connect", "helo", "mail", "rcpt", "abort", "mail", "rcpt", "data", "header",
                "eom", "close"]])
            self.assertEqual(harness.query(db, "SELECT body_bytes, queue_id IS NOT NULL FROM"
                                           " transactions WHERE outcome = 'delivered'"), [(None, 1)])
        finally:
            postfix.stop()
            milter.stop()
            work.remove()


class ConcurrentSessions(unittest.TestCase):
    """Scenario 8: 200 concurrent smtp-source sessions; every session and
    message Postfix logged is in the database."""

    def test_every_logged_session_and_message_is_recorded(self):
        work = harness.Workdir()
        db = work.join("smtpscope.db")
        socket_path = work.join("milter.sock")
        milter = harness.milter_daemon(work, db, socket_path).start()
        postfix = harness.PostfixInstance(work, milter_socket=f"unix:{socket_path}").start()
        try:
            scenarios.concurrent_load(postfix.port, sessions=200)
            postfix.wait_for_log("status=sent", count=200, timeout=60)
            postfix.wait_for_log("disconnect from", count=200, timeout=30)
            harness.wait_for_closed(db, count=200)
            self.assertEqual(milter.stop(), 0)
            lines = postfix.log_lines()
            logged_sessions = {(m[1], int(m[2])) for l in lines
                               if (m := re.search(r"smtpd\[\d+\]: connect from \S+\[([\d.]+)\]:(\d+)", l))}
            logged_messages = {m[1] for l in lines
                               if (m := re.search(r"qmgr\[\d+\]: ([0-9A-F]+): removed", l))}
            recorded_sessions = set(harness.query(db, "SELECT client_addr, client_port FROM sessions"))
            recorded_messages = {q for (q,) in harness.query(
                db, "SELECT queue_id FROM transactions WHERE outcome = 'delivered'")}
            self.assertEqual(len(logged_sessions), 200)
            self.assertEqual(recorded_sessions, logged_sessions)
            self.assertEqual(len(logged_messages), 200)
            self.assertEqual(recorded_messages, logged_messages)
            (dropped,) = harness.query(db, "SELECT coalesce(sum(dropped), 0) FROM drops")[0]
            self.assertEqual(dropped, 0)
        finally:
            postfix.stop()
            milter.stop()
            work.remove()


if __name__ == "__main__":
    unittest.main()
