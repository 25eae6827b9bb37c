#!/usr/bin/env python3
"""Events/s of the fleet store's forwarder into PostgreSQL (issue 16: >= 100,000
events/s from one writer), from 1 writer and from 4 writers at once. A writer
is one SQLite file sent by its own `smtpscope db forward` process, as a host's
daemons send theirs; every file is a fresh copy of one database
bench/gen_sessions.py made (SESSIONS sessions, fixed seed) and, unless
--no-analyse, `smtpscope analyse`d (the daemons store each session's analysis
as they go, and the forwarder sends it). Each round starts a private
PostgreSQL 15 (tests/integration/pg_server.py, fsync and synchronous_commit
on, as a real server runs) for the floor (bench/pg_insert_floor's COPY
rows/s, the most one connection writes here) and the 1-writer run, and
another for the 4-writer run. Prints per run the events/s, the rows/s
(sessions + transactions + event rows + analysis, counted in PostgreSQL
afterwards), and the CPU seconds of the smtpscope processes (their rusage)
and of the PostgreSQL server (its processes' /proc stat), the seconds both
spent runnable but waiting for a CPU (/proc/PID/schedstat: what other load
on the machine took from the run), with the load average; then min-max
over the rounds. A writer that fails is started again (it resumes where
the fleet store says) and the retry counted; every event
must be in PostgreSQL once afterwards. --profile adds a 1-writer run with
every statement logged and prints the server time per statement; --what-if
times alternatives on the rows one writer forwarded: the analysis rows
inserted again in the forwarder's chunks (the schema's per-statement count
of client_day_shapes, adopted in schema 10 after this what-if measured it
against the row trigger of 9) and the sessions replaced by INSERT ... ON
CONFLICT against DELETE + INSERT.
Usage: python3 bench/pg_forward_bench.py [--sessions N] [--rounds R]
       [--writers 1,4] [--floor-rows N] [--no-analyse] [--profile] [--what-if]
       [--json FILE]
(run as root; SMTPSCOPE_BUILD_DIR names the build, default ./build).
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import pg_server  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
COUNTED = ("sessions", "transactions", "event_rows", "session_analysis")


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_with_children(parent):
    """CPU seconds so far of a process and its children, reaped or live
    (of a PostgreSQL postmaster: the backends, walwriter, checkpointer...;
    of Postfix's master: smtpd, cleanup, qmgr...)."""
    fields = stat_fields(parent)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            child = stat_fields(entry)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(child[1]) == parent:
            ticks += int(child[11]) + int(child[12])
    return ticks / TICKS


class RunQueueWait(threading.Thread):
    """Seconds the processes of a run spent runnable but waiting for a CPU
    (/proc/PID/schedstat's second field): the writers (children of this
    script) and the PostgreSQL server's processes, sampled every 0.1 s
    until stop(), each process's last sample kept."""

    def __init__(self, postmaster):
        super().__init__()
        self.postmaster = postmaster
        self.last = {}  # pid -> (side, waited ns)
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            self.sample()

    def sample(self):
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                parent = int(stat_fields(entry)[1])
                with open(f"/proc/{entry}/schedstat") as f:
                    waited = int(f.read().split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            side = ("smtpscope" if parent == me else
                    "postgres" if self.postmaster in (parent, int(entry)) else None)
            if side:
                self.last[entry] = (side, waited)

    def stop(self):
        """Seconds waited per side since start."""
        self.done.set()
        self.join()
        waited = {"smtpscope": 0, "postgres": 0}
        for pid, (side, ns) in self.last.items():
            waited[side] += ns - self.first.get(pid, (side, 0))[1]
        return {side: ns / 1e9 for side, ns in waited.items()}

    def start(self):
        self.sample()
        self.first = dict(self.last)
        super().start()


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def file_counts(path):
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in COUNTED}


def fleet_rows(pg):
    out = pg.psql("".join(f"SELECT count(*) FROM {table};\n" for table in COUNTED),
                  database=pg_server.DATABASE)
    return sum(int(line) for line in out.split())


def make_database(binary, path, sessions, analyse):
    started = time.monotonic()
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_sessions.py"),
                    binary, path, str(sessions)], check=True)
    if analyse:
        subprocess.run([binary, "--db", path, "analyse"], check=True, capture_output=True)
    counts = file_counts(path)
    print(f"each writer's file: {counts['sessions']:,} sessions, {counts['transactions']:,}"
          f" transactions, {counts['event_rows']:,} events, {counts['session_analysis']:,}"
          f" analysis rows, {os.path.getsize(path) / 1e6:.0f} MB"
          f" (made in {time.monotonic() - started:.0f} s)", flush=True)


