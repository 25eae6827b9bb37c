"""Acceptance of smtpscope-policyd through a real private Postfix, in its
three serving modes (unix socket, TCP on loopback, spawn(8) on stdin and
stdout), together with smtpscope-milter: each scenario is one session that
holds both sensors' events in order, and its greeting verb is known."""
import os
import pwd
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

PROXY, PROBE, EMPTY_HELO, LOST, PIPELINED, REJECTED, REUSE, TLS, OLD = (
    "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15", "127.0.0.16",
    "127.0.0.17", "127.0.0.18", "127.0.0.19")

# (source initial, stage) in time order, as Postfix drives the two sensors:
# a policy check always precedes the milter event of the same command.
EXPECTED = {
    PROXY: "p:connect m:connect p:helo m:helo p:mail m:mail p:rcpt m:rcpt p:mail m:abort m:mail"
           " p:rcpt m:rcpt p:data m:data p:eom m:header m:eom m:close",
    PROBE: "p:connect m:connect p:helo m:helo p:mail m:mail p:rcpt m:rcpt m:abort m:close",
    EMPTY_HELO: "p:connect m:connect m:close",
    LOST: "p:connect m:connect p:helo m:helo p:mail m:mail p:rcpt m:rcpt m:abort m:close",
    PIPELINED: "p:connect m:connect p:helo m:helo p:mail m:mail p:rcpt m:rcpt m:abort m:close",
    REJECTED: "p:connect m:connect p:helo m:helo p:mail m:mail p:rcpt m:rcpt m:abort m:close",
    TLS: "p:connect m:connect p:helo m:helo p:helo m:helo p:mail m:mail p:rcpt m:rcpt m:abort"
         " m:close",
    OLD: "p:connect m:connect p:helo m:helo p:mail m:mail p:rcpt m:rcpt p:data m:data p:eom"
         " m:eom m:close",
}
PROTOCOL = {PROXY: "ESMTP", PROBE: "ESMTP", EMPTY_HELO: None, LOST: "ESMTP", PIPELINED: "ESMTP",
            REJECTED: "ESMTP", TLS: "ESMTP", OLD: "SMTP"}


def timeline(db, client):
    return " ".join(f"{source[0]}:{stage}" for source, stage in harness.merged_timeline(db, client))


class PolicyAndMilter:
    """Runs `clients` through Postfix with the milter and the policy server
    in one serving mode; subclasses choose the mode."""

    clients = {}

    @classmethod
    def policy_service(cls, work, db):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        milter_socket = cls.work.join("milter.sock")
        cls.milter = harness.milter_daemon(cls.work, cls.db, milter_socket).start()
        cls.policy, service = cls.policy_service(cls.work, cls.db)
        cls.postfix = harness.PostfixInstance(cls.work, milter_socket=f"unix:{milter_socket}",
                                              policy_service=service, tls=True).start()
        cls.replies = {client: play(cls.postfix.port, client)
                       for client, play in cls.clients.items()}
        for client in cls.clients:
            cls.postfix.wait_for_log(f"disconnect from unknown[{client}]")
        harness.wait_for_closed(cls.db, list(cls.clients))
        cls.milter.stop()
        cls.policy_exit = cls.policy.stop() if cls.policy else 0

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.milter.stop()
        if cls.policy:
            cls.policy.stop()
        cls.work.remove()

    def test_each_scenario_is_one_session_with_both_sources_in_order(self):
        for client in self.clients:
            with self.subTest(client=client):
                sessions = harness.query(self.db, "SELECT sources, join_method, partial FROM"
                                         " sessions WHERE client_addr = ?", client)
                self.assertEqual(sessions, [("policy milter", "client address+port+time", 0)]
                                 if sessions and sessions[0][0].startswith("policy") else
                                 [("milter policy", "client address+port+time", 0)])
                self.assertEqual(timeline(self.db, client), EXPECTED[client])

    def test_greeting_verb_is_known(self):
        for client in self.clients:
            with self.subTest(client=client):
                self.assertEqual(harness.query(self.db, "SELECT protocol FROM sessions WHERE"
                                               " client_addr = ?", client), [(PROTOCOL[client],)])

    def test_policy_server_stopped_cleanly(self):
        self.assertEqual(self.policy_exit, 0)


