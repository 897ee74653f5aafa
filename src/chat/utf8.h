// UTF-8 helpers for the chat-template engine: Python strings count, index and slice by code
// point, and Python's str.strip()/split() treat Unicode whitespace as whitespace. Invalid bytes
// decode as one U+FFFD each (never a crash); case mapping covers ASCII and Latin-1 letters only.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::chat {

// Decodes the code point at s[pos] and advances pos past it (an invalid byte decodes as U+FFFD).
char32_t next_code_point(std::string_view s, size_t& pos);
void append_utf8(std::string& out, char32_t cp);
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
[[nodiscard]] bool is_ascii(std::string_view s);
// Number of code points (Python len()).
size_t utf8_length(std::string_view s);
// Byte offset of every code point start plus s.size() at the end: code point i is
// s[offsets[i], offsets[i+1]).
std::vector<size_t> code_point_offsets(std::string_view s);

// Python str.isspace() for one code point.
[[nodiscard]] bool is_space(char32_t cp);
[[nodiscard]] bool is_alpha(char32_t cp);
[[nodiscard]] bool is_digit(char32_t cp);
[[nodiscard]] bool is_upper(char32_t cp);
[[nodiscard]] bool is_lower(char32_t cp);
char32_t to_upper(char32_t cp);
char32_t to_lower(char32_t cp);

std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
// Python str.strip/lstrip/rstrip: strips whitespace, or any code point of `chars` when given.
enum class StripSide { kLeft, kRight, kBoth };
std::string strip(std::string_view s, StripSide side, const std::u32string* chars = nullptr);

}  // namespace tandem::chat
