#!/usr/bin/env bash
# Policy server throughput, one run, three servers on TCP loopback:
#   trivial   bench/trivial_policy_server (thread per connection, DUNNO, records nothing)
#   smtpscope smtpscope-policyd (records every request into SQLite)
#   postgrey  Debian's postgrey (greylisting, --delay=0)
# Each is driven by bench/policy_load with 1 and 4 persistent connections
# (Postfix-like: one ~700-byte RCPT request at a time per connection), REPS
# times SECONDS each; the median requests/s is reported with ratios. Checks
# that smtpscope recorded every request it answered (events == requests).
# Usage: bash bench/policy_bench.sh [SECONDS] [REPS]   (root: postgrey drops privileges)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3}"
reps="${2:-3}"
bash scripts/install-deps.sh >/dev/null
command -v postgrey >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgrey >/dev/null
bash scripts/build.sh >/dev/null
build="$(pwd)/${SMTPSCOPE_BUILD_DIR:-build}"
work="$(mktemp -d /tmp/smtpscope-bench-XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

trivial_port=$(free_port); "$build/bench/trivial_policy_server" "$trivial_port" & pids+=($!)
smtpscope_port=$(free_port)
cat > "$work/smtpscope.yaml" <<YAML
database:
  path: $work/smtpscope.db
policy:
  listen: ["inet:127.0.0.1:$smtpscope_port"]
daemon:
  allow_root: true
logging:
  level: warn
YAML
"$build/policyd/smtpscope-policyd" -c "$work/smtpscope.yaml" -f 2>"$work/policyd.log" & smtpscope_pid=$!; pids+=($smtpscope_pid)
postgrey_port=$(free_port); mkdir -p "$work/postgrey"; chown postgrey "$work/postgrey" 2>/dev/null || true
postgrey --inet="127.0.0.1:$postgrey_port" --dbdir="$work/postgrey" --delay=0 \
  --pidfile="$work/postgrey.pid" -d 2>"$work/postgrey.log"
for port in "$trivial_port" "$smtpscope_port" "$postgrey_port"; do wait_port "$port"; done
pids+=("$(cat "$work/postgrey.pid")")

declare -A median
sent_to_smtpscope=0
for connections in 1 4; do
  for server in trivial smtpscope postgrey; do
    port_var="${server}_port"; port="${!port_var}"
    rates=()
    for _ in $(seq "$reps"); do
      line=$("$build/bench/policy_load" --tcp "127.0.0.1:$port" --connections "$connections" --seconds "$seconds")
      rates+=("$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$line")")
      [ "$server" = smtpscope ] && sent_to_smtpscope=$((sent_to_smtpscope + $(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")))
    done
    median[$server,$connections]=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$server connections=$connections rps: ${rates[*]}"
  done
done
kill -TERM "$smtpscope_pid"; wait "$smtpscope_pid" || true
recorded=$(sqlite3 "$work/smtpscope.db" "SELECT count(*) FROM events WHERE source='policy'")
dropped=$(sqlite3 "$work/smtpscope.db" "SELECT coalesce(sum(dropped),0) FROM drops")
bytes=$(stat -c %s "$work/smtpscope.db")

echo
echo "| connections | trivial req/s | smtpscope req/s | postgrey req/s | smtpscope/trivial | smtpscope/postgrey |"
echo "|---|---|---|---|---|---|"
for connections in 1 4; do
  t=${median[trivial,$connections]}; s=${median[smtpscope,$connections]}; p=${median[postgrey,$connections]}
  printf '| %s | %s | %s | %s | %.2f | %.1f |\n' "$connections" "$t" "$s" "$p" \
    "$(echo "$s / $t" | bc -l)" "$(echo "$s / $p" | bc -l)"
done
echo
echo "smtpscope answered $sent_to_smtpscope requests, recorded $recorded, dropped $dropped; database $((bytes / 1024 / 1024)) MiB ($((bytes / (recorded > 0 ? recorded : 1))) bytes per request)"
[ "$recorded" -eq "$sent_to_smtpscope" ] || { echo "NOT every request was recorded"; exit 1; }