class UnixSocket(PolicyAndMilter, unittest.TestCase):
    clients = {
        PROXY: lambda port, src: scenarios.intercepting_proxy(port, src, pause=1.0),
        PROBE: scenarios.verification_probe,
        EMPTY_HELO: scenarios.empty_helo,
        LOST: scenarios.lost_after_rcpt,
        PIPELINED: scenarios.pipelined_probe,
        REJECTED: scenarios.rejected_recipient,
        TLS: scenarios.starttls_client,
        OLD: scenarios.helo_client,
    }

    @classmethod
    def policy_service(cls, work, db):
        socket_path = work.join("policy.sock")
        return (harness.policy_daemon(work, db, [f"unix:{socket_path}"]).start(),
                f"unix:{socket_path}")

    def test_policy_sees_the_recipient_postfix_then_rejects(self):
        rows = harness.query(self.db, """SELECT e.source, e.argument,
            json_extract(e.attributes, '$.rejected') FROM events e JOIN sessions s
            ON s.id = e.session_id WHERE s.client_addr = ? AND e.stage = 'rcpt'
            ORDER BY e.time_us""", REJECTED)
        self.assertEqual(rows, [("policy", harness.REJECTED_RECIPIENT, None),
                                ("milter", f"<{harness.REJECTED_RECIPIENT}>", "1")])

    def test_policy_events_share_the_milters_transactions(self):
        rows = harness.query(self.db, """SELECT t.seq, t.outcome, t.queue_id IS NOT NULL,
            t.message_bytes > 0, count(e.id) FILTER (WHERE e.source = 'policy')
            FROM transactions t JOIN sessions s ON s.id = t.session_id
            LEFT JOIN events e ON e.transaction_id = t.id
            WHERE s.client_addr = ? GROUP BY t.id ORDER BY t.seq""", PROXY)
        # Postfix asks about MAIL before it numbers the transaction (instance
        # is empty then), so the policy's MAIL check belongs to none yet.
        # Transaction 1: policy RCPT; transaction 2: RCPT, DATA, END-OF-MESSAGE.
        self.assertEqual(rows, [(1, "aborted", 0, None, 1), (2, "delivered", 1, 1, 3)])

    def test_tls_attributes_reach_the_policy_event(self):
        rows = harness.query(self.db, """SELECT json_extract(e.attributes, '$.encryption_protocol')
            FROM events e JOIN sessions s ON s.id = e.session_id
            WHERE s.client_addr = ? AND e.source = 'policy' AND e.stage = 'helo' ORDER BY e.id""",
                             TLS)
        self.assertEqual(rows[0], (None,))  # empty before STARTTLS, so not stored
        self.assertRegex(rows[1][0], r"^TLSv1\.[23]$")

    def test_timeline_shows_the_greeting_verb(self):
        out = subprocess.run([harness.binary("smtpscope"), "--db", self.db, "sessions",
                              "--client", OLD], capture_output=True, text=True, check=True).stdout
        self.assertIn("policy  C: HELO old.example", out)
        proxy = subprocess.run([harness.binary("smtpscope"), "--db", self.db, "sessions",
                                "--client", PROXY], capture_output=True, text=True,
                               check=True).stdout
        self.assertIn("policy  C: EHLO ws7.corp.example", proxy)
        self.assertIn("policy  check RCPT TO:<b@test.example>", out)


class TcpLoopback(PolicyAndMilter, unittest.TestCase):
    clients = {
        PROXY: lambda port, src: scenarios.intercepting_proxy(port, src, pause=0.2),
        REJECTED: scenarios.rejected_recipient,
        EMPTY_HELO: scenarios.empty_helo,
    }

    @classmethod
    def policy_service(cls, work, db):
        port = harness.free_port()
        return (harness.policy_daemon(work, db, [f"inet:127.0.0.1:{port}"]).start(),
                f"inet:127.0.0.1:{port}")


def runnable_by(user, work, name):
    """A copy of our binary `name` in `work`, which `user` can execute
    wherever the checkout is (root's home, mode 700, is out of its reach).
    Checked by running it as that user, so a failure says so plainly."""
    bin_dir = work.join("bin")
    os.makedirs(bin_dir, exist_ok=True)
    os.chmod(bin_dir, 0o755)
    path = os.path.join(bin_dir, name)
    shutil.copy(harness.binary(name), path)
    os.chmod(path, 0o755)
    check = subprocess.run(["runuser", "-u", user, "--", path, "--version"], capture_output=True,
                           text=True)
    if check.returncode != 0:
        raise RuntimeError(f"{user} cannot run {path} (is {work.path} out of its reach?): "
                           f"{check.stderr.strip()}")
    return path


