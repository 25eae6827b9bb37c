#!/usr/bin/env python3
"""End-to-end cost of smtpscope to Postfix (issue 6): a private Postfix on
loopback with the discard transport, smtp-source sending MESSAGES messages
over SESSIONS concurrent sessions, measured in turn with
  a: no milter
  b: null_milter (bench/null_milter.cpp: every stage, replies to all)
  q: null_milter quiet: every envelope stage, no replies, no headers or
     body (the floor of a milter that sees the envelope)
  z: null_milter deaf: asks for no stage at all (the floor of any milter:
     what Postfix spends on having a milter attached)
  r: raw_deaf_milter: z without libmilter (bench/raw_deaf_milter.cpp, one
     epoll thread): what is left is Postfix's own cost
  c: smtpscope-milter
  d: smtpscope-milter + smtpscope-policyd at CONNECT, HELO, MAIL, RCPT, DATA
  t: d with bench/trivial_policy_server (answers DUNNO, records nothing)
     instead of smtpscope-policyd: what the policy checks cost Postfix
  p: smtpscope-policyd alone (no milter): the policy + log sensor set
  g: c forwarding to a private PostgreSQL 15 (fsync on; database.url, the
     forwarder's default interval): the fleet store's cost to Postfix;
     afterwards every session of the SQLite file must be in PostgreSQL
  h: g with PostgreSQL's fsync off: its disk flushes no longer compete
     with Postfix's queue files (as with a fleet store on another machine)
each REPS times, the configurations interleaved. Prints, per configuration,
the median messages/second and its ratio to (a), our daemons' CPU seconds
per 1,000 messages, their peak RSS, the events they dropped, and the system
CPU seconds per 1,000 messages (Postfix's processes, smtp-source, our
daemons or the comparison program, g's and h's PostgreSQL: what bounds the
rate on a machine the run saturates, and less moved by other load than
msg/s); with
--soak N, one more run of (d) with N messages sampling the daemons' RSS.
After each run of (c) and (d), Postfix's log is read into the database
(smtpscope ingest) and, alone, into a new one: the database bytes per
session (after VACUUM) are printed for the log alone, milter + log (c) and
all three sensors (d).

Usage: bench/e2e_bench.py [--messages 5000] [--sessions 10] [--reps 3]
                          [--size BYTES] [--configs abqzrcdtpgh] [--soak 0] [--json FILE]
Needs root (Postfix) and a build (SMTPSCOPE_BUILD_DIR, default ./build)."""
import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("SMTPSCOPE_BUILD_DIR", os.path.join(ROOT, "build"))
import harness  # noqa: E402
import pg_server  # noqa: E402
from pg_forward_bench import cpu_with_children  # noqa: E402

