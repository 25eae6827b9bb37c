#!/usr/bin/env bash
# What the stored analysis costs `smtpscope ingest`, against the least it
# could cost on one SQLite file. On a generated log (bench/gen_maillog.py,
# fixed seed), rounds alternated, median wall seconds:
#   ingest, no analysis       the reading alone (analysis.interval_ms: 0)
#   ingest                    the reading with its analysis beside it
#   analysis rows             the rows the analysis writes (session_analysis,
#                             client_timing and what their triggers keep),
#                             inserted by the sqlite3 shell from a copy, in
#                             transactions of 2,500 sessions: SQLite's own
#                             cost of them, without reading or concluding
#   OLD_BINARY ingest         another build's ingest (e.g. one from before the
#                             stored analysis), when given
# SQLite has one writer per file: the rows the analysis writes cannot be
# written while the reading writes its own, and the reading spends most of
# its time inside its write transactions (~80%, perf, bench/README.md), so
# an ingest that stores its analysis, however the analysis is computed and
# on however many cores, needs about "ingest, no analysis" + "analysis
# rows" (at least the reading's write share + the rows, at most the sum).
# Usage: bash bench/analysis_floor.sh [LINES] [ROUNDS] [OLD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
lines="${1:-300000}"
rounds="${2:-5}"
old="${3:-}"
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
smtpscope="$(pwd)/${SMTPSCOPE_BUILD_DIR:-build}/cli/smtpscope"
work="$(mktemp -d /tmp/smtpscope-analysis-floor-XXXXXX)"
trap 'rm -rf "$work"' EXIT
log="$work/mail.log"
python3 bench/gen_maillog.py "$lines" "$log" 42 >/dev/null
printf 'analysis:\n  interval_ms: 0\n' > "$work/off.yaml"

# The analysed database once, and a script that writes its analysis rows again.
"$smtpscope" --db "$work/analysed.db" ingest --quiet "$log" >/dev/null
sessions=$(sqlite3 "$work/analysed.db" "SELECT count(*) FROM session_analysis")
sqlite3 "$work/analysed.db" "CREATE TABLE sa AS SELECT * FROM session_analysis
  ORDER BY connect_us, session_id; CREATE TABLE ct AS SELECT * FROM client_timing;
  DELETE FROM session_analysis; DELETE FROM client_timing; DELETE FROM fingerprints;
  PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
clients=$(sqlite3 "$work/analysed.db" "SELECT count(*) FROM ct")
{
  echo "PRAGMA synchronous = NORMAL;"
  echo "PRAGMA cache_size = -32768;"
  for ((lo = 0; lo < sessions; lo += 2500)); do
    echo "BEGIN;"
    echo "INSERT INTO session_analysis SELECT * FROM sa WHERE rowid > $lo AND rowid <= $((lo + 2500));"
    echo "INSERT INTO client_timing SELECT * FROM ct WHERE rowid > $((lo * clients / sessions))" \
         "AND rowid <= $(((lo + 2500) * clients / sessions));"
    echo "COMMIT;"
  done
} > "$work/rows.sql"

declare -A times
run() {  # name, command...
  local name=$1; shift
  rm -f "$work"/r.db*
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  times[$name]+="$(echo "scale=3; ($end - $start) / 1000000000" | bc) "
}
names=("ingest, no analysis" "ingest" "analysis rows")
[[ -n "$old" ]] && names+=("OLD_BINARY ingest")
for ((r = 0; r < rounds; r++)); do
  run "ingest, no analysis" "$smtpscope" --config "$work/off.yaml" --db "$work/r.db" ingest --quiet "$log"
  run "ingest" "$smtpscope" --db "$work/r.db" ingest --quiet "$log"
  cp "$work/analysed.db" "$work/rows.db"
  run "analysis rows" sqlite3 "$work/rows.db" ".read $work/rows.sql"
  rm -f "$work"/rows.db*
  [[ -n "$old" ]] && run "OLD_BINARY ingest" "$old" --db "$work/r.db" ingest --quiet "$log"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%s lines, %s sessions, %s rounds\n\n| what | median s | all |\n|---|---|---|\n' \
  "$(wc -l < "$log")" "$sessions" "$rounds"
declare -A med
for name in "${names[@]}"; do
  med[$name]=$(echo "${times[$name]}" | median)
  printf '| %s | %s | %s|\n' "$name" "${med[$name]}" "${times[$name]}"
done
floor=$(echo "${med[ingest, no analysis]} + ${med[analysis rows]}" | bc)
printf '\nan ingest that stores its analysis, serial floor (no analysis + rows): %s s\n' "$floor"
printf 'ingest / floor: %.2f\n' "$(echo "${med[ingest]} / $floor" | bc -l)"
if [[ -n "$old" ]]; then
  base=${med[OLD_BINARY ingest]}
  printf 'ingest / OLD_BINARY: %.2f; no analysis / OLD_BINARY: %.2f; floor / OLD_BINARY: %.2f\n' \
    "$(echo "${med[ingest]} / $base" | bc -l)" \
    "$(echo "${med[ingest, no analysis]} / $base" | bc -l)" "$(echo "$floor / $base" | bc -l)"
fi
