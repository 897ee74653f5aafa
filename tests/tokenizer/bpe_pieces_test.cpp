// Unit tests of the tokenizer pieces on small hand-made inputs: BPE merges (both merge formats,
// rank order, ignore_merges, byte fallback, unk), Split behaviours, decoders, added tokens.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/pre_tokenizer.h"

namespace tandem::tokenizer {
namespace {

using Ids = std::vector<int>;

BpeModel model(const char* json) { return BpeModel::from_json(Json::parse(json), "test.model"); }

Ids tokenize(const BpeModel& m, std::string_view word) {
  Ids ids;
  m.tokenize(word, ids);
  return ids;
}

constexpr const char* kVocab = R"("vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5,
                                            "aa": 6})";

TEST(BpeModel, MergesInRankOrderInBothFormats) {
  const auto strings =
      model(fmt::format(R"({{"type": "BPE", {}, "merges": ["a b", "ab c"]}})", kVocab).c_str());
  EXPECT_EQ(tokenize(strings, "abc"), (Ids{5}));
  EXPECT_EQ(tokenize(strings, "cab"), (Ids{2, 3}));
  const auto pairs = model(
      fmt::format(R"({{"type": "BPE", {}, "merges": [["a", "b"], ["ab", "c"]]}})", kVocab).c_str());
  EXPECT_EQ(tokenize(pairs, "abc"), (Ids{5}));
  // "b c" ranks first, so "abc" becomes a + bc and "ab c" never applies.
  const auto bc_first = model(
      fmt::format(R"({{"type": "BPE", {}, "merges": ["b c", "a b", "ab c"]}})", kVocab).c_str());
  EXPECT_EQ(tokenize(bc_first, "abc"), (Ids{0, 4}));
}

TEST(BpeModel, EqualRanksMergeLeftmostFirst) {
  const auto m = model(fmt::format(R"({{"type": "BPE", {}, "merges": ["a a"]}})", kVocab).c_str());
  EXPECT_EQ(tokenize(m, "aaa"), (Ids{6, 0}));
  EXPECT_EQ(tokenize(m, "aaaa"), (Ids{6, 6}));
  EXPECT_EQ(tokenize(m, "aaa"), (Ids{6, 0}));  // again, from the cache
}

TEST(BpeModel, TheWordCacheStopsAtItsCapacity) {
  const auto m = model(fmt::format(R"({{"type": "BPE", {}, "merges": ["a b", "ab c"]}})", kVocab).c_str());
  // Distinct words, as a server sees them: each is a different run of a/b/c.
  auto word = [](size_t i) {
    std::string w;
    for (size_t k = i + 1; k > 0; k /= 3) w += char('a' + k % 3);
    return w;
  };
  const size_t n = BpeModel::kWordCacheCapacity * 3;
  for (size_t i = 0; i < n; ++i) {
    Ids ids;
    m.tokenize(word(i), ids);
  }
  EXPECT_GT(m.num_cached_words(), BpeModel::kWordCacheCapacity / 2);
  EXPECT_LE(m.num_cached_words(), BpeModel::kWordCacheCapacity);
  EXPECT_EQ(tokenize(m, "abcab"), (Ids{5, 3}));  // still right past the cache's capacity
}

TEST(BpeModel, IgnoreMergesTakesWholeVocabularyWords) {
  // "abc" is in the vocabulary but no merge builds it.
  const auto plain =
      model(fmt::format(R"({{"type": "BPE", {}, "merges": ["a b"]}})", kVocab).c_str());
  EXPECT_EQ(tokenize(plain, "abc"), (Ids{3, 2}));
  const auto ignoring = model(
      fmt::format(R"({{"type": "BPE", {}, "merges": ["a b"], "ignore_merges": true}})", kVocab)
          .c_str());
  EXPECT_EQ(tokenize(ignoring, "abc"), (Ids{5}));
}

TEST(BpeModel, ByteFallbackAndUnknowns) {
  const auto m = model(R"({"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
      "vocab": {"<unk>": 0, "a": 1, "<0xC3>": 2, "<0xA9>": 3}, "merges": []})");
  EXPECT_EQ(tokenize(m, "aé"), (Ids{1, 2, 3}));    // é = C3 A9, both bytes have tokens
  EXPECT_EQ(tokenize(m, "a日a"), (Ids{1, 0, 1}));  // 日's bytes have no tokens: unk
  const auto fused = model(R"({"type": "BPE", "unk_token": "<unk>", "fuse_unk": true,
      "vocab": {"<unk>": 0, "a": 1}, "merges": []})");
  EXPECT_EQ(tokenize(fused, "xyaz"), (Ids{0, 1, 0}));
  const auto unfused = model(R"({"type": "BPE", "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "a": 1}, "merges": []})");
  EXPECT_EQ(tokenize(unfused, "xyaz"), (Ids{0, 0, 1, 0}));
  const auto no_unk = model(R"({"type": "BPE", "vocab": {"a": 1}, "merges": []})");
  EXPECT_EQ(tokenize(no_unk, "xay"), (Ids{1}));  // unknown characters are dropped
}

