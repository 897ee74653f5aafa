// UTF-8 validation/decoding (Unicode Table 3-7 well-formed sequences) and the byte-level alphabet.
#include "tokenizer/unicode.h"

#include <array>
#include <cstring>

namespace tandem::unicode {
namespace {

// Expected sequence length for a lead byte (0: never valid as a lead byte).
size_t lead_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// The allowed range of the second byte after a lead byte (Table 3-7 excludes overlongs,
// surrogates and code points above U+10FFFF there); later bytes are always 0x80..0xBF.
std::pair<uint8_t, uint8_t> second_byte_range(uint8_t lead) {
  switch (lead) {
    case 0xE0:
      return {0xA0, 0xBF};
    case 0xED:
      return {0x80, 0x9F};
    case 0xF0:
      return {0x90, 0xBF};
    case 0xF4:
      return {0x80, 0x8F};
    default:
      return {0x80, 0xBF};
  }
}

// How many bytes from `pos` form a valid prefix of a sequence (>= 1), and whether it is complete.
struct SequenceScan {
  size_t length;
  bool complete;
};

SequenceScan scan_sequence(std::string_view bytes, size_t pos) {
  const auto lead = static_cast<uint8_t>(bytes[pos]);
  const size_t need = lead_length(lead);
  if (need == 0) return {1, false};
  if (need == 1) return {1, true};
  size_t got = 1;
  while (got < need && pos + got < bytes.size()) {
    const auto b = static_cast<uint8_t>(bytes[pos + got]);
    auto [lo, hi] = got == 1 ? second_byte_range(lead) : std::pair<uint8_t, uint8_t>{0x80, 0xBF};
    if (b < lo || b > hi) break;
    ++got;
  }
  return {got, got == need};
}

struct ByteLevelTables {
  std::array<std::string, 256> to_unicode;  // (256,) UTF-8 of each byte's code point
  std::array<int16_t, 324> to_byte;         // (code point < 324,) byte, or -1
};

ByteLevelTables build_byte_level_tables() {
  ByteLevelTables t;
  t.to_byte.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
    append_utf8(t.to_unicode[b], cp);
    t.to_byte[cp] = static_cast<int16_t>(b);
  }
  return t;
}

// Each byte's byte-level character as up to two UTF-8 bytes (its code point is below U+0144),
// computed at compile time for append_byte_level's loop.
struct ByteLevelChar {
  uint8_t length;
  char bytes[2];
};
constexpr std::array<ByteLevelChar, 256> make_byte_level_chars() {
  std::array<ByteLevelChar, 256> chars{};
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const int cp = printable ? b : 256 + extra++;
    if (cp < 0x80) {
      chars[b] = {1, {char(cp), 0}};
    } else {
      chars[b] = {2, {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))}};
    }
  }
  return chars;
}
constexpr std::array<ByteLevelChar, 256> kByteLevelChars = make_byte_level_chars();

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables = build_byte_level_tables();
  return tables;
}

// Whether the eight bytes at `p` are all ASCII (ASCII runs are skipped eight bytes at a time).
bool all_ascii8(const char* p) {
  uint64_t eight;
  std::memcpy(&eight, p, 8);
  return (eight & 0x8080808080808080ull) == 0;
}

}  // namespace

size_t valid_sequence_length(std::string_view bytes, size_t pos) {
  const SequenceScan s = scan_sequence(bytes, pos);
  return s.complete ? s.length : 0;
}

size_t find_invalid_utf8(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    while (pos + 8 <= bytes.size() && all_ascii8(bytes.data() + pos)) pos += 8;
    if (pos == bytes.size()) break;
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t n = valid_sequence_length(bytes, pos);
    if (n == 0) return pos;
    pos += n;
  }
  return std::string_view::npos;
}

size_t char_length(std::string_view text, size_t pos) {
  const size_t n = lead_length(static_cast<uint8_t>(text[pos]));
  return (n == 0 || pos + n > text.size()) ? 1 : n;
}

char32_t next_code_point(std::string_view text, size_t& pos) {
  const size_t n = char_length(text, pos);
  const auto lead = static_cast<uint8_t>(text[pos]);
  char32_t cp = n == 1 ? lead : n == 2 ? (lead & 0x1F) : n == 3 ? (lead & 0x0F) : (lead & 0x07);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(text[pos + i]) & 0x3F);
  pos += n;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    const SequenceScan s = scan_sequence(bytes, pos);
    if (s.complete) {
      out.append(bytes.substr(pos, s.length));
    } else {
      out.append(kReplacement);
    }
    pos += s.length;
  }
  return out;
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const size_t start = out.size();
  out.resize(start + 2 * bytes.size());  // at most two bytes a byte
  char* p = out.data() + start;
  for (const char c : bytes) {
    const ByteLevelChar& ch = kByteLevelChars[static_cast<uint8_t>(c)];
    std::memcpy(p, ch.bytes, 2);  // the second byte is overwritten next when unused
    p += ch.length;
  }
  out.resize(size_t(p - out.data()));
}

std::string_view byte_to_unicode(uint8_t byte) { return byte_level_tables().to_unicode[byte]; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  const auto& t = byte_level_tables().to_byte;
  if (cp >= t.size() || t[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t[cp]);
}

}  // namespace tandem::unicode
