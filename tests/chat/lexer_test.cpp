// The lexer in isolation: token kinds and lines, literal decoding, whitespace control
// (trim_blocks, lstrip_blocks, -/+ modifiers), comments, raw blocks and newline handling.
#include "chat/lexer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "chat/template_error.h"

namespace tandem::chat {
namespace {

// "kind:text" for each token, the end token left out.
std::vector<std::string> describe(const std::string& source) {
  std::vector<std::string> out;
  for (const Token& t : tokenize(source)) {
    switch (t.kind) {
      case TokenKind::kText:
        out.push_back("text:" + t.text);
        break;
      case TokenKind::kVarBegin:
        out.push_back("{{");
        break;
      case TokenKind::kVarEnd:
        out.push_back("}}");
        break;
      case TokenKind::kBlockBegin:
        out.push_back("{%");
        break;
      case TokenKind::kBlockEnd:
        out.push_back("%}");
        break;
      case TokenKind::kName:
        out.push_back("name:" + t.text);
        break;
      case TokenKind::kString:
        out.push_back("str:" + t.text);
        break;
      case TokenKind::kInteger:
        out.push_back("int:" + std::to_string(t.int_value));
        break;
      case TokenKind::kFloat:
        out.push_back("float:" + t.text);
        break;
      case TokenKind::kOperator:
        out.push_back("op:" + t.text);
        break;
      case TokenKind::kEnd:
        break;
    }
  }
  return out;
}

using V = std::vector<std::string>;

TEST(ChatLexer, TagsAndTokens) {
  EXPECT_EQ(
      describe("a{{ x.y[0] | f(1, k='v') }}b"),
      (V{"text:a", "{{", "name:x", "op:.", "name:y", "op:[", "int:0", "op:]", "op:|", "name:f",
         "op:(", "int:1", "op:,", "name:k", "op:=", "str:v", "op:)", "}}", "text:b"}));
  EXPECT_EQ(describe("{% if a // b ** 2 != c %}"), (V{"{%", "name:if", "name:a", "op://", "name:b",
                                                      "op:**", "int:2", "op:!=", "name:c", "%}"}));
}

TEST(ChatLexer, NumberLiterals) {
  EXPECT_EQ(describe("{{ 1_000 0x1F 0b11 0o7 2.5 1e3 1.5E-2 }}"),
            (V{"{{", "int:1000", "int:31", "int:3", "int:7", "float:2.5", "float:1e3",
               "float:1.5E-2", "}}"}));
  // After a dot, digits are an attribute index, not a float.
  EXPECT_EQ(describe("{{ x.0.1 }}"), (V{"{{", "name:x", "op:.", "int:0", "op:.", "int:1", "}}"}));
}

TEST(ChatLexer, StringEscapes) {
  EXPECT_EQ(
      describe(R"({{ 'a\'b' "c\"d" '\n\t\\' '\x41\u00e9\U0001F916' '\q' }})"),
      (V{"{{", "str:a'b", "str:c\"d", "str:\n\t\\", "str:A\u00e9\U0001F916", "str:\\q", "}}"}));
}

TEST(ChatLexer, ClosingBracesInsideLiteralsDoNotEndTheTag) {
  EXPECT_EQ(describe("{{ {'a': {'b': 1}} }}"), (V{"{{", "op:{", "str:a", "op::", "op:{", "str:b",
                                                  "op::", "int:1", "op:}", "op:}", "}}"}));
}

TEST(ChatLexer, WhitespaceControl) {
  // trim_blocks drops the newline after %}; lstrip_blocks the indentation before {%.
  EXPECT_EQ(describe("  {% if x %}\n  y\n  {% endif %}\n"),
            (V{"{%", "name:if", "name:x", "%}", "text:  y\n", "{%", "name:endif", "%}"}));
  // '-' strips all whitespace on its side; '+' disables lstrip/trim.
  EXPECT_EQ(describe("a \n {{- x -}} \n b"), (V{"text:a", "{{", "name:x", "}}", "text:b"}));
  EXPECT_EQ(describe("  {%+ if x +%}\nz"),
            (V{"text:  ", "{%", "name:if", "name:x", "%}", "text:\nz"}));
  // lstrip applies only when the tag starts its line; {{ }} never strips.
  EXPECT_EQ(describe("a  {% if x %}"), (V{"text:a  ", "{%", "name:if", "name:x", "%}"}));
  EXPECT_EQ(describe("\n  {{ x }}"), (V{"text:\n  ", "{{", "name:x", "}}"}));
}

TEST(ChatLexer, CommentsAndRaw) {
  EXPECT_EQ(describe("a{# c #}b  {#- d -#}  c"), (V{"text:a", "text:b", "text:c"}));
  EXPECT_EQ(describe("  {# own line #}\nx"), (V{"text:x"}));
  EXPECT_EQ(describe("{% raw %}{{ x }}{% endraw %}"), (V{"text:{{ x }}"}));
  EXPECT_EQ(describe("{% raw -%}  {% x %}  {%- endraw %}"), (V{"text:{% x %}"}));
}

TEST(ChatLexer, NewlinesAndLines) {
  // \r\n and \r become \n; one trailing newline is dropped.
  EXPECT_EQ(describe("a\r\nb\rc\n\n"), (V{"text:a\nb\nc\n"}));
  const std::vector<Token> tokens = tokenize("a\n{{ x\n+ y }}\n{% if\nz %}");
  std::vector<int> lines;
  for (const Token& t : tokens) lines.push_back(t.line);
  EXPECT_EQ(lines, (std::vector<int>{1, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 5}));
}

TEST(ChatLexer, ErrorsNameTheLine) {
  const std::pair<const char*, int> cases[] = {
      {"x\n{{ 'open }}", 2}, {"\n\n{# no end", 3}, {"{{ a ) }}", 1},
      {"\n{{ a ? b }}", 2},  {"{{ 0x }}", 1},      {"{% raw %}x", 1},
  };
  for (const auto& [source, line] : cases) {
    try {
      (void)tokenize(source);
      ADD_FAILURE() << source;
    } catch (const TemplateError& e) {
      EXPECT_EQ(e.line(), line) << source << ": " << e.what();
    }
  }
}

TEST(ChatLexer, InvalidUtf8IsText) {
  const std::string source = "\xff\xfe{{ '\xc3' }}\xe2\x82";
  const auto tokens = tokenize(source);
  ASSERT_EQ(tokens.size(), 6u);
  EXPECT_EQ(tokens[0].text, "\xff\xfe");
  EXPECT_EQ(tokens[2].text, "\xc3");
  EXPECT_EQ(tokens[4].text, "\xe2\x82");
}

}  // namespace
}  // namespace tandem::chat
