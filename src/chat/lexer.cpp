// Jinja2-compatible lexer (trim_blocks + lstrip_blocks), written as a hand scanner.
#include "chat/lexer.h"

#include <algorithm>
#include <cstdlib>

#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

// "\r\n" and "\r" become "\n"; one trailing newline is dropped (keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_ascii_digit(c); }

bool all_space(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size())
    if (!is_space(next_code_point(s, pos))) return false;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') newlines_.push_back(i);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_text(src_.substr(pos_));
        break;
      }
      lex_tag_at(tag);
    }
    tokens_.push_back(Token{TokenKind::kEnd, line_at(src_.size()), {}});
    return std::move(tokens_);
  }

 private:
  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) -
                                newlines_.begin());
  }

  [[noreturn]] void fail_at(size_t pos, const std::string& message) const {
    throw TemplateError(line_at(pos), message);
  }

  void emit(TokenKind kind, size_t pos, std::string text = {}) {
    tokens_.push_back(Token{kind, line_at(pos), std::move(text)});
  }

  void emit_text(std::string text) {
    if (!text.empty()) emit(TokenKind::kText, pos_, std::move(text));
  }

  bool starts_with(size_t pos, std::string_view s) const {
    return src_.compare(pos, s.size(), s) == 0;
  }

  size_t skip_space(size_t pos) const {
    while (pos < src_.size()) {
      size_t next = pos;
      if (!is_space(next_code_point(src_, next))) break;
      pos = next;
    }
    return pos;
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  // Whitespace control on the text before a tag: "-" strips all trailing whitespace;
  // lstrip_blocks strips spaces before a block/comment tag that starts its line.
  std::string control_left(std::string text, char kind, char sign) const {
    if (sign == '-') return strip(text, StripSide::kRight);
    if (sign == '+' || kind == '{') return text;
    const size_t last_newline = text.rfind('\n');
    const size_t line_start = last_newline == std::string::npos ? 0 : last_newline + 1;
    if ((line_start > 0 || line_starting_) && line_start < text.size() &&
        all_space(std::string_view(text).substr(line_start)))
      text.resize(line_start);
    return text;
  }

  void lex_tag_at(size_t tag) {
    const char kind = src_[tag + 1];
    char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
    if (sign != '-' && sign != '+') sign = '\0';
    const size_t body = tag + 2 + (sign != '\0' ? 1 : 0);
    size_t raw_body = 0;
    const bool raw = kind == '%' && match_raw_keyword(body, "raw", &raw_body);
    emit_text(control_left(src_.substr(pos_, tag - pos_), kind, sign));
    line_starting_ = false;
    if (kind == '#') {
      lex_comment(tag, body);
    } else if (raw) {
      lex_raw(tag, raw_body);
    } else {
      lex_expression_tag(kind, tag, body);
    }
  }

  // Matches `\s*<word>\s*(-%}\s*|%})` at pos (the raw/endraw tag tails); sets *end past it.
  bool match_raw_keyword(size_t pos, std::string_view word, size_t* end) const {
    pos = skip_space(pos);
    if (!starts_with(pos, word)) return false;
    pos = skip_space(pos + word.size());
    if (starts_with(pos, "-%}")) {
      *end = skip_space(pos + 3);
      return true;
    }
    if (starts_with(pos, "%}")) {
      *end = pos + 2;
      return true;
    }
    return false;
  }

  void lex_comment(size_t tag, size_t body) {
    for (size_t end = src_.find("#}", body); end != std::string::npos;
         end = src_.find("#}", end + 1)) {
      pos_ = end + 2;
      if (end > body && src_[end - 1] == '-') {
        pos_ = skip_space(pos_);
      } else if (!(end > body && src_[end - 1] == '+') && pos_ < src_.size() &&
                 src_[pos_] == '\n') {
        ++pos_;
      }
      line_starting_ = src_[pos_ - 1] == '\n';
      return;
    }
    fail_at(tag, "missing end of comment tag '#}'");
  }

  void lex_raw(size_t tag, size_t content_start) {
    for (size_t end = src_.find("{%", content_start); end != std::string::npos;
         end = src_.find("{%", end + 1)) {
      char sign = end + 2 < src_.size() ? src_[end + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      size_t after = 0;
      size_t tail = end + 2 + (sign != '\0' ? 1 : 0);
      if (!match_raw_end(tail, &after)) continue;
      pos_ = content_start;
      line_starting_ = src_[content_start - 1] == '\n';
      emit_text(control_left(src_.substr(content_start, end - content_start), '%', sign));
      pos_ = after;
      line_starting_ = src_[pos_ - 1] == '\n';
      return;
    }
    fail_at(tag, "missing end of raw directive '{% endraw %}'");
  }

  // `\s*endraw\s*(+%}|-%}\s*|%}\n?)`
  bool match_raw_end(size_t pos, size_t* end) const {
    pos = skip_space(pos);
    if (!starts_with(pos, "endraw")) return false;
    pos = skip_space(pos + 6);
    if (starts_with(pos, "+%}")) {
      *end = pos + 3;
    } else if (starts_with(pos, "-%}")) {
      *end = skip_space(pos + 3);
    } else if (starts_with(pos, "%}")) {
      *end = pos + 2 + (pos + 2 < src_.size() && src_[pos + 2] == '\n' ? 1 : 0);
    } else {
      return false;
    }
    return true;
  }

  // Recognizes the closing delimiter at pos (only when brackets are balanced); sets pos_.
  bool match_tag_end(char kind, size_t pos) {
    if (kind == '%') {
      if (starts_with(pos, "-%}")) {
        pos_ = skip_space(pos + 3);
      } else if (starts_with(pos, "+%}")) {
        pos_ = pos + 3;
      } else if (starts_with(pos, "%}")) {
        pos_ = pos + 2 + (pos + 2 < src_.size() && src_[pos + 2] == '\n' ? 1 : 0);
      } else {
        return false;
      }
    } else {
      if (starts_with(pos, "-}}")) {
        pos_ = skip_space(pos + 3);
      } else if (starts_with(pos, "}}")) {
        pos_ = pos + 2;
      } else {
        return false;
      }
    }
    emit(kind == '%' ? TokenKind::kBlockEnd : TokenKind::kVarEnd, pos);
    line_starting_ = src_[pos_ - 1] == '\n';
    return true;
  }

  void lex_expression_tag(char kind, size_t tag, size_t pos) {
    emit(kind == '%' ? TokenKind::kBlockBegin : TokenKind::kVarBegin, tag);
    brackets_.clear();
    while (true) {
      pos = skip_space(pos);
      if (pos >= src_.size())
        fail_at(tag, fmt::format("unexpected end of template: tag '{}' is never closed",
                                 kind == '%' ? "{%" : "{{"));
      if (brackets_.empty() && match_tag_end(kind, pos)) return;
      pos = lex_token(pos);
    }
  }

  size_t lex_token(size_t pos) {
    const char c = src_[pos];
    if (is_ascii_digit(c)) return lex_number(pos);
    if (is_name_start(c)) {
      size_t end = pos;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      emit(TokenKind::kName, pos, src_.substr(pos, end - pos));
      return end;
    }
    if (c == '\'' || c == '"') return lex_string(pos);
    return lex_operator(pos);
  }

  // `(\d+_)*\d+` starting at pos; returns its end (pos when there is none).
  size_t scan_digit_run(size_t pos) const {
    if (pos >= src_.size() || !is_ascii_digit(src_[pos])) return pos;
    size_t end = pos;
    while (end < src_.size() && is_ascii_digit(src_[end])) ++end;
    while (end + 1 < src_.size() && src_[end] == '_' && is_ascii_digit(src_[end + 1])) {
      ++end;
      while (end < src_.size() && is_ascii_digit(src_[end])) ++end;
    }
    return end;
  }

  // The end of a float literal at pos, or npos when the text there is not a float.
  size_t scan_float(size_t pos) const {
    if (pos > 0 && src_[pos - 1] == '.') return std::string::npos;  // `x.0.1` is attribute access
    size_t end = scan_digit_run(pos);
    bool is_float = false;
    if (end < src_.size() && src_[end] == '.') {
      const size_t frac_end = scan_digit_run(end + 1);
      if (frac_end > end + 1) {
        end = frac_end;
        is_float = true;
      }
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t exp = end + 1;
      if (exp < src_.size() && (src_[exp] == '+' || src_[exp] == '-')) ++exp;
      const size_t exp_end = scan_digit_run(exp);
      if (exp_end > exp) {
        end = exp_end;
        is_float = true;
      }
    }
    return is_float ? end : std::string::npos;
  }

  size_t lex_number(size_t pos) {
    const size_t float_end = scan_float(pos);
    if (float_end != std::string::npos) {
      std::string text = src_.substr(pos, float_end - pos);
      std::erase(text, '_');
      Token token{TokenKind::kFloat, line_at(pos), text};
      token.float_value = std::strtod(text.c_str(), nullptr);
      tokens_.push_back(std::move(token));
      return float_end;
    }
    int base = 10;
    size_t digits = pos;
    if (src_[pos] == '0' && pos + 1 < src_.size()) {
      const char p = static_cast<char>(src_[pos + 1] | 0x20);
      base = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 10;
      if (base != 10) digits = pos + 2;
    }
    return lex_integer(pos, digits, base);
  }

  size_t lex_integer(size_t pos, size_t digits, int base) {
    const auto digit_value = [&](char c) {
      const int v = hex_value(c);
      return v >= 0 && v < base ? v : -1;
    };
    size_t end = digits;
    int64_t value = 0;
    bool any = false;
    // Decimal literals other than 0 are `[1-9](_?\d)*`; 0 is `0(_?0)*`; prefixed ones `(_?d)+`.
    const bool zero = base == 10 && src_[pos] == '0';
    while (end < src_.size()) {
      size_t at = end;
      if (src_[at] == '_' && (any || base != 10)) ++at;
      if (at >= src_.size() || digit_value(src_[at]) < 0) break;
      if (zero && src_[at] != '0') break;
      if (__builtin_mul_overflow(value, base, &value) ||
          __builtin_add_overflow(value, digit_value(src_[at]), &value))
        fail_at(pos, "integer literal too large");
      any = true;
      end = at + 1;
    }
    if (!any) fail_at(pos, fmt::format("invalid number literal '{}'", src_.substr(pos, 3)));
    Token token{TokenKind::kInteger, line_at(pos), src_.substr(pos, end - pos)};
    token.int_value = value;
    tokens_.push_back(std::move(token));
    return end;
  }

  size_t lex_string(size_t pos) {
    const char quote = src_[pos];
    size_t end = pos + 1;
    while (end < src_.size() && src_[end] != quote) end += src_[end] == '\\' ? 2 : 1;
    if (end >= src_.size()) fail_at(pos, "unterminated string literal");
    emit(TokenKind::kString, pos, decode_escapes(pos + 1, end));
    return end + 1;
  }

  // Python unicode-escape decoding of a string literal body src_[begin, end).
  std::string decode_escapes(size_t begin, size_t end) const {
    std::string out;
    out.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      if (src_[i] != '\\' || i + 1 >= end) {
        out.push_back(src_[i]);
        continue;
      }
      i = decode_one_escape(i, end, out);
    }
    return out;
  }

  // Decodes the escape at src_[i] == '\\'; returns the index of its last character.
  size_t decode_one_escape(size_t i, size_t end, std::string& out) const {
    const char e = src_[i + 1];
    switch (e) {
      case '\n':
        return i + 1;
      case '\\':
        out.push_back('\\');
        return i + 1;
      case '\'':
        out.push_back('\'');
        return i + 1;
      case '"':
        out.push_back('"');
        return i + 1;
      case 'a':
        out.push_back('\a');
        return i + 1;
      case 'b':
        out.push_back('\b');
        return i + 1;
      case 'f':
        out.push_back('\f');
        return i + 1;
      case 'n':
        out.push_back('\n');
        return i + 1;
      case 'r':
        out.push_back('\r');
        return i + 1;
      case 't':
        out.push_back('\t');
        return i + 1;
      case 'v':
        out.push_back('\v');
        return i + 1;
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      char32_t cp = 0;
      size_t j = i + 1;
      for (int n = 0; n < 3 && j < end && src_[j] >= '0' && src_[j] <= '7'; ++n, ++j)
        cp = cp * 8 + static_cast<char32_t>(src_[j] - '0');
      append_utf8(out, cp);
      return j - 1;
    }
    const int width = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (width == 0) {  // unknown escapes stay as written
      out.push_back('\\');
      return i;
    }
    char32_t cp = 0;
    for (int n = 0; n < width; ++n) {
      const size_t j = i + 2 + static_cast<size_t>(n);
      const int v = j < end ? hex_value(src_[j]) : -1;
      if (v < 0) fail_at(i, fmt::format("truncated \\{} escape in string literal", e));
      cp = cp * 16 + static_cast<char32_t>(v);
    }
    if (cp > 0x10FFFF) fail_at(i, "illegal Unicode character in string literal");
    append_utf8(out, cp);
    return i + 1 + static_cast<size_t>(width);
  }

  size_t lex_operator(size_t pos) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwoChar) {
      if (starts_with(pos, op)) {
        emit(TokenKind::kOperator, pos, std::string(op));
        return pos + 2;
      }
    }
    const char c = src_[pos];
    static constexpr std::string_view kOneChar = "+-*/%~[](){}<>=.:|,;";
    if (kOneChar.find(c) == std::string_view::npos) {
      size_t end = pos;
      next_code_point(src_, end);
      fail_at(pos, fmt::format("unexpected character '{}'", src_.substr(pos, end - pos)));
    }
    track_bracket(pos, c);
    emit(TokenKind::kOperator, pos, std::string(1, c));
    return pos + 1;
  }

  void track_bracket(size_t pos, char c) {
    if (c == '(' || c == '[' || c == '{') {
      brackets_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets_.empty()) fail_at(pos, fmt::format("unexpected '{}'", c));
      if (brackets_.back() != c)
        fail_at(pos, fmt::format("unexpected '{}', expected '{}'", c, brackets_.back()));
      brackets_.pop_back();
    }
  }

  std::string src_;
  std::vector<size_t> newlines_;  // byte offsets of every '\n' in src_
  size_t pos_ = 0;
  bool line_starting_ = true;   // the last lexer match ended with a newline
  std::vector<char> brackets_;  // closing brackets expected inside the current tag
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace tandem::chat
