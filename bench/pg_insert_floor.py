#!/usr/bin/env python3
"""Events/s into PostgreSQL from one connection (issue 16), the floor for
the >= 100,000 events/s target: starts a private PostgreSQL 15
(tests/integration/pg_server.py, fsync on, as the real server would run) and
runs bench/pg_insert_floor.cpp's multi-row INSERT and COPY, interleaved,
ROUNDS times each; prints each run and the median rows/s per method.
Usage: python3 bench/pg_insert_floor.py [--rows N] [--batch B] [--rounds R]
(run as root; SMTPSCOPE_BUILD_DIR names the build, default ./build).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import pg_server  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-fsync", action="store_true", help="a test server's settings")
    args = parser.parse_args()
    why_not = pg_server.available()
    if why_not:
        sys.exit(f"pg_insert_floor: {why_not}")
    build = os.environ.get("SMTPSCOPE_BUILD_DIR", os.path.join(ROOT, "build"))
    tool = os.path.join(build, "bench", "pg_insert_floor")
    rates = {"insert": [], "copy": []}
    with pg_server.PgServer(fsync=not args.no_fsync) as pg:
        env = dict(os.environ, SMTPSCOPE_DB_PASSWORD=pg.password)
        for _ in range(args.rounds):
            for method in rates:
                done = subprocess.run([tool, pg.url, method, str(args.rows), str(args.batch)],
                                      env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(done.stderr.strip())
                print(done.stdout.strip(), flush=True)
                rates[method].append(float(re.search(r"rows_per_second=(\d+)",
                                                     done.stdout).group(1)))
    for method, values in rates.items():
        print(f"median {method}: {statistics.median(values):,.0f} rows/s "
              f"(runs: {', '.join(f'{v:,.0f}' for v in values)})")


if __name__ == "__main__":
    main()
