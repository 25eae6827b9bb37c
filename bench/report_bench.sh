#!/usr/bin/env bash
# Report speed on a generated database of SESSIONS sessions (default
# 1,000,000; 100 per client; bench/gen_sessions.py): `smtpscope analyse`
# (the stored analysis, sessions/s), then `clients`, `correlate`, the
# overview and `report` for one client over all sessions, with wall time and
# peak RSS; database bytes per session; and `smtpscope db prune` of the
# older half. Usage: bash bench/report_bench.sh [SESSIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
sessions="${1:-1000000}"
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
build="$(pwd)/${SMTPSCOPE_BUILD_DIR:-build}"
work="$(mktemp -d /tmp/smtpscope-report-bench-XXXXXX)"
trap 'rm -rf "$work"' EXIT
db="$work/smtpscope.db"
start=$(date +%s%N)
python3 bench/gen_sessions.py "$build/cli/smtpscope" "$db" "$sessions"
bytes=$(stat -c %s "$db")
echo "generated $sessions sessions in $(( ($(date +%s%N) - start) / 1000000 )) ms, $(( bytes / 1048576 )) MiB, $(( bytes / sessions )) bytes per session"
run() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>/dev/null
  read -r seconds kib < "$work/time"
  printf '| %s | %s | %s |\n' "$label" "$seconds" "$((kib / 1024))"
}
printf '| command | seconds | peak RSS MiB |\n|---|---|---|\n'
run "analyse (all $sessions sessions)" "$build/cli/smtpscope" --db "$db" analyse
run "clients (all sessions)" "$build/cli/smtpscope" --db "$db" clients
run "clients --since 1h (none that recent)" "$build/cli/smtpscope" --db "$db" clients --since 1h
run "correlate (all sessions)" "$build/cli/smtpscope" --db "$db" correlate
run "report --client 10.0.0.7 (100 sessions)" "$build/cli/smtpscope" --db "$db" report --client 10.0.0.7
run "report --client 10.0.0.7 --format json" "$build/cli/smtpscope" --db "$db" report --client 10.0.0.7 --format json
run "report --format html (overview, top 100)" "$build/cli/smtpscope" --db "$db" report --format html
run "sqlite3: SELECT * FROM client_summary" sqlite3 "$db" "SELECT * FROM client_summary"
run "sqlite3: SELECT * FROM abort_patterns" sqlite3 "$db" "SELECT * FROM abort_patterns"
bytes=$(stat -c %s "$db")
echo "after analysis: $(( bytes / 1048576 )) MiB, $(( bytes / sessions )) bytes per session"
# gen_sessions.py starts one session a second from 1,790,000,000 s.
half_age=$(( $(date +%s) - 1790000000 - sessions / 2 ))
run "db prune --older-than ${half_age}s (the older half)" "$build/cli/smtpscope" --db "$db" db prune --older-than "${half_age}s"
cat "$work/out"
