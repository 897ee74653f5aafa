// IncrementalDetokenizer: pushing ids one at a time reproduces decode() exactly, and every piece
// is valid UTF-8 — on the golden cases, on split multi-byte characters, on byte-fallback runs
// that later turn invalid, with prompt context, and on random id sequences.
#include "tokenizer/incremental_detokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "golden_cases.h"
#include "tokenizer/unicode.h"

namespace tandem {
namespace {

struct Streamed {
  std::vector<std::string> pieces;  // one per push, then the flush
  std::string text;                 // their concatenation
};

Streamed stream(const Tokenizer& tok, const std::vector<int>& ids, bool skip_special,
                std::span<const int> context = {}) {
  IncrementalDetokenizer detok(tok, skip_special, context);
  Streamed s;
  for (int id : ids) s.pieces.push_back(detok.push(id));
  s.pieces.push_back(detok.flush());
  for (const auto& p : s.pieces) s.text += p;
  return s;
}

void expect_valid_pieces(const Streamed& s, const std::string& label) {
  for (size_t i = 0; i < s.pieces.size(); ++i)
    EXPECT_TRUE(unicode::is_valid_utf8(s.pieces[i])) << label << " piece " << i;
}

class GoldenStreaming : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenStreaming, PushingIdsOneByOneReproducesDecode) {
  const Tokenizer& tok = test::golden_tokenizer(GetParam());
  for (const auto& c : test::golden_cases(GetParam())) {
    const Streamed all = stream(tok, c.ids, /*skip_special=*/false);
    EXPECT_EQ(all.text, c.decoded) << "text: " << c.text;
    expect_valid_pieces(all, c.text);
    const Streamed skipped = stream(tok, c.ids, /*skip_special=*/true);
    EXPECT_EQ(skipped.text, c.decoded_skip_special) << "text: " << c.text;
    expect_valid_pieces(skipped, c.text);
  }
}

INSTANTIATE_TEST_SUITE_P(Files, GoldenStreaming, ::testing::Values("llama3", "stories260K"));

TEST(IncrementalDetokenizer, HoldsBackSplitMultiByteCharacters) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  const std::vector<int> ids = tok.encode(" 🤖", /*add_special_tokens=*/false);
  ASSERT_GT(ids.size(), 1u);  // the emoji's bytes span several tokens
  const Streamed s = stream(tok, ids, false);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(s.pieces[i], "") << i;
  EXPECT_EQ(s.pieces[ids.size() - 1], " 🤖");
}

TEST(IncrementalDetokenizer, StreamsCjkThroughByteFallbackRuns) {
  const Tokenizer& tok = test::golden_tokenizer("stories260K");
  const std::vector<int> ids = tok.encode("日本 is far");
  const Streamed s = stream(tok, ids, true);
  EXPECT_EQ(s.text, "日本 is far");
  // The six <0xXX> ids of 日本 are held until the next non-byte token ends their run.
  auto first_byte = std::find(ids.begin(), ids.end(), *tok.token_to_id("<0xE6>"));
  ASSERT_NE(first_byte, ids.end());
  const size_t run_start = first_byte - ids.begin();
  for (size_t i = run_start; i < run_start + 6; ++i) EXPECT_EQ(s.pieces[i], "") << i;
  EXPECT_EQ(s.pieces[run_start + 6], "日本 ");
}

TEST(IncrementalDetokenizer, ByteRunThatTurnsInvalidStillMatchesDecode) {
  const Tokenizer& tok = test::golden_tokenizer("stories260K");
  auto id = [&](const char* t) { return *tok.token_to_id(t); };
  // 日 as three bytes, then a stray continuation byte: the whole run decodes to 4 x U+FFFD.
  const std::vector<int> ids = {id("<0xE6>"), id("<0x97>"), id("<0xA5>"), id("<0x80>"),
                                *tok.token_to_id("\xE2\x96\x81"
                                                 "a")};
  const Streamed s = stream(tok, ids, false);
  EXPECT_EQ(s.text, tok.decode(ids));
  EXPECT_EQ(s.text, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD a");
  expect_valid_pieces(s, "invalid run");
}

TEST(IncrementalDetokenizer, InvalidByteLevelBytesMatchDecode) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  const int stray = *tok.token_to_id(std::string(unicode::byte_to_unicode(0x80)));
  const int lead = *tok.token_to_id(std::string(unicode::byte_to_unicode(0xE6)));
  const std::vector<int> ids = {9906, stray, 1917, lead, lead, 1917, lead};
  const Streamed s = stream(tok, ids, false);
  EXPECT_EQ(s.text, tok.decode(ids));
  expect_valid_pieces(s, "invalid bytes");
}

TEST(IncrementalDetokenizer, PromptContextKeepsTheLeadingSpace) {
  const Tokenizer& tok = test::golden_tokenizer("stories260K");
  const std::vector<int> all = tok.encode("Once upon a time there was a girl");
  const std::vector<int> prompt = tok.encode("Once upon a time");
  ASSERT_EQ(std::vector<int>(all.begin(), all.begin() + prompt.size()), prompt);
  const std::vector<int> generated(all.begin() + prompt.size(), all.end());
  const Streamed s = stream(tok, generated, true, prompt);
  EXPECT_EQ(s.text, " there was a girl");
  EXPECT_EQ(stream(tok, generated, true).text, "there was a girl");  // no context: stripped
}

TEST(IncrementalDetokenizer, RejectsUnknownIds) {
  IncrementalDetokenizer detok(test::golden_tokenizer("stories260K"));
  EXPECT_THROW((void)detok.push(512), Error);
}

// Random ids (biased towards byte tokens, which make the most partial UTF-8) keep the invariant.
TEST(IncrementalDetokenizer, RandomIdSequencesMatchDecode) {
  std::mt19937 rng(1234);
  for (const char* name : {"llama3", "stories260K"}) {
    const Tokenizer& tok = test::golden_tokenizer(name);
    std::uniform_int_distribution<int> any(0, tok.vocab_size() - 1), low(0, 300);
    for (int round = 0; round < 200; ++round) {
      std::vector<int> ids(1 + rng() % 24);
      for (int& id : ids) id = (rng() % 3 == 0) ? any(rng) : low(rng);
      for (bool skip : {false, true}) {
        const Streamed s = stream(tok, ids, skip);
        ASSERT_EQ(s.text, tok.decode(ids, skip)) << name << " round " << round;
        expect_valid_pieces(s, name);
      }
    }
  }
}

}  // namespace
}  // namespace tandem
