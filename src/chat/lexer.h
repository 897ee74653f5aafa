// Lexer: template source -> tokens, as Jinja2's lexer does with trim_blocks and lstrip_blocks
// on: whitespace control ({%- -%} {{- -}} {%+ +%}), comments dropped, {% raw %} blocks turned
// into text, one trailing newline of the source dropped, line endings normalized to "\n".
// Inside tags: names, string/int/float literals and operators, each with its line number.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::chat {

enum class TokenKind : uint8_t {
  kText,        // template text between tags (after whitespace control)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifiers and keywords (if, for, and, true, none, ...)
  kString,      // text = the decoded literal
  kInteger,
  kFloat,
  kOperator,  // text = the operator: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
  kEnd,       // end of the source
};

struct Token {
  TokenKind kind;
  int line;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
};

// Throws TemplateError (with the line) on malformed input: unterminated tags, comments,
// strings or raw blocks, unbalanced brackets, unexpected characters.
std::vector<Token> tokenize(std::string_view source);

}  // namespace tandem::chat
