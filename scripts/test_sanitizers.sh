#!/usr/bin/env bash
# The sanitizer runs (CI calls this from scripts/test.sh; it also runs by hand). CPU-only builds
# of the test targets, each in a build directory of its own:
#   build-asan: every CPU test under AddressSanitizer + UndefinedBehaviorSanitizer (any finding
#               aborts the process: the test fails);
#   build-tsan: the concurrency tests — the engine thread, the HTTP server, the KV-transfer
#               channel, the proxy — under ThreadSanitizer (a reported race fails the test).
# Left out of both: the benchmark client's timing tests (1 ms tolerances, which instrumentation
# slows past), the npm SDK test, the seed benchmark smoke run and the GPU tests. Prints each
# step's wall time. SANITIZERS="asan tsan" (the default) picks the runs (SANITIZERS= none);
# JOBS the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
SANITIZERS="${SANITIZERS-asan tsan}"
ROOT="$PWD"
# -O1: instrumented code stays fast enough; -g1: line numbers in the reports.
CONFIGURE=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1"
           -DTANDEM_CUDA=OFF -DTANDEM_BUILD_TESTS=ON)
# UCX's memory hooks (which patch malloc/mmap) fight the sanitizers' own interceptors.
export UCX_MEM_EVENTS=no UCX_MEM_MALLOC_HOOKS=no

timed() {
  local label=$1 start=$SECONDS
  shift
  "$@"
  echo "[sanitizers] ${label}: $((SECONDS - start)) s"
}

run_asan() {
  local targets=(tandem test_core test_config test_model test_tokenizer test_chat test_kernels
                 test_transfer test_engine test_kvstore test_fuzz test_cli test_server test_proxy)
  timed "asan configure" cmake -S . -B build-asan "${CONFIGURE[@]}" -DTANDEM_SANITIZE=ON >/dev/null
  timed "asan build" ninja -C build-asan -j"$JOBS" "${targets[@]}"
  # detect_leaks: a leak is a finding too; abort_on_error gives a core-less, immediate failure.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  (cd build-asan && timed "asan tests" ctest --output-on-failure -j"$JOBS" --timeout 900 \
     -E '_NOT_BUILT|seed_benchmark_smoke|OpenAiNodeClient')
}

run_tsan() {
  local targets=(tandem test_engine test_server test_transfer test_proxy)
  timed "tsan configure" cmake -S . -B build-tsan "${CONFIGURE[@]}" -DTANDEM_TSAN=ON >/dev/null
  timed "tsan build" ninja -C build-tsan -j"$JOBS" "${targets[@]}"
  export TSAN_OPTIONS="suppressions=$ROOT/scripts/tsan.supp:second_deadlock_stack=1:history_size=4"
  # The tests with threads that share state: the engine loop, the server's handlers and
  # streams (in process), the UCX channel's sender/receiver threads, the proxy's I/O threads,
  # notification listener and health probes (against fake engines, in process).
  local suites='LlmEngine|ServerE2eTest|HttpServer|KvConnector[A-Za-z]*|UcxTransport|DisaggServe'
  suites+='|ReceiverRegistry|ProxyServer|ClientAbort|NotificationHub|NotificationListener|BackendPool'
  # One test at a time: TSan slows the proxy's and engines' threads 5-15x, and two such tests
  # sharing 2 cores missed the (already stretched) latency bounds.
  (cd build-tsan && timed "tsan tests" ctest --output-on-failure -j1 --timeout 900 \
     -E '_NOT_BUILT' -R "^([A-Za-z]+/)?(${suites})\\.")
}

for s in $SANITIZERS; do
  case "$s" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "test_sanitizers.sh: unknown sanitizer '$s' (asan, tsan)" >&2; exit 2 ;;
  esac
done
