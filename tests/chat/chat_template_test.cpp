// The public API: render_chat's variables (as transformers passes them), option handling,
// parse-once/render-many and concurrent renders of one template.
#include "chat/chat_template.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::chat {
namespace {

using Json = nlohmann::ordered_json;

Json user(const std::string& text) { return Json{{"role", "user"}, {"content", text}}; }

TEST(ChatTemplateApi, RenderChatPassesTransformersVariables) {
  const ChatTemplate tpl(
      "{{ bos_token is defined }}|{{ eos_token }}|{{ tools is none }}|{{ documents is none }}|"
      "{{ add_generation_prompt }}|{{ messages|length }}|{{ custom }}");
  ChatInput input;
  input.messages = Json::array({user("a"), user("b")});
  input.eos_token = "</s>";
  input.extra = Json{{"custom", 42}};
  EXPECT_EQ(render_chat(tpl, input), "False|</s>|True|True|True|2|42");
  input.generation_prompt = GenerationPrompt::kOmit;
  input.bos_token = "<s>";
  input.tools = Json::array({Json{{"type", "function"}}});
  input.documents = Json::array({Json{{"title", "t"}}});
  EXPECT_EQ(render_chat(tpl, input), "True|</s>|False|False|False|2|42");
}

TEST(ChatTemplateApi, ExtraVariablesMayOverrideTokensButNotReservedNames) {
  const ChatTemplate tpl("{{ bos_token }}");
  ChatInput input;
  input.bos_token = "<s>";
  input.extra = Json{{"bos_token", "<BOS>"}};
  EXPECT_EQ(render_chat(tpl, input), "<BOS>");
  for (const char* reserved : {"messages", "tools", "documents", "add_generation_prompt"}) {
    input.extra = Json{{reserved, 1}};
    EXPECT_THROW((void)render_chat(tpl, input), TemplateError) << reserved;
  }
  input.extra = Json::array();
  EXPECT_THROW((void)render_chat(tpl, input), TemplateError);
}

TEST(ChatTemplateApi, ContextMustBeAnObject) {
  const ChatTemplate tpl("x");
  EXPECT_THROW((void)tpl.render(Json::array()), TemplateError);
  EXPECT_EQ(tpl.render(Json::object()), "x");
}

TEST(ChatTemplateApi, RaiseExceptionCarriesMessageAndLine) {
  const ChatTemplate tpl(
      "line one\n{% if messages|length == 0 %}\n"
      "{{ raise_exception('No messages!') }}{% endif %}");
  ChatInput input;
  try {
    (void)render_chat(tpl, input);
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(e.message(), "No messages!");
    EXPECT_EQ(e.line(), 3);
  }
}

TEST(ChatTemplateApi, StrftimeNowUsesTheClock) {
  const ChatTemplate tpl(
      "{{ strftime_now('%Y') }}|{{ strftime_now('%z%Z') }}|"
      "{{ strftime_now('%f')|length }}|{{ strftime_now('') }}");
  RenderOptions options;
  options.now = 1700000000;  // 2023-11-14 UTC: the same year in every time zone
  EXPECT_EQ(tpl.render(Json::object(), options), "2023||6|");
  const std::string now = ChatTemplate("{{ strftime_now('%Y') }}").render(Json::object());
  EXPECT_GE(std::stoi(now), 2024);
}

TEST(ChatTemplateApi, ParseOnceRenderMany) {
  const ChatTemplate tpl(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}");
  EXPECT_EQ(tpl.source().substr(0, 6), "{% for");
  for (int i = 0; i < 50; ++i) {
    ChatInput input;
    input.messages = Json::array({user(std::to_string(i))});
    EXPECT_EQ(render_chat(tpl, input), fmt::format("<user>{}<assistant>", i));
  }
}

TEST(ChatTemplateApi, ConcurrentRendersAgree) {
  // Namespaces, macros and loop state are per render: threads sharing one template must not
  // interfere.
  const ChatTemplate tpl(
      "{% set ns = namespace(total=0) %}{% macro show(m) %}[{{ m.role }}:{{ m.content }}]"
      "{% endmacro %}{% for m in messages %}{% set ns.total = ns.total + m.content|length %}"
      "{{ show(m) }}{% endfor %}={{ ns.total }}");
  const auto input_for = [](int i) {
    ChatInput input;
    for (int k = 0; k <= i % 7; ++k) input.messages.push_back(user(std::string(k + i % 3, 'x')));
    return input;
  };
  std::vector<std::string> expected;
  for (int i = 0; i < 64; ++i) expected.push_back(render_chat(tpl, input_for(i)));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (int i = t; i < 64; i += 8)
          if (render_chat(tpl, input_for(i)) != expected[static_cast<size_t>(i)]) ++mismatches[t];
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace tandem::chat