CONFIGS = {
    "a": "no milter",
    "b": "null milter (naive, replies to every stage)",
    "q": "null milter, quiet (no replies, no content)",
    "z": "null milter, deaf (asks for no stage: the cost of any milter)",
    "r": "raw deaf milter (no libmilter, one epoll thread, no stage)",
    "c": "smtpscope-milter",
    "d": "smtpscope-milter + smtpscope-policyd",
    "t": "smtpscope-milter + trivial policy server",
    "p": "smtpscope-policyd (no milter)",
    "g": "smtpscope-milter forwarding to PostgreSQL",
    "h": "g, PostgreSQL's fsync off",
}
FLEET_CONFIGS = {"g": True, "h": False}  # with PostgreSQL; its fsync
SENSOR_SETS = {"log": "log alone", "c": "milter + log", "d": "milter + policy + log"}
NULL_MILTER_MODES = {"b": "naive", "q": "quiet", "z": "deaf"}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = harness.read_file(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def status_kib(pid, key):
    match = re.search(rf"^{key}:\s+(\d+) kB", harness.read_file(f"/proc/{pid}/status"), re.M)
    return int(match.group(1))


class Setup:
    """One configuration's daemons and Postfix, started fresh."""

    def __init__(self, config):
        self.config = config
        self.work = harness.Workdir("smtpscope-bench-")
        self.db = self.work.join("smtpscope.db")
        self.daemons = []  # ours
        self.reference = None  # the comparison program of b, q, z, r, t
        self.pg = None  # g's and h's fleet store
        milter_socket = None
        policy_service = None
        if config in NULL_MILTER_MODES:
            milter_socket = self.work.join("null.sock")
            self.start_reference("null_milter", f"unix:{milter_socket}", milter_socket,
                                 NULL_MILTER_MODE=NULL_MILTER_MODES[config])
        if config == "r":
            milter_socket = self.work.join("raw.sock")
            self.start_reference("raw_deaf_milter", milter_socket, milter_socket)
        if config in ("c", "d", "t", *FLEET_CONFIGS):
            milter_socket = self.work.join("m.sock")
            milter = harness.milter_daemon(self.work, self.db, milter_socket)
            if config in FLEET_CONFIGS:
                self.pg = pg_server.PgServer(fsync=FLEET_CONFIGS[config]).start()
                forward_to(milter, self.pg)
            self.daemons.append(milter.start())
        if config in ("d", "p"):
            policy_socket = self.work.join("policy.sock")
            self.daemons.append(harness.policy_daemon(self.work, self.db,
                                                      [f"unix:{policy_socket}"]).start())
            policy_service = f"unix:{policy_socket}"
        if config == "t":
            policy_socket = self.work.join("trivial.sock")
            self.start_reference("trivial_policy_server", policy_socket, policy_socket)
            policy_service = f"unix:{policy_socket}"
        self.postfix = harness.PostfixInstance(
            self.work, milter_socket=f"unix:{milter_socket}" if milter_socket else None,
            policy_service=policy_service,
            # the harness asks at every stage; the setup stops at DATA
            extra={"smtpd_end_of_data_restrictions": ""} if policy_service else None).start()

    def start_reference(self, program, listen, socket_path, **env):
        """Starts one of bench/'s comparison programs listening on `listen`
        and waits for its socket (world-writable: smtpd connects as postfix)."""
        binary = os.path.join(os.environ["SMTPSCOPE_BUILD_DIR"], "bench", program)
        self.reference = subprocess.Popen([binary, listen], env=dict(os.environ, **env),
                                          preexec_fn=lambda: os.umask(0))
        harness.wait_for(lambda: os.path.exists(socket_path), 10, program)

    def send(self, messages, sessions, size=0):
        """Sends with smtp-source; its wall seconds (its CPU seconds in
        self.source_cpu)."""
        started = time.monotonic()
        source = subprocess.Popen(["smtp-source", "-s", str(sessions), "-m", str(messages),
                                   *(["-l", str(size)] if size else []),
                                   "-f", "bench@sender.example", "-t", "rcpt@test.example",
                                   f"127.0.0.1:{self.postfix.port}"])
        _, status, usage = os.wait4(source.pid, 0)
        source.returncode = os.waitstatus_to_exitcode(status)
        if source.returncode != 0:
            raise RuntimeError(f"smtp-source exited with {source.returncode}")
        self.source_cpu = usage.ru_utime + usage.ru_stime
        return time.monotonic() - started

    def bytes_per_session(self):
        """Reads Postfix's log into our database and, alone, into a new one;
        the bytes per session of each after VACUUM. Daemons stopped first."""
        log_only = self.work.join("log-only.db")
        sizes = {}
        for name, db in (("log", log_only), (self.config, self.db)):
            harness.smtpscope(db, "ingest", "-q", self.postfix.maillog, check=True)
            sizes[name] = vacuumed_bytes_per_session(db, self.work.join(f"vacuumed-{name}.db"))
        return sizes

    def pids(self):
        return [d.process.pid for d in self.daemons]

    def server_cpu(self):
        """CPU seconds of the PostgreSQL of g or h so far (0 without one)."""
        return cpu_with_children(self.pg.pid) if self.pg else 0.0

    def system_cpu(self):
        """CPU seconds so far of everything the run's mail passes through
        but smtp-source: Postfix's processes, ours, the comparison
        program, the PostgreSQL of g or h."""
        return (cpu_with_children(self.postfix.master_pid) + self.server_cpu()
                + sum(cpu_seconds(pid) for pid in self.pids())
                + (cpu_seconds(self.reference.pid) if self.reference else 0.0))

    def missing_in_fleet(self):
        """Of g and h, the sessions of the SQLite file PostgreSQL does not hold
        (run after the milter's stop, whose last pass sends the rest)."""
        local = harness.query(self.db, "SELECT count(*) FROM sessions")[0][0]
        fleet = int(self.pg.psql("SELECT count(*) FROM sessions", database=pg_server.DATABASE))
        return local - fleet

    def stop(self):
        """Stops everything; returns the events our daemons dropped. Of (c)
        and (d), keeps the bytes per session in self.bytes."""
        self.postfix.stop()
        dropped = 0
        for daemon in self.daemons:
            daemon.stop()
            stopped = [line for line in daemon.stderr().splitlines() if "event=stopped" in line]
            dropped += int(re.search(r"dropped=(\d+)", stopped[-1]).group(1))
        if self.reference:
            self.reference.terminate()
            self.reference.wait()
        self.missing = None
        if self.pg:
            try:
                self.missing = self.missing_in_fleet()
            finally:
                self.pg.close()
        self.bytes = self.bytes_per_session() if self.config in ("c", "d") else {}
        self.work.remove()
        return dropped


def forward_to(daemon, pg):
    """Adds database.url and password_file (the forwarder's other settings
    stay at their defaults) to a harness daemon's configuration."""
    with open(daemon.config_path) as f:
        text = f.read()
    text = text.replace("database:\n", f"database:\n  url: \"{pg.url}\"\n"
                        f"  password_file: {pg.password_file}\n", 1)
    with open(daemon.config_path, "w") as f:
        f.write(text)


def vacuumed_bytes_per_session(db, copy):
    """File size of a VACUUMed copy of db, per session."""
    with sqlite3.connect(db) as source:
        source.execute("VACUUM INTO ?", (copy,))
        (sessions,) = source.execute("SELECT count(*) FROM sessions").fetchone()
    return os.path.getsize(copy) / max(sessions, 1)


def measure(config, messages, sessions, size=0):
    setup = Setup(config)
    try:
        setup.send(100, sessions, size)  # warm up: processes started, caches filled
        cpu_before = sum(cpu_seconds(pid) for pid in setup.pids())
        server_before = setup.server_cpu()
        system_before = setup.system_cpu()
        seconds = setup.send(messages, sessions, size)
        cpu = sum(cpu_seconds(pid) for pid in setup.pids()) - cpu_before
        server_cpu = setup.server_cpu() - server_before
        system_cpu = setup.system_cpu() - system_before + setup.source_cpu
        peak_rss = [status_kib(pid, "VmHWM") for pid in setup.pids()]
        db_bytes = os.path.getsize(setup.db) if os.path.exists(setup.db) else 0
    finally:
        dropped = setup.stop()
    return {"messages_per_s": messages / seconds, "cpu_s_per_1000": cpu / messages * 1000,
            "peak_rss_kib": peak_rss, "dropped": dropped, "db_bytes": db_bytes,
            "bytes_per_session": setup.bytes,
            "postgres_cpu_s_per_1000": server_cpu / messages * 1000,
            "system_cpu_s_per_1000": system_cpu / messages * 1000,
            "missing_in_fleet": setup.missing}


def soak(messages, sessions):
    """(d) with many messages: our daemons' RSS sampled as the run goes."""
    setup = Setup("d")
    samples = []
    try:
        done = threading.Event()
        sender = threading.Thread(target=lambda: (setup.send(messages, sessions), done.set()))
        started = time.monotonic()
        sender.start()
        while not done.wait(2):
            samples.append((round(time.monotonic() - started, 1),
                            [status_kib(pid, "VmRSS") for pid in setup.pids()]))
        sender.join()
        seconds = time.monotonic() - started
    finally:
        dropped = setup.stop()
    return {"messages": messages, "seconds": seconds, "rss_samples_kib": samples,
            "dropped": dropped}


def summarise_fleet(config, runs, summary):
    """Prints and keeps what a fleet configuration (g, h) adds: PostgreSQL's
    CPU, the sessions it lacks, and its rate and cost against c."""
    fleet = runs[config]
    missing = sum(r["missing_in_fleet"] for r in fleet)
    summary[config]["postgres_cpu_s_per_1000"] = statistics.median(
        r["postgres_cpu_s_per_1000"] for r in fleet)
    summary[config]["missing_in_fleet"] = missing
    print(f"\n({config}) PostgreSQL's CPU s per 1000 msg "
          f"{summary[config]['postgres_cpu_s_per_1000']:.2f} (median); sessions missing in "
          f"PostgreSQL after the milter's stop: {missing}")
    if "c" not in summary:
        return
    # c and this configuration run next to each other in every round: their
    # ratio per round cancels what the machine's load does between rounds
    paired = [rf["messages_per_s"] / rc["messages_per_s"] for rf, rc in zip(fleet, runs["c"])]
    summary[config]["over_c"] = paired
    medians = summary[config]["messages_per_s"] / summary["c"]["messages_per_s"]
    print(f"{config}/c of the medians {medians:.3f}; per round "
          f"{', '.join(f'{ratio:.3f}' for ratio in paired)}"
          f" (median {statistics.median(paired):.3f})")
    # What a machine that Postfix saturates would see, whatever else runs
    # beside: c's system CPU per message over this configuration's
    cost = [rc["system_cpu_s_per_1000"] / rf["system_cpu_s_per_1000"]
            for rf, rc in zip(fleet, runs["c"])]
    summary[config]["c_cpu_over_cpu"] = cost
    print(f"system CPU per message, c/{config} per round {', '.join(f'{r:.3f}' for r in cost)}"
          f" (median {statistics.median(cost):.3f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", type=int, default=0, metavar="BYTES",
                        help="message size (smtp-source -l; default: its tiny message)")
    parser.add_argument("--configs", default="".join(CONFIGS),
                        help="which configurations, e.g. aqc (a is always included)")
    parser.add_argument("--soak", type=int, default=0, metavar="N")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    chosen = [config for config in CONFIGS if config == "a" or config in args.configs]
    runs = {config: [] for config in chosen}
    for rep in range(args.reps):
        for config in chosen:
            result = measure(config, args.messages, args.sessions, args.size)
            runs[config].append(result)
            fleet = ("" if result["missing_in_fleet"] is None else
                     f", PostgreSQL CPU s/1000 {result['postgres_cpu_s_per_1000']:.2f},"
                     f" sessions missing there {result['missing_in_fleet']}")
            print(f"rep {rep + 1} {config}: {result['messages_per_s']:.0f} msg/s, system CPU s/1000"
                  f" {result['system_cpu_s_per_1000']:.2f}{fleet}", flush=True)

    baseline = statistics.median(r["messages_per_s"] for r in runs["a"])
    print(f"\n{args.messages} messages of {args.size or 'default'} bytes, {args.sessions} sessions,"
          f" median of {args.reps}")
    print(f"{'configuration':48} {'msg/s':>7} {'ratio':>6} {'CPU s/1000':>10} "
          f"{'peak RSS MiB':>13} {'dropped':>7} {'system CPU s/1000':>17}")
    summary = {}
    for config in chosen:
        label = CONFIGS[config]
        rate = statistics.median(r["messages_per_s"] for r in runs[config])
        cpu = statistics.median(r["cpu_s_per_1000"] for r in runs[config])
        rss = max((max(r["peak_rss_kib"]) for r in runs[config] if r["peak_rss_kib"]), default=0)
        dropped = sum(r["dropped"] for r in runs[config])
        system = statistics.median(r["system_cpu_s_per_1000"] for r in runs[config])
        summary[config] = {"label": label, "messages_per_s": rate, "ratio": rate / baseline,
                           "cpu_s_per_1000": cpu, "peak_rss_kib": rss, "dropped": dropped,
                           "system_cpu_s_per_1000": system, "runs": runs[config]}
        print(f"({config}) {label:44} {rate:7.0f} {rate / baseline:6.2f} "
              f"{cpu if config in 'cdgh' else float('nan'):10.2f} {rss / 1024:13.1f} {dropped:7}"
              f" {system:17.2f}")
    for config in FLEET_CONFIGS:
        if config in summary:
            summarise_fleet(config, runs, summary)
    sizes = {}
    for config in chosen:
        for r in runs[config]:
            for name, value in r["bytes_per_session"].items():
                sizes.setdefault(name, []).append(value)
    if sizes:
        print("\ndatabase bytes per session after VACUUM (median): " + ", ".join(
            f"{SENSOR_SETS[name]} {statistics.median(values):.0f}"
            for name, values in sorted(sizes.items())))
        summary["bytes_per_session"] = {name: statistics.median(v) for name, v in sizes.items()}
    if args.soak:
        summary["soak"] = soak(args.soak, args.sessions)
        samples = summary["soak"]["rss_samples_kib"]
        print(f"\nsoak (d), {args.soak} messages in {summary['soak']['seconds']:.0f} s, "
              f"dropped {summary['soak']['dropped']}; RSS MiB (milter, policyd):")
        for at, rss in samples[:: max(1, len(samples) // 10)] + samples[-1:]:
            print(f"  {at:7.1f} s  " + "  ".join(f"{kib / 1024:6.1f}" for kib in rss))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