def floor(build, pg, rows):
    """bench/pg_insert_floor's COPY rows/s (batches of 4,096) on pg."""
    done = subprocess.run([os.path.join(build, "bench", "pg_insert_floor"), pg.url, "copy",
                           str(rows), "4096"],
                          env=dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password),
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"pg_insert_floor: {done.stderr.strip()}")
    return float(re.search(r"rows_per_second=(\d+)", done.stdout).group(1))


class Writer(threading.Thread):
    """One `smtpscope db forward` of one file, started again when it fails
    (it resumes where the fleet store says, as the daemons' forwarder does
    at its next interval), at most MAX_RETRIES times; its CPU seconds."""

    MAX_RETRIES = 10

    def __init__(self, binary, url, path, host, env):
        super().__init__()
        self.argv = [binary, "--db", path, "db", "forward", "-q", "--to", url, "--host", host]
        self.out_path = path + ".out"
        self.env = env
        self.cpu_seconds = 0.0
        self.errors = []  # one per retry
        self.failure = None

    def run(self):
        while True:
            with open(self.out_path, "w+") as out:
                process = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_seconds += usage.ru_utime + usage.ru_stime
                out.seek(0)
                text = out.read().strip()
            if process.returncode == 0:
                return
            if len(self.errors) == self.MAX_RETRIES:
                self.failure = f"db forward failed {len(self.errors) + 1} times: {text}"
                return
            self.errors.append(text)


def forward(binary, pg, template, writers, work, expected_events):
    """`writers` fresh copies of template forwarded at once into a fresh
    server, each by its own `smtpscope db forward`; the run's figures."""
    copies = []
    for n in range(writers):
        copy = os.path.join(work, f"writer{n}.db")
        shutil.copy(template, copy)
        copies.append(copy)
    env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
    env.pop("PGPASSWORD", None)
    load = load_average()
    server_before = cpu_with_children(pg.pid)
    waits = RunQueueWait(pg.pid)
    waits.start()
    started = time.monotonic()
    writers_run = [Writer(binary, pg.url, copy, f"mx{n + 1}", env) for n, copy in enumerate(copies)]
    for writer in writers_run:
        writer.start()
    for writer in writers_run:
        writer.join()
        if writer.failure:
            sys.exit(writer.failure)
    seconds = time.monotonic() - started
    waited = waits.stop()
    time.sleep(0.5)  # the backends exit and are reaped
    server_cpu = cpu_with_children(pg.pid) - server_before
    rows = fleet_rows(pg)  # a fresh server: every row is this run's
    events = int(pg.psql("SELECT count(*) FROM event_rows", database=pg_server.DATABASE))
    if events != writers * expected_events:
        sys.exit(f"{writers} writer(s): PostgreSQL holds {events} event rows, not "
                 f"{writers} x {expected_events}")
    client_cpu = sum(writer.cpu_seconds for writer in writers_run)
    retries = [error for writer in writers_run for error in writer.errors]
    for copy in copies:
        os.unlink(copy)
    return {"writers": writers, "events": events, "rows": rows, "seconds": seconds,
            "events_per_s": events / seconds, "rows_per_s": rows / seconds,
            "smtpscope_cpu_s": client_cpu, "postgres_cpu_s": server_cpu,
            "smtpscope_runqueue_s": waited["smtpscope"], "postgres_runqueue_s": waited["postgres"],
            "load_before": load, "load_after": load_average(), "retries": len(retries),
            "retry_reasons": retries}


def log_statements(pg):
    """From now on the server logs every statement with its duration."""
    pg.psql("ALTER SYSTEM SET log_min_duration_statement = 0;\nSELECT pg_reload_conf();\n")