TEST(BpeModel, LongWordsMergeFully) {
  const auto m = model(fmt::format(R"({{"type": "BPE", {}, "merges": ["a a"]}})", kVocab).c_str());
  EXPECT_EQ(tokenize(m, std::string(10001, 'a')), [] {
    Ids ids(5000, 6);
    ids.push_back(0);
    return ids;
  }());
}

// The examples of tokenizers' SplitDelimiterBehavior documentation.
TEST(Split, AllBehaviours) {
  const Pattern dash = Pattern::literal("-");
  const std::string text = "the-final--countdown";
  using W = std::vector<std::string>;
  EXPECT_EQ(split_by_pattern(text, dash, SplitBehavior::kRemoved, false),
            (W{"the", "final", "countdown"}));
  EXPECT_EQ(split_by_pattern(text, dash, SplitBehavior::kIsolated, false),
            (W{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_by_pattern(text, dash, SplitBehavior::kMergedWithPrevious, false),
            (W{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_by_pattern(text, dash, SplitBehavior::kMergedWithNext, false),
            (W{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_by_pattern(text, dash, SplitBehavior::kContiguous, false),
            (W{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split_by_pattern(text, dash, SplitBehavior::kRemoved, /*invert=*/true),
            (W{"-", "-", "-"}));
}

TEST(PreTokenizer, ByteLevelWithGpt2Regex) {
  const auto p = PreTokenizer::from_json(
      Json::parse(R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})"), "t");
  EXPECT_EQ(p.split("Hello my friend, ok?\n"),
            (std::vector<std::string>{"\xC4\xA0Hello", "\xC4\xA0my",
                                      "\xC4\xA0"
                                      "friend",
                                      ",", "\xC4\xA0ok", "?", "\xC4\x8A"}));
}

TEST(Decoder, ByteFallbackRuns) {
  const auto d = Decoder::from_json(Json::parse(R"({"type": "ByteFallback"})"), "t");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(d.decode({"<0x61>"}), "a");
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>"}), fffd + fffd);  // one U+FFFD per byte
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>", "<0xab>", "a"}), "叫a");
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>", "a"}), fffd + fffd + "a");
}

TEST(Decoder, SentencePieceChain) {
  const auto d = Decoder::from_json(Json::parse(R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})"),
                                    "t");
  EXPECT_EQ(d.decode({"▁Hello", "▁world", "<0x21>"}), "Hello world!");
  EXPECT_EQ(d.decode({"▁", "▁", "x"}), " x");  // Strip removes one leading space after Fuse
  EXPECT_TRUE(d.has_byte_fallback());
}

TEST(Decoder, ByteLevelKeepsUnmappedTokensRaw) {
  const auto d = Decoder::from_json(Json::parse(R"({"type": "ByteLevel"})"), "t");
  EXPECT_EQ(d.decode({"Hello", "\xC4\xA0world", "\xC4\x8A"}), "Hello world\n");
  EXPECT_EQ(d.decode({"日本"}), "日本");  // characters outside the alphabet: raw UTF-8
  EXPECT_FALSE(d.has_byte_fallback());
}

// tokenizers' own added-vocabulary example, without a lowercasing normalizer.
TEST(AddedVocabulary, StripAndSingleWordOptions) {
  const auto v = AddedVocabulary::from_json(Json::parse(R"([
      {"id": 0, "content": "my", "lstrip": true, "rstrip": true, "normalized": false},
      {"id": 1, "content": "name", "normalized": false},
      {"id": 2, "content": "ony", "single_word": true, "normalized": false},
      {"id": 3, "content": "[CLS]", "special": true},
      {"id": 4, "content": "[SEP]", "special": true}])"),
                                            Normalizer(), "t");
  std::vector<std::pair<std::string, int>> got;
  for (const Segment& s : v.split_raw("[CLS] my name is anthony [SEP]"))
    got.emplace_back(std::string(s.text), s.id);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{
                     {"[CLS]", 3}, {" my ", 0}, {"name", 1}, {" is anthony ", -1}, {"[SEP]", 4}}));
  ASSERT_NE(v.find(3), nullptr);
  EXPECT_TRUE(v.find(3)->special);
  EXPECT_EQ(v.find("name"), 1);
}

TEST(AddedVocabulary, LeftmostLongestMatch) {
  const auto v = AddedVocabulary::from_json(Json::parse(R"([
      {"id": 7, "content": "<a>", "special": true},
      {"id": 8, "content": "<a><b>", "special": true},
      {"id": 9, "content": "a><b", "special": true}])"),
                                            Normalizer(), "t");
  std::vector<int> ids;
  for (const Segment& s : v.split_raw("x<a><b><a>y")) ids.push_back(s.id);
  EXPECT_EQ(ids, (std::vector<int>{-1, 8, 7, -1}));
}

}  // namespace
}  // namespace tandem::tokenizer
