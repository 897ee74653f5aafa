// Malformed templates: every one is rejected by the ChatTemplate constructor with a
// TemplateError naming the line; nothing crashes, however deep or broken the input.
#include <string>

#include <gtest/gtest.h>

#include "chat/chat_template.h"

namespace tandem::chat {
namespace {

struct ParseErrorCase {
  const char* source;
  int line;
  const char* needle;  // expected in the message
};

TEST(ChatParseErrors, RejectedWithLineAndReason) {
  const ParseErrorCase cases[] = {
      {"a\nb\n{% if x %}\nbody", 4, "'if' block is never closed"},
      {"{% for x in y %}{% else %}", 1, "'for' block is never closed"},
      {"x\n{% endif %}", 2, "unknown tag 'endif'"},
      {"{% if a %}{% endfor %}", 1, "unknown tag 'endfor'"},
      {"\n\n{% frobnicate %}", 3, "unknown tag 'frobnicate'"},
      {"{% do x.append(1) %}", 1, "unknown tag 'do'"},
      {"{{ 'abc }}", 1, "unterminated string literal"},
      {"line\n{{ x ", 2, "never closed"},
      {"{% if x", 1, "never closed"},
      {"{# comment", 1, "missing end of comment"},
      {"{% raw %}never ends", 1, "missing end of raw"},
      {"{{ (1 }}", 1, "unexpected '}', expected ')'"},
      {"{{ 1) }}", 1, "unexpected ')'"},
      {"{{ [1, 2) }}", 1, "unexpected ')', expected ']'"},
      {"{{ x ! y }}", 1, "unexpected character '!'"},
      {"{{ }}", 1, "expected an expression"},
      {"{{ 'a' ~ }}", 1, "unexpected '}}'"},
      {"{% set %}", 1, "expected a name"},
      {"{% set x = %}", 1, "expected an expression"},
      {"{% for x y %}{% endfor %}", 1, "expected 'in'"},
      {"{% for x in y recursive %}{% endfor %}", 1, "recursive for loops are not supported"},
      {"\n{% break %}", 2, "'break' outside loop"},
      {"{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", 1,
       "'continue' outside loop"},
      {"{% macro m(a=1, b) %}{% endmacro %}", 1, "non-default argument follows default"},
      {"{{ f(a=1, 2) }}", 1, "positional argument follows keyword argument"},
      {"{{ f(*args) }}", 1, "not supported"},
      {"{{ x|nosuch }}", 1, "No filter named 'nosuch'."},
      {"\n{{ x is nosuch }}", 2, "No test named 'nosuch'."},
      {"{% for m in x %}{{ m|nosuch }}{% endfor %}", 1, "No filter named 'nosuch'."},
      {"{{ x is defined is defined }}", 1, "cannot chain multiple tests"},
      {"{{ 1 is divisibleby is 3 }}", 1, "cannot chain multiple tests"},
      {"{{ 99999999999999999999 }}", 1, "integer literal too large"},
      {"{{ 'a\\x4' }}", 1, "truncated \\x escape"},
      {"{% set true = 1 %}", 1, "cannot assign to 'true'"},
      {"{% set x | upper = 1 %}", 1, "expected end of block tag"},
      {"{% call m %}{% endcall %}", 1, "expected a call after 'call'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.source);
    try {
      ChatTemplate tpl(c.source);
      ADD_FAILURE() << "parsed without error";
    } catch (const TemplateError& e) {
      EXPECT_EQ(e.line(), c.line) << e.what();
      EXPECT_NE(e.message().find(c.needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("line " + std::to_string(c.line)), std::string::npos);
    }
  }
}

TEST(ChatParseErrors, UnknownFilterInsideConditionalFailsOnlyWhenEvaluated) {
  // Jinja defers unknown filter/test errors inside `if` blocks and conditional expressions.
  const ChatTemplate tpl("{% if flag %}{{ x|nosuch }}{% endif %}{{ y|nosuch if flag else 'ok' }}");
  EXPECT_EQ(tpl.render({{"flag", false}}), "ok");
  EXPECT_THROW((void)tpl.render({{"flag", true}}), TemplateError);
}

TEST(ChatParseErrors, TemplateErrorIsATandemError) {
  try {
    ChatTemplate tpl("{% if %}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chat template, line 1"), std::string::npos);
  }
}

TEST(ChatParseErrors, DeepNestingIsRejectedNotOverflowed) {
  const int n = 100000;
  const std::string parens =
      fmt::format("{{{{ {}1{} }}}}", std::string(n, '('), std::string(n, ')'));
  const std::string brackets =
      fmt::format("{{{{ {}{} }}}}", std::string(n, '['), std::string(n, ']'));
  std::string minus = "{{ ";
  for (int i = 0; i < n; ++i) minus += "- ";
  minus += "1 }}";
  std::string nots = "{{ ";
  for (int i = 0; i < n; ++i) nots += "not ";
  nots += "x }}";
  std::string chain = "{{ 1";
  for (int i = 0; i < n; ++i) chain += " + 1";
  chain += " }}";
  std::string filters = "{{ x";
  for (int i = 0; i < n; ++i) filters += "|trim";
  filters += " }}";
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if x %}";
  for (int i = 0; i < 5000; ++i) ifs += "{% endif %}";
  for (const std::string* source : std::initializer_list<const std::string*>{
           &parens, &brackets, &minus, &nots, &chain, &filters, &ifs}) {
    try {
      ChatTemplate tpl(*source);
      ADD_FAILURE() << "accepted nesting of size " << source->size();
    } catch (const TemplateError& e) {
      EXPECT_NE(e.message().find("deeper than"), std::string::npos) << e.what();
    }
  }
}

TEST(ChatParseErrors, ModerateNestingIsAccepted) {
  std::string source = fmt::format("{{{{ {}1{} }}}}", std::string(60, '('), std::string(60, ')'));
  for (int i = 0; i < 40; ++i) source += "{% if true %}";
  source += "deep";
  for (int i = 0; i < 40; ++i) source += "{% endif %}";
  EXPECT_EQ(ChatTemplate(source).render(nlohmann::ordered_json::object()), "1deep");
}

TEST(ChatParseErrors, GarbageNeverCrashes) {
  // Byte soup of template syntax: each must parse or fail with a TemplateError.
  const std::string pieces[] = {"{%", "%}", "{{",  "}}",     "{#",   "#}",  "-", "(",
                                ")",  "[",  "]",   "{",      "}",    "|",   "'", "\"",
                                "\\", "if", "for", "in",     " ",    "\n",  "x", "1",
                                ".",  ",",  "raw", "endraw", "\xff", "\xc3"};
  uint32_t state = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string source;
    const int len = 1 + static_cast<int>(state % 24);
    for (int i = 0; i < len; ++i) {
      state = state * 1664525u + 1013904223u;
      source += pieces[(state >> 8) % std::size(pieces)];
    }
    try {
      ChatTemplate tpl(source);
      (void)tpl.render({{"x", nlohmann::ordered_json::array({1, 2})}});
    } catch (const TemplateError&) {
    }
  }
}

}  // namespace
}  // namespace tandem::chat
