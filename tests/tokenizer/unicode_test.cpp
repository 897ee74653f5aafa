// UTF-8 helpers and the GPT-2 byte-level alphabet.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <set>

namespace tandem::unicode {
namespace {

const std::string kFffd(kReplacement);

TEST(ByteLevel, KnownMappings) {
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(byte_to_unicode('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(byte_to_unicode('A'), "A");
  EXPECT_EQ(byte_to_unicode(0xE9), "\xC3\xA9");  // printable Latin-1 maps to itself: U+00E9
  EXPECT_EQ(byte_to_unicode(0xAD), "\xC5\x83");  // soft hyphen is the 68th remapped: U+0143
  EXPECT_EQ(byte_to_unicode(0x00), "\xC4\x80");  // U+0100
}

TEST(ByteLevel, IsABijectionOnAllBytes) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string s(byte_to_unicode(static_cast<uint8_t>(b)));
    size_t pos = 0;
    const char32_t cp = next_code_point(s, pos);
    EXPECT_EQ(pos, s.size());
    EXPECT_EQ(unicode_to_byte(cp), b);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(unicode_to_byte(U'\u0144'), std::nullopt);
  EXPECT_EQ(unicode_to_byte(U' '), std::nullopt);  // space is remapped, so U+0020 is not a byte
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("日本 🤖 é"));
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2u);            // cut off
  EXPECT_EQ(find_invalid_utf8("a\xC0\x80"), 1u);         // overlong
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\x80"), 2u);            // stray continuation byte
}

// Rust's String::from_utf8_lossy: one U+FFFD per maximal invalid subpart.
TEST(Utf8, LossyMatchesRust) {
  EXPECT_EQ(utf8_lossy("日本"), "日本");
  EXPECT_EQ(utf8_lossy("\xE6\x97"), kFffd);  // cut-off prefix: one
  EXPECT_EQ(utf8_lossy("\xE6\x97"
                       "a"),
            kFffd + "a");
  EXPECT_EQ(utf8_lossy("\xF0\x80\x80"), kFffd + kFffd + kFffd);  // F0 needs 90..BF next
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogates
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), kFffd + kFffd);
  EXPECT_EQ(utf8_lossy("\xF0\x9F\xA4"
                       "\xF0\x9F\xA4\x96"),
            kFffd + "🤖");
  EXPECT_EQ(utf8_lossy(std::string_view("\x00\xFF", 2)), std::string(1, '\0') + kFffd);
}

TEST(Utf8, AppendAndDecodeCodePoints) {
  std::string s;
  for (char32_t cp : {U'a', U'\u00E9', U'\u65E5', U'\U0001F916'}) append_utf8(s, cp);
  EXPECT_EQ(s, "aé日🤖");
  size_t pos = 0;
  EXPECT_EQ(next_code_point(s, pos), U'a');
  EXPECT_EQ(next_code_point(s, pos), U'\u00E9');
  EXPECT_EQ(next_code_point(s, pos), U'\u65E5');
  EXPECT_EQ(next_code_point(s, pos), U'\U0001F916');
  EXPECT_EQ(pos, s.size());
}

}  // namespace
}  // namespace tandem::unicode
