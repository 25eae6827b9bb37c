#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UBSan, in
# ./build-fuzz) and runs each for SMTPSCOPE_FUZZ_SECONDS (default 10) on a
# copy of its seed corpus. Prints the executions per target. A crash stops
# with exit 1 and leaves the input in build-fuzz/crashes/TARGET/; copy it to
# tests/fuzz/regressions/TARGET/ and fix the bug: the replay ctest keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SMTPSCOPE_FUZZ_SECONDS:-10}"
build_dir=build-fuzz
targets=(fuzz_policy_request fuzz_log_line fuzz_helo fuzz_yaml_loaders fuzz_html_report)

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMTPSCOPE_BENCH=OFF \
  -DSMTPSCOPE_FUZZ=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  >/dev/null
cmake --build "$build_dir" -j2 --target "${targets[@]}"

status=0
for target in "${targets[@]}"; do
  corpus="$build_dir/corpus/$target"
  crashes="$build_dir/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  cp -n tests/fuzz/corpus/"$target"/* "$corpus"/
  log="$build_dir/$target.log"
  if "$build_dir/tests/fuzz/$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | cut -d' ' -f2)
    printf '%-22s %12s executions in %ss, corpus %s inputs, no crash\n' \
      "$target" "$runs" "$seconds" "$(ls "$corpus" | wc -l)"
  else
    echo "$target: CRASH, input kept in $crashes/" >&2
    grep -E 'ERROR|invariant|SUMMARY' "$log" | head -5 >&2
    status=1
  fi
done
exit "$status"
