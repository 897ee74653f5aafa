// Short words are merged by a scan for the leftmost lowest-rank pair instead of the heap loop
// (tokenizers' Word::merge_all): both must give the same ids, for words of random vocabulary text
// (llama3: byte-level, ignore_merges off here so every word is merged) and of SentencePiece-style
// pieces with byte fallback (stories260K), on words short and long (over 64 symbols: the heap).
#include <gtest/gtest.h>

#include <random>

#include "core/json_file.h"
#include "golden_cases.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/pre_tokenizer.h"

namespace tandem::tokenizer {
namespace {

struct ModelPair {
  BpeModel scan, heap;
};

ModelPair models(const std::string& dir, bool ignore_merges) {
  Json file = read_json_file(test::golden_model(dir) / "tokenizer.json");
  file["model"]["ignore_merges"] = ignore_merges;
  ModelPair m{BpeModel::from_json(file["model"], dir), BpeModel::from_json(file["model"], dir)};
  m.heap.use_heap_merges_only();
  return m;
}

void expect_same_ids(const ModelPair& m, const std::vector<std::string>& words) {
  ASSERT_TRUE(m.scan.scans_short_words());
  size_t long_words = 0;
  for (const std::string& word : words) {
    std::vector<int> scan, heap;
    m.scan.tokenize(word, scan);
    m.heap.tokenize(word, heap);
    ASSERT_EQ(scan, heap) << word;
    long_words += word.size() > 64;
  }
  EXPECT_GT(long_words, 0u);
}

TEST(MergeLoop, ScanGivesTheHeapsIdsOnRandomLlama3Words) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  const Json file = read_json_file(test::golden_model("llama3-tokenizer") / "tokenizer.json");
  const PreTokenizer pre = PreTokenizer::from_json(file["pre_tokenizer"], "pre_tokenizer");
  std::mt19937 rng(17);
  std::vector<int> ids(20000);
  for (int& id : ids) id = int(rng() % 128000);
  std::vector<std::string> words = pre.split(tok.decode(ids, /*skip_special_tokens=*/true));
  for (int n : {70, 200, 1000}) words.push_back(std::string(size_t(n), 'a') + "bcde");  // the heap
  expect_same_ids(models("llama3-tokenizer", /*ignore_merges=*/false), words);
}

TEST(MergeLoop, ScanGivesTheHeapsIdsOnStories260KWords) {
  const std::vector<std::string> words = test::random_piece_words(19, 5000, 6, 50, 40);
  expect_same_ids(models("stories260K", /*ignore_merges=*/false), words);
}

}  // namespace
}  // namespace tandem::tokenizer
