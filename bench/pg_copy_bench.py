#!/usr/bin/env python3
"""Rows/s of `smtpscope db copy` (issue 16): a generated SQLite database
(bench/gen_sessions.py, SESSIONS sessions, fixed seed) copied into a private
PostgreSQL 15 (tests/integration/pg_server.py, fsync on as a real server
runs), ROUNDS times, each into a fresh database; prints each run's rows,
seconds and rows/s as `db copy` reports them, and the median.
Usage: python3 bench/pg_copy_bench.py [--sessions N] [--rounds R] [--db FILE]
(run as root; SMTPSCOPE_BUILD_DIR names the build, default ./build; --db
reuses a generated file, else one is generated in a temporary directory).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import pg_server  # noqa: E402

REPORT = re.compile(r"copied (\d+) rows .* in ([\d.]+) s \((\d+) rows/s\)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--db", help="a database gen_sessions.py made (kept)")
    args = parser.parse_args()
    why_not = pg_server.available()
    if why_not:
        sys.exit(f"pg_copy_bench: {why_not}")
    build = os.environ.get("SMTPSCOPE_BUILD_DIR", os.path.join(ROOT, "build"))
    binary = os.path.join(build, "cli", "smtpscope")
    tmp = tempfile.mkdtemp(prefix="smtpscope-copy-bench-")
    try:
        path = args.db or os.path.join(tmp, "sessions.db")
        if not os.path.exists(path):
            started = time.monotonic()
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_sessions.py"),
                            binary, path, str(args.sessions)], check=True)
            print(f"generated {args.sessions} sessions in {time.monotonic() - started:.0f} s "
                  f"({os.path.getsize(path) / 1e6:.0f} MB)")
        rates = []
        for _ in range(args.rounds):
            with pg_server.PgServer(fsync=True) as pg:
                env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
                env.pop("PGPASSWORD", None)
                done = subprocess.run([binary, "--db", path, "db", "copy", "-q", "--to", pg.url],
                                      capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    sys.exit(f"db copy failed: {done.stderr.strip()}")
                print(done.stdout.strip())
                found = REPORT.search(done.stdout)
                rates.append(int(found.group(3)))
        print(f"median {statistics.median(rates):.0f} rows/s over {len(rates)} run(s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
