// UTF-8 helpers and the GPT-2 byte-level alphabet used by byte-level BPE tokenizers.
// Decoding reproduces Rust's String::from_utf8_lossy (one U+FFFD per maximal invalid subpart),
// which is what Hugging Face `tokenizers` applies when it turns byte-level tokens back into text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::unicode {

// U+FFFD REPLACEMENT CHARACTER, UTF-8 encoded.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Byte offset of the first byte that is not part of a well-formed UTF-8 sequence, or npos.
[[nodiscard]] size_t find_invalid_utf8(std::string_view bytes);
[[nodiscard]] inline bool is_valid_utf8(std::string_view bytes) {
  return find_invalid_utf8(bytes) == std::string_view::npos;
}

// Length in bytes of the well-formed sequence starting at `pos`, or 0 if it is invalid or cut off.
[[nodiscard]] size_t valid_sequence_length(std::string_view bytes, size_t pos);

// Length of the character at `pos` in valid UTF-8 (1 for a stray byte, so loops always advance).
[[nodiscard]] size_t char_length(std::string_view text, size_t pos);

// The code point at `pos` of valid UTF-8; advances `pos` past it.
[[nodiscard]] char32_t next_code_point(std::string_view text, size_t& pos);

void append_utf8(std::string& out, char32_t code_point);

// Rust's String::from_utf8_lossy: valid sequences are copied, each maximal invalid subpart
// (a cut-off prefix of a valid sequence, or a single bad byte) becomes one U+FFFD.
[[nodiscard]] std::string utf8_lossy(std::string_view bytes);

// GPT-2 byte-level alphabet: every byte maps to one printable code point (printable Latin-1
// bytes map to themselves, the other 68 to U+0100..U+0143), so any byte string becomes text.
[[nodiscard]] std::string_view byte_to_unicode(uint8_t byte);  // UTF-8 of the code point
// Appends each byte of `bytes` as its byte-level character (byte_to_unicode) to `out`.
void append_byte_level(std::string& out, std::string_view bytes);
[[nodiscard]] std::optional<uint8_t> unicode_to_byte(char32_t code_point);

}  // namespace tandem::unicode
