#!/usr/bin/env python3
"""The views over a fleet store of SESSIONS sessions (issue 16's target:
`clients` over 10,000,000 sessions in PostgreSQL in <= 10 s).

bench/gen_sessions.py fills an SQLite file (100 sessions per client), `smtpscope
analyse` stores its analysis, `smtpscope db forward` sends it all to a
private PostgreSQL 15 (tests/integration/pg_server.py, fsync on), and then
`clients`, `correlate`, `report --client` (text and JSON) and the overview
run with `--db postgresql://...`, each with wall time and peak RSS, beside
the same commands on the SQLite file. Also PostgreSQL's bytes per session.

Usage: python3 bench/pg_report_bench.py [--sessions N] [--build DIR] [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import pg_server  # noqa: E402


def timed(argv, env=None):
    """(seconds, peak RSS MiB, stdout) of one command; raises when it fails."""
    with tempfile.NamedTemporaryFile("r") as stats:
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", stats.name, *argv],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
        seconds, kib = stats.read().split()
    return float(seconds), int(kib) // 1024, done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--keep", help="directory for the SQLite file (kept between runs)")
    args = parser.parse_args()
    smtpscope = os.path.join(args.build, "cli", "smtpscope")
    work = args.keep or tempfile.mkdtemp(prefix="smtpscope-pg-report-")
    os.chmod(work, 0o755)
    db = os.path.join(work, f"sessions-{args.sessions}.db")
    if not os.path.exists(db):
        started = time.monotonic()
        subprocess.run([sys.executable, os.path.join(HERE, "gen_sessions.py"), smtpscope, db,
                        str(args.sessions)], check=True)
        seconds, _, _ = timed([smtpscope, "--db", db, "analyse"])
        print(f"generated and analysed {args.sessions} sessions in "
              f"{time.monotonic() - started:.0f} s (analyse {seconds:.0f} s)")
    with pg_server.PgServer(fsync=True) as pg:
        env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
        env.pop("PGPASSWORD", None)
        seconds, _, out = timed([smtpscope, "--db", db, "db", "forward", "-q", "--to", pg.url],
                                env)
        print(f"db forward: {seconds:.0f} s; {out.strip()}")
        pg.psql("VACUUM ANALYZE", database=pg_server.DATABASE)
        size = int(pg.psql("SELECT pg_database_size(current_database())",
                           database=pg_server.DATABASE).strip())
        print(f"PostgreSQL: {size / 2**30:.2f} GiB, {size // args.sessions} bytes per session")
        client = "10.0.0.7"
        commands = [
            ("clients (all sessions)", ["clients"]),
            ("clients --since 1h", ["clients", "--since", "1h"]),
            ("correlate (all sessions)", ["correlate"]),
            (f"report --client {client}", ["report", "--client", client]),
            (f"report --client {client} --format json",
             ["report", "--client", client, "--format", "json"]),
            ("report --format html (overview)", ["report", "--format", "html"]),
        ]
        print("| command | PostgreSQL s | MiB | SQLite s | MiB |\n|---|---|---|---|---|")
        for label, argv in commands:
            pg_seconds, pg_mib, _ = timed([smtpscope, "--db", pg.url, *argv], env)
            lite_seconds, lite_mib, _ = timed([smtpscope, "--db", db, *argv])
            print(f"| {label} | {pg_seconds:.2f} | {pg_mib} | {lite_seconds:.2f} | {lite_mib} |",
                  flush=True)


if __name__ == "__main__":
    main()
