// The word cache gives back what was put, for as many words as fit, then stops taking new words
// (and its full shards are read without a lock); threads filling it at once agree with one pass.
#include "tokenizer/word_cache.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tokenizer/token_table.h"

namespace tandem::tokenizer {
namespace {

std::vector<int> ids_of(size_t i) { return {int(i), int(i % 7), int(i / 3)}; }
std::string word_of(size_t i) { return fmt::format("w{}", i * 7919); }

TEST(WordCache, GivesBackWhatWasPutUntilFull) {
  WordCache cache;
  const size_t n = WordCache::kCapacity * 2;
  for (size_t i = 0; i < n; ++i) {
    const std::string w = word_of(i);
    cache.put(w, TokenTable::hash(w), ids_of(i));
    cache.put(w, TokenTable::hash(w), std::vector<int>{-1});  // a second put changes nothing
  }
  EXPECT_GT(cache.size(), WordCache::kCapacity * 9 / 10);  // shards fill unevenly
  EXPECT_LE(cache.size(), WordCache::kCapacity);
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string w = word_of(i);
    std::vector<int> got = {42};
    if (!cache.get(w, TokenTable::hash(w), got)) {
      EXPECT_EQ(got, std::vector<int>{42});
      continue;
    }
    ++hits;
    std::vector<int> want = {42};
    for (int id : ids_of(i)) want.push_back(id);
    EXPECT_EQ(got, want) << w;
  }
  EXPECT_EQ(hits, cache.size());
  std::vector<int> none;
  EXPECT_FALSE(cache.get("", TokenTable::hash(""), none));
  EXPECT_FALSE(cache.get(std::string(300, 'x'), TokenTable::hash(std::string(300, 'x')), none));
}

TEST(WordCache, ConcurrentFillersAndReadersAgree) {
  WordCache cache;
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < WordCache::kCapacity * 2; ++i) {
        const size_t k = (i * 4 + size_t(t)) % (WordCache::kCapacity * 2);
        const std::string w = word_of(k);
        std::vector<int> got;
        if (cache.get(w, TokenTable::hash(w), got)) {
          wrong[size_t(t)] += got != ids_of(k);
        } else {
          cache.put(w, TokenTable::hash(w), ids_of(k));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong, (std::vector<int>{0, 0, 0, 0}));
  EXPECT_LE(cache.size(), WordCache::kCapacity);
}

}  // namespace
}  // namespace tandem::tokenizer
