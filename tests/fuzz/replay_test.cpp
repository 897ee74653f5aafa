// Replays every kept fuzz input — the seed corpus (corpus/<target>/) and the inputs that once
// crashed a target (regressions/<target>/) — through the fuzz targets' entry points in the
// normal build, so a fixed crash stays fixed without clang or libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz_targets.h"

namespace tandem::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, EveryKeptInputRunsCleanly) {
  const Target& target = GetParam();
  const fs::path root = fs::path(TANDEM_SOURCE_DIR) / "tests/fuzz";
  size_t seeds = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    fs::path dir = root / kind / target.name;
    if (!fs::is_directory(dir)) continue;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      SCOPED_TRACE(entry.path().string());
      std::vector<uint8_t> bytes = read_bytes(entry.path());
      EXPECT_NO_THROW(target.run(bytes));
      if (std::string(kind) == "corpus") ++seeds;
    }
  }
  EXPECT_GE(seeds, 3u) << "the seed corpus of " << target.name << " is missing";
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(all_targets()),
                         [](const ::testing::TestParamInfo<Target>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace tandem::fuzz
