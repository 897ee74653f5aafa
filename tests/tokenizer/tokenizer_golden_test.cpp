// Tokenizer vs the Hugging Face `tokenizers` golden outputs: every line of
// shared/golden/tokenizer/{llama3,stories260K}.jsonl, encode and decode, exact.
#include <gtest/gtest.h>

#include "core/error.h"
#include "golden_cases.h"

namespace tandem {
namespace {

class GoldenTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTokenizer, EncodeMatchesWithAndWithoutSpecialTokens) {
  const Tokenizer& tok = test::golden_tokenizer(GetParam());
  const auto cases = test::golden_cases(GetParam());
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    EXPECT_EQ(tok.encode(c.text), c.ids) << "text: " << c.text;
    EXPECT_EQ(tok.encode(c.text, /*add_special_tokens=*/false), c.ids_no_special)
        << "text: " << c.text;
  }
}

TEST_P(GoldenTokenizer, DecodeMatchesWithAndWithoutSpecialTokens) {
  const Tokenizer& tok = test::golden_tokenizer(GetParam());
  for (const auto& c : test::golden_cases(GetParam())) {
    EXPECT_EQ(tok.decode(c.ids), c.decoded) << "text: " << c.text;
    EXPECT_EQ(tok.decode(c.ids, /*skip_special_tokens=*/true), c.decoded_skip_special)
        << "text: " << c.text;
  }
}

INSTANTIATE_TEST_SUITE_P(Files, GoldenTokenizer, ::testing::Values("llama3", "stories260K"));

TEST(Tokenizer, Llama3Accessors) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  EXPECT_EQ(tok.vocab_size(), 128256);
  EXPECT_EQ(tok.bos_id(), 128000);
  EXPECT_EQ(tok.eos_id(), 128009);  // tokenizer_config.json eos_token <|eot_id|>
  EXPECT_EQ(tok.bos_token(), "<|begin_of_text|>");
  EXPECT_EQ(tok.token_to_id("<|end_header_id|>"), 128007);
  EXPECT_EQ(tok.token_to_id("Hello"), 9906);
  EXPECT_EQ(tok.id_to_token(1917), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(tok.id_to_token(128256), std::nullopt);
  EXPECT_EQ(tok.id_to_token(-1), std::nullopt);
  EXPECT_TRUE(tok.is_special(128009));
  EXPECT_FALSE(tok.is_special(9906));
  EXPECT_EQ(tok.special_ids().size(), 256u);
  EXPECT_EQ(tok.special_ids().front(), 128000);
  EXPECT_EQ(tok.added_ids().size(), 256u);
  ASSERT_TRUE(tok.chat_template().has_value());
  EXPECT_NE(tok.chat_template()->find("<|start_header_id|>"), std::string::npos);
  EXPECT_FALSE(tok.is_byte_run_token(9906));  // ByteLevel decoder: no byte runs
}

TEST(Tokenizer, Stories260KAccessors) {
  const Tokenizer& tok = test::golden_tokenizer("stories260K");
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.special_ids(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(tok.id_to_token(13), "<0x0A>");
  EXPECT_TRUE(tok.is_byte_run_token(13));
  EXPECT_FALSE(tok.is_byte_run_token(410));
  EXPECT_FALSE(tok.chat_template().has_value());
  EXPECT_THROW((void)tok.decode(std::vector<int>{1, 512}), Error);
  EXPECT_THROW((void)tok.decode(std::vector<int>{-3}), Error);
}

TEST(Tokenizer, RejectsInvalidUtf8Input) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  try {
    (void)tok.encode("ok \xC3\x28 bad");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("offset 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem
