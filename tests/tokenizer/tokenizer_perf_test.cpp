// Long prompts encode in milliseconds (the merge loop is O(n log n), words are cached), and one
// Tokenizer can be used from many threads at once.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "golden_cases.h"

namespace tandem {
namespace {

// ~40K characters of varied, mostly unique words: Latin, digits, punctuation, accents, CJK.
std::string long_prompt() {
  std::mt19937 rng(7);
  const std::vector<std::string> syllables = {"ka", "lo", "mi", "tra", "ven", "qu", "ist", "or",
                                              "é",  "ü",  "日", "本",  "語",  "ch", "ph",  "ing"};
  const std::vector<std::string> separators = {" ", " ", " ", ", ", ". ", "\n", "  ", " (", ") "};
  std::string text;
  while (text.size() < 40000) {
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) text += syllables[rng() % syllables.size()];
    if (rng() % 7 == 0) text += std::to_string(rng() % 100000);
    text += separators[rng() % separators.size()];
  }
  return text;
}

TEST(TokenizerPerf, LongPromptsEncodeInMilliseconds) {
  const std::string text = long_prompt();
  for (const char* name : {"llama3", "stories260K"}) {
    const Tokenizer& tok = test::golden_tokenizer(name);
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int> ids = tok.encode(text);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %zu tokens from %zu bytes in %.1f ms\n", name, ids.size(), text.size(), ms);
    EXPECT_GE(ids.size(), 7500u);
    EXPECT_LT(ms, 500.0) << name;  // a quadratic merge loop takes seconds here
    EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), text);
  }
}

TEST(TokenizerPerf, ConcurrentEncodeAndDecodeAgree) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  const auto cases = test::golden_cases("llama3");
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (const auto& c : cases) {
          // Each thread also feeds its own words so the shared cache sees concurrent inserts.
          const std::string text = c.text + " thread" + std::to_string(t * 100 + round);
          const std::vector<int> ids = tok.encode(text, false);
          if (tok.decode(ids) != text) ++mismatches[t];
          if (tok.encode(c.text) != c.ids) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0, 0}));
}

}  // namespace
}  // namespace tandem
