// Helpers shared by every test binary: where ../shared lives, reading files, running the CLI.
#pragma once
#include <filesystem>
#include <string>

namespace tandem::test {

// Latency bounds in tests (an abort freed "within 1 s") hold for the normal build; the sanitizer
// builds run the same code several times slower, so there the bounds stretch by this factor and
// the tests check the behaviour, not the speed.
// TANDEM_SANITIZED: built with ASan or TSan (GCC's macros; clang's __has_feature).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TANDEM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TANDEM_SANITIZED 1
#endif
#endif
#ifdef TANDEM_SANITIZED
inline constexpr int kLatencyScale = 5;
#else
inline constexpr int kLatencyScale = 1;
#endif

// The loopback address the tests' servers, engines and transports listen on.
inline constexpr const char* kLoopbackHost = "127.0.0.1";

// The shared reference folder: $TANDEM_SHARED if set, else <repo>/../shared.
std::filesystem::path shared_dir();
// shared_dir()/golden/models/<name>
std::filesystem::path golden_model(const std::string& name);
std::string read_text_file(const std::filesystem::path& path);
// A loopback TCP port nothing listens on: bound (not listening) to learn a free number, then
// closed. Throws std::runtime_error if no socket can be bound.
int closed_port();
// A fresh empty directory under the system temp dir, removed by the caller if wanted.
std::filesystem::path make_temp_dir(const std::string& prefix);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the built `tandem` binary with the given shell-quoted arguments.
CommandResult run_tandem(const std::string& args);

}  // namespace tandem::test