def statement_profile(log):
    """Server time per statement kind (digits folded, first words), most first."""
    totals, counts = {}, {}
    for match in re.finditer(r"duration: ([\d.]+) ms  (statement|execute [^:]*): (.{0,48})",
                             log):
        kind = re.sub(r"\d+", "N", match.group(3)).strip()
        if kind.startswith("SELECT count(*)"):
            continue  # this script's own counting afterwards
        totals[kind] = totals.get(kind, 0.0) + float(match.group(1)) / 1000
        counts[kind] = counts.get(kind, 0) + 1
    return sorted(((seconds, counts[kind], kind) for kind, seconds in totals.items()),
                  reverse=True)


def what_if(pg, tries):
    """On a server one writer forwarded to: the forwarded analysis rows
    inserted again in the forwarder's chunks of 20,000 (the same
    client_day_shapes checked), and the sessions replaced by DELETE + INSERT
    and by INSERT ... ON CONFLICT; seconds per try of each."""
    def sql(text):
        return pg.psql(text, database=pg_server.DATABASE)

    def timed(text):
        out = sql("\\timing on\n" + text)
        return sum(float(ms) for ms in re.findall(r"Time: ([\d.]+) ms", out)) / 1000

    def columns(table):
        return sql(f"SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM"
                   f" information_schema.columns WHERE table_name = '{table}'").strip()

    analysis, sessions = columns("session_analysis"), columns("sessions")
    sql("CREATE TABLE what_if_analysis AS SELECT *, (row_number() OVER (ORDER BY session_id)"
        " - 1) / 20000 AS chunk FROM session_analysis;\n"
        "CREATE TABLE what_if_sessions AS SELECT *, (row_number() OVER (ORDER BY id) - 1)"
        " / 20000 AS chunk FROM sessions;\n"
        "CREATE TABLE what_if_target (LIKE sessions INCLUDING ALL);\n")
    chunks = int(sql("SELECT max(chunk) + 1 FROM what_if_analysis"))
    session_chunks = int(sql("SELECT max(chunk) + 1 FROM what_if_sessions"))
    insert_analysis = "".join(
        f"BEGIN; INSERT INTO session_analysis SELECT {analysis} FROM what_if_analysis"
        f" WHERE chunk = {n}; COMMIT;\n" for n in range(chunks))
    updates = ", ".join(f"{c} = excluded.{c}" for c in sessions.split(", ") if c != "id")
    staged = ("BEGIN; CREATE TEMP TABLE staged ON COMMIT DROP AS SELECT {0} FROM"
              " what_if_sessions WHERE chunk = {1};").format
    replace_sessions = "".join(
        staged(sessions, n) + " DELETE FROM what_if_target t USING staged s WHERE t.id = s.id;"
        " INSERT INTO what_if_target SELECT * FROM staged; COMMIT;\n"
        for n in range(session_chunks))
    upsert_sessions = "".join(
        staged(sessions, n) + " INSERT INTO what_if_target SELECT * FROM staged ON CONFLICT"
        f" (id) DO UPDATE SET {updates}; COMMIT;\n" for n in range(session_chunks))
    fresh = "TRUNCATE session_analysis, client_day_shapes, what_if_target; CHECKPOINT;\n"
    shapes = ("SELECT count(*), sum(sessions), sum(transactions), sum(aborted),"
              " sum(delivered) FROM client_day_shapes;\n")
    forwarded = sql(shapes)
    found = {"analysis rows": [], "sessions DELETE + INSERT": [],
             "sessions INSERT ON CONFLICT": []}
    for _ in range(tries):
        sql(fresh)
        found["analysis rows"].append(timed(insert_analysis))
        if sql(shapes) != forwarded:
            sys.exit("what-if: client_day_shapes differ from the forwarded ones")
        sql(fresh)
        found["sessions DELETE + INSERT"].append(timed(replace_sessions))
        sql(fresh)
        found["sessions INSERT ON CONFLICT"].append(timed(upsert_sessions))
    return found


def describe(run):
    return (f"{run['writers']} writer(s): {run['events']:,} events, {run['rows']:,} rows in "
            f"{run['seconds']:.1f} s = {run['events_per_s']:,.0f} events/s, "
            f"{run['rows_per_s']:,.0f} rows/s; CPU s smtpscope {run['smtpscope_cpu_s']:.1f}, "
            f"postgres {run['postgres_cpu_s']:.1f}; waiting for a CPU s smtpscope "
            f"{run['smtpscope_runqueue_s']:.1f}, postgres {run['postgres_runqueue_s']:.1f}; "
            f"{run['retries']} retries; load {run['load_before']:.1f} -> "
            f"{run['load_after']:.1f}")


