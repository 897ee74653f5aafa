#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang -fsanitize=fuzzer,address,undefined in
# build-fuzz/ and runs each for a bounded time (FUZZ_SECONDS, default 25) from the seed corpus in
# tests/fuzz/corpus/<target>/. New inputs a run finds stay in build-fuzz/corpus/; a crash fails
# the script, leaves its input in build-fuzz/crashes/ and must become a regression input
# (tests/fuzz/regressions/<target>/, replayed by test_fuzz in the normal build) with its fix.
# Prints the executions per target (also in build-fuzz/fuzz_summary.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-25}"
BUILD=build-fuzz
CXX_FUZZ="${CXX_FUZZ:-clang++}"
command -v "$CXX_FUZZ" >/dev/null || { echo "test_fuzz: $CXX_FUZZ not found (scripts/setup.sh installs clang)" >&2; exit 1; }

start=$(date +%s)
# A unity build (the parsers' sources merged 8 to a translation unit): the headers are parsed once
# per batch, not per file.
cmake -S tests/fuzz -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_UNITY_BUILD=ON >/dev/null
ninja -C "$BUILD" -j"$(nproc)" >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log" >&2; exit 1; }
built=$(date +%s)

export TANDEM_SHARED="${TANDEM_SHARED:-$(pwd)/../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
summary="$BUILD/fuzz_summary.txt"
printf '%-16s %12s %10s %s\n' target executions exec/s result >"$summary"
failed=0
for target in tokenizer request_parser jinja safetensors config wire_protocol; do
  mkdir -p "$BUILD/corpus/$target" "$BUILD/crashes"
  log="$BUILD/$target.log"
  result=ok
  if ! "$BUILD/${target}_fuzzer" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
      -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -artifact_prefix="$BUILD/crashes/$target-" \
      "$BUILD/corpus/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
    result="FAILED (input in $BUILD/crashes/, log $log)"
    failed=1
    grep -m1 -A30 "ERROR\|runtime error\|fuzz invariant\|deadly signal" "$log" >&2 || tail -30 "$log" >&2
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  printf '%-16s %12s %10s %s\n' "$target" "${execs:-?}" "${rate:-?}" "$result" >>"$summary"
done
cat "$summary"
echo "test_fuzz: build $((built - start)) s, fuzzing $(($(date +%s) - built)) s"
exit "$failed"
