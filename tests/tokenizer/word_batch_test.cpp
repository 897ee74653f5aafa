// Long word lists go through BPE on several threads: the ids must be those of one pass, in order.
// (The parallel path needs a machine with two or more cores, as CI's has.)
#include "tokenizer/word_batch.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "core/json_file.h"
#include "golden_cases.h"
#include "test_support.h"

namespace tandem::tokenizer {
namespace {

TEST(WordBatch, ParallelRangesGiveTheIdsOfOnePass) {
  const Json file = read_json_file(test::golden_model("stories260K") / "tokenizer.json");
  const BpeModel model = BpeModel::from_json(file.at("model"), "stories260K.model");
  const std::vector<std::string> words = test::random_piece_words(11, 6000, 4);
  std::vector<int> one_pass, parallel, word_by_word;
  tokenize_words(model, words, one_pass, /*max_threads=*/1);
  tokenize_words(model, words, parallel, kMaxEncodeThreads);
  for (const std::string& word : words) model.tokenize(word, word_by_word);
  EXPECT_GT(one_pass.size(), words.size());
  EXPECT_EQ(parallel, one_pass);
  EXPECT_EQ(word_by_word, one_pass);
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one core: no parallel path taken";
}

}  // namespace
}  // namespace tandem::tokenizer