def span(values, digits=0):
    return f"{min(values):,.{digits}f}-{max(values):,.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000, help="per writer's file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", default="1,4", help="comma-separated writer counts")
    parser.add_argument("--floor-rows", type=int, default=400_000)
    parser.add_argument("--no-analyse", action="store_true",
                        help="files without the stored analysis")
    parser.add_argument("--profile", action="store_true",
                        help="one more 1-writer run with every statement's server time logged")
    parser.add_argument("--what-if", action="store_true",
                        help="time the analysis rows with a statement-level trigger and the"
                             " sessions replaced by INSERT ON CONFLICT, against today's")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    why_not = pg_server.available()
    if why_not:
        sys.exit(f"pg_forward_bench: {why_not}")
    build = os.environ.get("SMTPSCOPE_BUILD_DIR", os.path.join(ROOT, "build"))
    binary = os.path.join(build, "cli", "smtpscope")
    writer_counts = [int(n) for n in args.writers.split(",")]
    work = tempfile.mkdtemp(prefix="smtpscope-forward-bench-")
    results = {"floor_copy_rows_per_s": [], "runs": {n: [] for n in writer_counts}}
    try:
        template = os.path.join(work, "template.db")
        make_database(binary, template, args.sessions, not args.no_analyse)
        expected = file_counts(template)["event_rows"]
        for round_number in range(1, args.rounds + 1):
            for index, writers in enumerate(writer_counts):
                with pg_server.PgServer(fsync=True) as pg:
                    if index == 0:
                        rate = floor(build, pg, args.floor_rows)
                        results["floor_copy_rows_per_s"].append(rate)
                        print(f"round {round_number} floor: COPY {rate:,.0f} rows/s", flush=True)
                    run = forward(binary, pg, template, writers, work, expected)
                results["runs"][writers].append(run)
                print(f"round {round_number} {describe(run)}", flush=True)
        if args.profile:
            with pg_server.PgServer(fsync=True) as pg:
                log_statements(pg)
                run = forward(binary, pg, template, 1, work, expected)
                log = pg.log()
            print(f"profile run (statements logged) {describe(run)}")
            profile = statement_profile(log)
            logged = sum(seconds for seconds, _, _ in profile)
            print(f"server time of its statements, {logged:.1f} s in all:")
            for seconds, count, kind in profile[:12]:
                print(f"  {seconds:6.2f} s {count:5} x {kind}")
            results["profile"] = {"run": run, "statements": profile}
        if args.what_if:
            with pg_server.PgServer(fsync=True) as pg:
                forward(binary, pg, template, 1, work, expected)
                results["what_if"] = what_if(pg, args.rounds)
            print(f"what if ({args.rounds} tries, seconds per try, in chunks of 20,000 rows):")
            for variant, seconds in results["what_if"].items():
                print(f"  {variant}: {', '.join(f'{s:.2f}' for s in seconds)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nover {args.rounds} round(s), min-max:")
    print(f"floor (pg_insert_floor COPY, 4,096 rows per batch): "
          f"{span(results['floor_copy_rows_per_s'])} rows/s")
    for writers, runs in results["runs"].items():
        print(f"{writers} writer(s): {span([r['events_per_s'] for r in runs])} events/s, "
              f"{span([r['rows_per_s'] for r in runs])} rows/s; CPU s per 1M events: smtpscope "
              f"{span([r['smtpscope_cpu_s'] / r['events'] * 1e6 for r in runs], 1)}, postgres "
              f"{span([r['postgres_cpu_s'] / r['events'] * 1e6 for r in runs], 1)}; "
              f"retries {span([r['retries'] for r in runs])}")
        cpu = [r["smtpscope_cpu_s"] + r["postgres_cpu_s"] for r in runs]
        waited = [r["smtpscope_runqueue_s"] + r["postgres_runqueue_s"] for r in runs]
        print(f"  per run: wall {span([r['seconds'] for r in runs], 1)} s, CPU smtpscope + "
              f"postgres {span(cpu, 1)} s, waiting for a CPU {span(waited, 1)} s")
        reasons = [reason for r in runs for reason in r["retry_reasons"]]
        if reasons:
            print(f"  a retry's reason: {reasons[0][-300:]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