class Spawn(PolicyAndMilter, unittest.TestCase):
    """spawn(8) starts smtpscope-policyd per policy connection as user
    nobody, with the connection on its stdin and stdout. The binary and its
    configuration are in the test's own directory, not the build folder, so
    the test runs from any checkout."""

    clients = {
        PROXY: lambda port, src: scenarios.intercepting_proxy(port, src, pause=0.2),
        REJECTED: scenarios.rejected_recipient,
        OLD: scenarios.helo_client,
    }

    @classmethod
    def policy_service(cls, work, db):
        # The milter (root) has created the database; the spawned server runs
        # as nobody and must be able to write it and its WAL files.
        nobody = pwd.getpwnam("nobody")
        os.chmod(work.path, 0o1777)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.chown(db + suffix, nobody.pw_uid, nobody.pw_gid)
        config = work.join("policy-spawn.yaml")
        with open(config, "w") as f:
            f.write(f"database:\n  path: {db}\nstore:\n  batch_interval_ms: 50\n"
                    f"policy:\n  listen: [stdio]\nlogging:\n  level: warn\n")
        os.chmod(config, 0o644)
        argv = [runnable_by("nobody", work, "smtpscope-policyd"), "-c", config]
        return None, {"argv": argv, "user": "nobody"}

    def test_spawned_servers_exit_when_postfix_closes(self):
        self.postfix.stop()
        harness.wait_for(lambda: not any(
            "smtpscope-polic" in harness.read_file(f"/proc/{pid}/comm")
            for pid in os.listdir("/proc") if pid.isdigit() and os.path.exists(f"/proc/{pid}/comm")
            and self.work.path in harness.read_file(f"/proc/{pid}/cmdline")), 15,
            "spawned policy servers to exit")


class RulesThroughPostfix(unittest.TestCase):
    """Rules answer Postfix: a REJECT reaches the client, a WARN the log."""

    def test_reject_and_warn(self):
        from smtp_client import SmtpClient
        work = harness.Workdir()
        try:
            rules = work.join("rules.yaml")
            with open(rules, "w") as f:
                f.write("rules:\n"
                        "  - name: no-blocked\n    when:\n      protocol_state: RCPT\n"
                        "      recipient: blocked@test.example\n"
                        "    action: REJECT blocked by an smtpscope rule\n"
                        "  - name: note-probes\n    when:\n      protocol_state: RCPT\n"
                        "      sender: {empty: true}\n"
                        "    action: WARN smtpscope saw a null-sender probe\n")
            db = work.join("smtpscope.db")
            socket_path = work.join("policy.sock")
            policy = harness.policy_daemon(work, db, [f"unix:{socket_path}"],
                                           f"  rules_file: {rules}\n").start()
            postfix = harness.PostfixInstance(work, policy_service=f"unix:{socket_path}").start()
            try:
                c = SmtpClient(postfix.port, "127.0.0.30")
                c.command("EHLO rules.example")
                c.command("MAIL FROM:<a@rules.example>")
                code, text = c.command("RCPT TO:<blocked@test.example>")
                self.assertEqual((code, text), (554, "5.7.1 <blocked@test.example>: Recipient "
                                                     "address rejected: blocked by an smtpscope rule"))
                c.command("RSET")
                c.command("MAIL FROM:<>")
                self.assertEqual(c.command("RCPT TO:<postmaster@test.example>")[0], 250)
                c.quit()
                postfix.wait_for_log("disconnect from unknown[127.0.0.30]")
                log = "\n".join(postfix.log_lines())
                self.assertIn("warn: RCPT from unknown[127.0.0.30]", log)
                self.assertIn("smtpscope saw a null-sender probe", log)
            finally:
                postfix.stop()
                self.assertEqual(policy.stop(), 0)
            rules_fired = harness.query(db, "SELECT json_extract(attributes, '$.rule') FROM events"
                                        " WHERE json_extract(attributes, '$.rule') IS NOT NULL"
                                        " ORDER BY time_us")
            self.assertEqual(rules_fired, [("no-blocked",), ("note-probes",)])
        finally:
            work.remove()


if __name__ == "__main__":
    unittest.main()
