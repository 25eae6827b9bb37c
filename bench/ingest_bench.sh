#!/usr/bin/env bash
# Log ingest speed, one run, on a generated 1,000,000-line mail.log (fixed
# seed, realistic mix; bench/gen_maillog.py):
#   grep -c 'disconnect from'       the I/O floor
#   pflogsumm                       Debian's Postfix log summarizer, for reference
#   parse_bench                     smtpscope's parser alone (and with events built)
#   smtpscope ingest                the whole ingest into a fresh SQLite database
#                                   (and its bytes per session after VACUUM), with
#                                   its sessions' analysis, and without it
#                                   (analysis.interval_ms: 0)
#   ingest_write_floor              the least the ingest could write (one session row
#                                   and one folded event row per session, one row per
#                                   smtp client line), without parsing or joining
#   smtpscope ingest, per format    the same log as year-first, RFC 3339 and
#                                   journalctl short-precise text, from standard
#                                   input, and from a journal file written by
#                                   systemd-journal-remote (--journal-file DIR)
# Each timed REPS times; the median wall time gives lines/s; peak RSS from
# /usr/bin/time. Usage: bash bench/ingest_bench.sh [LINES] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
lines="${1:-1000000}"
reps="${2:-3}"
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
build="$(pwd)/${SMTPSCOPE_BUILD_DIR:-build}"
work="$(mktemp -d /tmp/smtpscope-ingest-bench-XXXXXX)"
trap 'rm -rf "$work"' EXIT
log="$work/mail.log"
python3 bench/gen_maillog.py "$lines" "$log" 42
total=$(wc -l < "$log")

# median wall seconds and max RSS (KiB) of a command run $reps times
measure() {
  local times=() rss=0
  for i in $(seq "$reps"); do
    rm -f "$work"/bench.db*
    local start end
    start=$(date +%s%N)
    # Output to a file: GNU grep behaves like -q (stops early) when it is /dev/null.
    /usr/bin/time -f "%M" -o "$work/time" "$@" >"$work/out" 2>&1
    end=$(date +%s%N)
    read -r kib < "$work/time"
    times+=("$(echo "scale=4; ($end - $start) / 1000000000" | bc)")
    (( kib > rss )) && rss=$kib
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" "$rss"
}

printf '| what | seconds | lines/s | peak RSS MiB |\n|---|---|---|---|\n'
declare -A rate
row() {
  local name=$1; shift
  read -r seconds kib < <(measure "$@")
  rate[$name]=$(echo "$total / $seconds" | bc)
  printf '| %s | %s | %s | %s |\n' "$name" "$seconds" "${rate[$name]}" "$((kib / 1024))"
}
row "grep -c" grep -c 'disconnect from' "$log"
row "pflogsumm" pflogsumm "$log"
row "parser alone" "$build/bench/parse_bench" "$log"
row "parser + events" "$build/bench/parse_bench" "$log" --events
row "smtpscope ingest" "$build/cli/smtpscope" --db "$work/bench.db" ingest --quiet "$log"
printf 'analysis:\n  interval_ms: 0\n' > "$work/no-analysis.yaml"
row "ingest, no analysis" "$build/cli/smtpscope" --config "$work/no-analysis.yaml" \
  --db "$work/bench.db" ingest --quiet "$log"
sessions=$(grep -c 'postfix[^ ]*/smtpd\[[0-9]*\]: connect from' "$log")
remote=$(grep -c 'postfix[^ ]*/smtp\[' "$log")
row "write floor" "$build/bench/ingest_write_floor" "$work/floor.db" "$sessions" "$remote" "$total"
echo
printf 'lines: %s\n' "$total"
printf 'smtpscope ingest / pflogsumm: %.2f (target >= 10)\n' "$(echo "${rate[smtpscope ingest]} / ${rate[pflogsumm]}" | bc -l)"
printf 'write floor / pflogsumm: %.2f (no ingest into SQLite can beat this)\n' "$(echo "${rate[write floor]} / ${rate[pflogsumm]}" | bc -l)"
printf 'parser alone / grep -c: %.2f (target >= 0.33)\n' "$(echo "${rate[parser alone]} / ${rate[grep -c]}" | bc -l)"
printf 'parser + events / grep -c: %.2f\n' "$(echo "${rate[parser + events]} / ${rate[grep -c]}" | bc -l)"
"$build/cli/smtpscope" --db "$work/bench.db" ingest --quiet "$log" >/dev/null
printf 'database: %s MiB for %s lines\n' "$(( $(stat -c %s "$work/bench.db") / 1048576 ))" "$total"
# Bytes per session (log alone): the database after VACUUM over its sessions.
sqlite3 "$work/bench.db" "VACUUM INTO '$work/vacuumed.db'"
printf 'bytes per session after VACUUM: %s (%s sessions)\n' \
  "$(( $(stat -c %s "$work/vacuumed.db") / $(sqlite3 "$work/bench.db" 'SELECT count(*) FROM sessions') ))" \
  "$(sqlite3 "$work/bench.db" 'SELECT count(*) FROM sessions')"
rm -f "$work/vacuumed.db"

# The same lines in each accepted form (converted before timing).
echo
python3 bench/maillog_formats.py "$log" 2026 "$work"
# A journal file rotates at its size limit: the directory holds them all.
mkdir "$work/journal"
/usr/lib/systemd/systemd-journal-remote -o "$work/journal/remote.journal" "$work/journal.export" 2>/dev/null
rm -f "$work/journal.export"
printf '| format | seconds | lines/s | peak RSS MiB |\n|---|---|---|---|\n'
ingest_row() {
  local name=$1; shift
  row "$name" "$build/cli/smtpscope" --db "$work/bench.db" ingest --quiet "$@"
}
ingest_row "BSD syslog" --year 2026 "$log"
ingest_row "year first" "$work/year_first.log"
ingest_row "RFC 3339" "$work/rfc3339.log"
ingest_row "short-precise" --year 2026 "$work/short_precise.log"
row "standard input" sh -c '"$1" --db "$2" ingest --quiet --year 2026 - < "$3"' _ \
  "$build/cli/smtpscope" "$work/bench.db" "$log"
ingest_row "journal file" --journal --journal-file "$work/journal"
row "parser alone, BSD syslog" "$build/bench/parse_bench" "$log"
row "parser alone, year first" "$build/bench/parse_bench" "$work/year_first.log"
row "parser alone, RFC 3339" "$build/bench/parse_bench" "$work/rfc3339.log"
row "parser alone, short-precise" "$build/bench/parse_bench" "$work/short_precise.log"
echo
for name in "BSD syslog" "year first" "RFC 3339" "short-precise" "standard input" "journal file" \
            "parser alone, BSD syslog" "parser alone, year first" "parser alone, RFC 3339" \
            "parser alone, short-precise"; do
  printf '%s: %.2f x pflogsumm, %.3f x grep -c\n' "$name" \
    "$(echo "${rate[$name]} / ${rate[pflogsumm]}" | bc -l)" \
    "$(echo "${rate[$name]} / ${rate[grep -c]}" | bc -l)"
done
