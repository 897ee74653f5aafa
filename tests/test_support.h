// Helpers shared by every test binary: where ../shared lives, reading files, running the CLI.
#pragma once
#include <filesystem>
#include <string>

namespace tandem::test {

// The shared reference folder: $TANDEM_SHARED if set, else <repo>/../shared.
std::filesystem::path shared_dir();
// shared_dir()/golden/models/<name>
std::filesystem::path golden_model(const std::string& name);
std::string read_text_file(const std::filesystem::path& path);
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
