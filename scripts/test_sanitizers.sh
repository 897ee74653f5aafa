#!/usr/bin/env bash
# The sanitizer runs (CI calls this from scripts/test.sh; it also runs by hand). CPU-only builds
# of the test targets, each in a build directory of its own:
#   build-asan: every CPU test under AddressSanitizer + UndefinedBehaviorSanitizer (any finding
#               aborts the process: the test fails);
#   build-tsan: the concurrency tests — the engine thread, the HTTP server, the KV-transfer
#               channel, the proxy — under ThreadSanitizer (a reported race fails the test).
# Left out: the GPU tests (scripts/test.sh compiles them; scripts/gpu_run.sh runs them). Prints
# each step's wall time. SANITIZERS="asan tsan" (the default) picks the runs (SANITIZERS= none);
# JOBS the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
SANITIZERS="${SANITIZERS-asan tsan}"
ROOT="$PWD"
# ASan + UBSan with clang at -O0: on the 2-core CI that compiles 3.8x faster than GCC at -O1 (an
# nlohmann-json file: GCC -O1 95 s, clang -O1 58 s, clang -O0 25 s) and the tests still take
# minutes. TSan with GCC at -O1 (at -O0 TSan slows the servers' threads past the tests' latency
# bounds). Not clang's TSan: it builds faster, but its runtime (clang 14) stalls for seconds to
# minutes in the proxy tests, whose fake engines start and end thousands of threads (one
# ProxyServer test 353 s, the TSan tests 450 s against GCC's 136 s). -g1: line numbers in the
# reports. Unity builds (CMAKE_UNITY_BUILD: CMake merges a target's sources, 8 to a translation
# unit, so nlohmann-json, httplib, Boost.Asio and gtest are parsed once a batch, not once a file;
# the ASan build's -O1 sources, CMakeLists.txt, stay files of their own, as CMake leaves out of
# the batches a source with COMPILE_OPTIONS of its own).
COMMON=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_CUDA=OFF -DTANDEM_BUILD_TESTS=ON
        -DCMAKE_UNITY_BUILD=ON)
ASAN_CONFIGURE=("${COMMON[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
                "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -g1" -DTANDEM_SANITIZE=ON)
TSAN_CONFIGURE=("${COMMON[@]}" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DTANDEM_TSAN=ON)
command -v clang++ >/dev/null || { echo "test_sanitizers: clang++ not found (scripts/setup.sh installs clang)" >&2; exit 1; }

# build-asan configured with GCC (before) starts over: CMake cannot switch compilers in place.
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi

timed() {
  local label=$1 start=$SECONDS
  shift
  "$@"
  echo "[sanitizers] ${label}: $((SECONDS - start)) s"
}

run_asan() {
  local targets=(tandem test_core test_config test_model test_tokenizer test_chat test_kernels
                 test_transfer test_engine test_kvstore test_fuzz test_cli test_server test_proxy
                 test_bench)
  timed "asan configure" cmake -S . -B build-asan "${ASAN_CONFIGURE[@]}" >/dev/null
  timed "asan build" ninja -C build-asan -j"$JOBS" "${targets[@]}"
  # detect_leaks: a leak is a finding too; abort_on_error gives a core-less, immediate failure.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # The openai npm package scripts/setup.sh installed for the SDK test.
  export TANDEM_OPENAI_NODE_DIR="${TANDEM_OPENAI_NODE_DIR:-$ROOT/build/openai_node}"
  # (The DisaggAbort tests still run alone: RUN_SERIAL in the sanitizer builds, tests/CMakeLists.txt.)
  (cd build-asan && timed "asan tests" ctest --output-on-failure -j"$JOBS" --timeout 900 \
     -E '_NOT_BUILT')
}

run_tsan() {
  local targets=(tandem test_engine test_server test_transfer test_proxy)
  timed "tsan configure" cmake -S . -B build-tsan "${TSAN_CONFIGURE[@]}" >/dev/null
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
