// Pattern/Regex: PCRE2 with Oniguruma's meaning of \s (Unicode White_Space, no U+180E), literal
// patterns, replacement and the empty-match rule of find_all.
#include "tokenizer/pattern.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "golden_cases.h"

namespace tandem::tokenizer {
namespace {

std::vector<std::string> matches(const Regex& r, std::string_view text) {
  std::vector<std::string> out;
  for (const Match& m : r.find_all(text)) out.emplace_back(text.substr(m.begin, m.end - m.begin));
  return out;
}

TEST(Regex, WhitespaceIsUnicodeWhiteSpaceAsInOniguruma) {
  const Regex space(R"(\s+)", "t");
  EXPECT_EQ(matches(space, "a\t\u0085\u3000\u2028b"),
            (std::vector<std::string>{"\t\u0085\u3000\u2028"}));
  EXPECT_TRUE(matches(space, "a\u180Eb").empty());  // MONGOLIAN VOWEL SEPARATOR is Cf, not space
  EXPECT_TRUE(matches(space, "a\u200Bb").empty());
  const Regex not_space(R"(\S+)", "t");
  EXPECT_EQ(matches(not_space, "\u180E \u00A0x"), (std::vector<std::string>{"\u180E", "x"}));
  const Regex in_class(R"([^\s\p{L}]+)", "t");
  EXPECT_EQ(matches(in_class, "a\u180E1 b"), (std::vector<std::string>{"\u180E1"}));
  const Regex bracket(R"([]\s]+)", "t");  // ']' first in a class is a literal
  EXPECT_EQ(matches(bracket, "a] ]b"), (std::vector<std::string>{"] ]"}));
}

TEST(Regex, UnicodePropertiesAndCaseInsensitiveGroups) {
  const Regex r(R"((?i:'s|'ll)|\p{L}+|\p{N}{1,3})", "t");
  EXPECT_EQ(matches(r, "It'S 12345 日本"),
            (std::vector<std::string>{"It", "'S", "123", "45", "日本"}));
}

TEST(Regex, EmptyMatchesAdvanceByOneCharacter) {
  const Regex r("x*", "t");
  std::vector<std::pair<size_t, size_t>> got;
  for (const Match& m : r.find_all("axé")) got.emplace_back(m.begin, m.end);
  EXPECT_EQ(got, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 2}, {4, 4}}));
}

TEST(Regex, BadPatternsAndTextAreErrors) {
  EXPECT_THROW(Regex("(unclosed", "t"), Error);
  const Regex r("a", "t");
  EXPECT_THROW((void)r.find_all("\xFF"), Error);
}

TEST(Pattern, LiteralAndRegexFromJson) {
  const Pattern lit = Pattern::from_json(Json::parse(R"({"String": "."})"), "t");
  EXPECT_EQ(lit.replace_all("a.b.", "!"), "a!b!");  // a literal, not "any character"
  const Pattern re = Pattern::from_json(Json::parse(R"({"Regex": "\\d+"})"), "t");
  EXPECT_EQ(re.replace_all("a12b3", "#"), "a#b#");
  EXPECT_TRUE(Pattern::literal("").find_all("abc").empty());
  EXPECT_THROW(Pattern::from_json(Json::parse(R"({"Glob": "*"})"), "t"), Error);
}

// Expected ids computed with HF tokenizers 0.23 (U+180E must not split as whitespace).
TEST(Pattern, Llama3SplitsMongolianVowelSeparatorLikeHf) {
  const Tokenizer& tok = test::golden_tokenizer("llama3");
  EXPECT_EQ(tok.encode("a\u180Eb  \u180E c", /*add_special_tokens=*/false),
            (std::vector<int>{64, 157, 254, 236, 65, 220, 87189, 254, 236, 272}));
}

}  // namespace
}  // namespace tandem::tokenizer
