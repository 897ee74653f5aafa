// Request parsing: every field's mapping onto SamplingParams, prompt shapes, chat messages,
// and one 400 (with the offending field as `param`) per kind of bad input.
#include "core/json_nesting.h"
#include "server/openai_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/openai_errors.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Rejection {
  int status = 0;
  std::string message, param;
};

template <typename Fn>
Rejection rejection(Fn&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return {int(e.status()), e.what(), e.param().value_or("")};
  }
  return {0, "(accepted)", ""};
}

Rejection completion_rejection(const std::string& body) {
  return rejection([&] { parse_completion_request(body); });
}
Rejection chat_rejection(const std::string& body) {
  return rejection([&] { parse_chat_completion_request(body); });
}

TEST(OpenAiProtocol, MapsCompletionFieldsOntoSamplingParams) {
  CompletionRequest r = parse_completion_request(R"({
      "model": "m", "prompt": "Once upon", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
      "top_k": 40, "min_p": 0.05, "seed": 11, "n": 3, "stop": "\n", "stop_token_ids": [5, 6],
      "ignore_eos": true, "min_tokens": 2, "presence_penalty": 0.1, "frequency_penalty": -0.2,
      "repetition_penalty": 1.1, "logprobs": 2, "echo": true, "stream": true,
      "stream_options": {"include_usage": true}, "user": "u1", "skip_special_tokens": false,
      "include_stop_str_in_output": true, "best_of": 3, "logit_bias": {},
      "return_token_ids": true, "unknown_field": 1})");
  const SamplingParams& p = r.common.params;
  EXPECT_EQ(r.common.model, "m");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.prompts[0]), "Once upon");
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_FLOAT_EQ(p.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_EQ(p.seed, 11);
  EXPECT_EQ(r.common.n, 3);
  EXPECT_THAT(p.stop, ElementsAre("\n"));
  EXPECT_THAT(p.stop_token_ids, ElementsAre(5, 6));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_FLOAT_EQ(p.presence_penalty, 0.1f);
  EXPECT_FLOAT_EQ(p.frequency_penalty, -0.2f);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.1f);
  EXPECT_EQ(p.logprobs, 2);
  EXPECT_TRUE(p.include_stop_str_in_output);
  EXPECT_TRUE(r.common.echo);
  EXPECT_TRUE(r.common.stream);
  EXPECT_TRUE(r.common.include_usage);
  EXPECT_FALSE(r.common.skip_special_tokens);
  EXPECT_EQ(r.common.user, "u1");
  EXPECT_TRUE(r.common.return_token_ids);
  EXPECT_FALSE(parse_completion_request(R"({"prompt": "x"})").common.return_token_ids);
}

TEST(OpenAiProtocol, StartsFromTheGivenDefaultsAndTreatsNullAsUnset) {
  SamplingParams defaults;
  defaults.temperature = 0.7f;
  defaults.top_k = 20;
  CompletionRequest r = parse_completion_request(
      R"({"prompt": "x", "temperature": null, "top_k": 5, "max_tokens": null, "n": null})",
      defaults);
  EXPECT_FLOAT_EQ(r.common.params.temperature, 0.7f);
  EXPECT_EQ(r.common.params.top_k, 5);
  EXPECT_FALSE(r.common.params.max_tokens.has_value());
  EXPECT_EQ(r.common.n, 1);
  EXPECT_FALSE(r.common.model.has_value());
  EXPECT_FALSE(r.common.stream);
  EXPECT_TRUE(r.common.skip_special_tokens);
}

TEST(OpenAiProtocol, AcceptsEveryPromptShape) {
  auto prompts = [](const std::string& prompt) {
    return parse_completion_request(R"({"prompt": )" + prompt + "}").prompts;
  };
  auto texts = prompts(R"(["a", "b"])");
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(std::get<std::string>(texts[1]), "b");
  auto ids = prompts("[1, 2, 3]");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_THAT(std::get<std::vector<int32_t>>(ids[0]), ElementsAre(1, 2, 3));
  auto id_lists = prompts("[[1, 2], [3]]");
  ASSERT_EQ(id_lists.size(), 2u);
  EXPECT_THAT(std::get<std::vector<int32_t>>(id_lists[1]), ElementsAre(3));
}

TEST(OpenAiProtocol, RejectsBadCompletionRequestsNamingTheField) {
  struct Case {
    const char* body;
    const char* param;
    const char* message;
  };
  const Case cases[] = {
      {R"({"prompt": "x",)", "", "not valid JSON"},
      {R"([1, 2])", "", "must be a JSON object"},
      {R"({})", "prompt", "'prompt' is required"},
      {R"({"prompt": ""})", "prompt", "prompt cannot be empty"},
      {R"({"prompt": []})", "prompt", "non-empty"},
      {R"({"prompt": ["a", 1]})", "prompt", "not a mix"},
      {R"({"prompt": [1, -2]})", "prompt", "token ids"},
      {R"({"prompt": [[1], []]})", "prompt", "prompt cannot be empty"},
      {R"({"prompt": 5})", "prompt", "non-empty string"},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens", "'max_tokens' must be at least 1"},
      {R"({"prompt": "x", "max_tokens": "9"})", "max_tokens", "must be an integer, got \"9\""},
      {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens", "must be an integer"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature", "must be a number"},
      {R"({"prompt": "x", "return_token_ids": "yes"})", "return_token_ids", "must be a boolean"},
      {R"({"prompt": "x", "temperature": -1})", "temperature", "non-negative"},
      {R"({"prompt": "x", "top_p": 0})", "top_p", "top_p must be in (0, 1]"},
      {R"({"prompt": "x", "top_k": -5})", "top_k", "top_k"},
      {R"({"prompt": "x", "min_p": 2})", "min_p", "min_p"},
      {R"({"prompt": "x", "presence_penalty": 3})", "presence_penalty", "[-2, 2]"},
      {R"({"prompt": "x", "repetition_penalty": 0})", "repetition_penalty", "greater than 0"},
      {R"({"prompt": "x", "n": 0})", "n", "'n' must be between 1 and 128, got 0"},
      {R"({"prompt": "x", "n": 129})", "n", "'n' must be between 1 and 128, got 129"},
      {R"({"prompt": "x", "best_of": 4})", "best_of", "not supported"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs", "between 0 and 20"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs", "must be an integer"},
      {R"({"prompt": "x", "stop": 3})", "stop", "a string or a list of strings"},
      {R"({"prompt": "x", "stop": ["a", ""]})", "stop", "stop[1] must not be an empty string"},
      {R"({"prompt": "x", "stop_token_ids": [-1]})", "stop_token_ids", "between 0 and"},
      {R"({"prompt": "x", "min_tokens": 5, "max_tokens": 2})", "min_tokens", "min_tokens"},
      {R"({"prompt": "x", "stream": "yes"})", "stream", "must be a boolean"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options",
       "only be set when 'stream' is true"},
      {R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": 1}})",
       "stream_options.include_usage", "must be a boolean"},
      {R"({"prompt": "x", "seed": 1e30})", "seed", "must be an integer"},
      {R"({"prompt": "x", "seed": 18446744073709551615})", "seed", "out of range"},
      {R"({"prompt": "x", "logit_bias": {"5": 10}})", "logit_bias", "not supported"},
      {R"({"prompt": "x", "suffix": "end"})", "suffix", "not supported"},
      {R"({"prompt": "x", "model": 7})", "model", "must be a string"},
  };
  for (const Case& c : cases) {
    Rejection r = completion_rejection(c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(r.param, c.param) << c.body;
    EXPECT_THAT(r.message, HasSubstr(c.message)) << c.body;
  }
}

TEST(OpenAiProtocol, ParsesChatRequests) {
  ChatCompletionRequest r = parse_chat_completion_request(R"({
      "model": "m",
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                     {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
          "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}
      ],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
      "tool_choice": "auto", "max_tokens": 3, "max_completion_tokens": 5, "logprobs": true,
      "top_logprobs": 4, "chat_template_kwargs": {"enable_thinking": false}})");
  EXPECT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1]["content"], "Hi\nthere");
  EXPECT_TRUE(r.messages[2]["content"].is_null());
  EXPECT_EQ(r.messages[2]["tool_calls"][0]["function"]["arguments"]["x"], 1);
  EXPECT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.common.params.max_tokens, 5);  // max_completion_tokens wins
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.common.params.logprobs, 4);
  EXPECT_EQ(r.template_kwargs["enable_thinking"], false);
  EXPECT_TRUE(r.add_generation_prompt);

  ChatCompletionRequest plain = parse_chat_completion_request(
      R"({"messages": [{"role": "user", "content": "x"}], "logprobs": false})");
  EXPECT_FALSE(plain.common.params.logprobs.has_value());
  EXPECT_TRUE(plain.tools.is_null());
}

TEST(OpenAiProtocol, RejectsBadChatRequests) {
  struct Case {
    const char* body;
    const char* param;
    const char* message;
  };
  const Case cases[] = {
      {R"({})", "messages", "'messages' is required"},
      {R"({"messages": []})", "messages", "non-empty list"},
      {R"({"messages": "hi"})", "messages", "non-empty list"},
      {R"({"messages": [3]})", "messages", "messages[0] must be an object"},
      {R"({"messages": [{"content": "x"}]})", "messages", "messages[0].role is required"},
      {R"({"messages": [{"role": 1, "content": "x"}]})", "messages[0].role", "must be a string"},
      {R"({"messages": [{"role": "hacker", "content": "x"}]})", "messages",
       "messages[0].role must be one of 'system', 'developer', 'user', 'assistant'"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "", "content": "y"}]})",
       "messages", "messages[1].role must be one of"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages", "must be a string, null"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages",
       "must be a text part"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs",
       "'logprobs' must be set to true"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true,
           "top_logprobs": 30})",
       "top_logprobs", "between 0 and 20"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": {}})", "tools",
       "must be a list"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [],
           "tool_choice": "required"})",
       "tool_choice", "not supported"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"})",
       "tool_choice", "'tools' must be set"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})",
       "max_completion_tokens", "at least 1"},
      {R"({"messages": [{"role": "user", "content": "x"}],
           "response_format": {"type": "json_object"}})",
       "response_format", "not supported"},
      {R"({"messages": [{"role": "user", "content": "x"}], "chat_template": "{{ 1 }}"})",
       "chat_template", "not supported"},
      {R"({"messages": [{"role": "user", "content": "x"}], "continue_final_message": true})",
       "continue_final_message", "cannot both be true"},
  };
  for (const Case& c : cases) {
    Rejection r = chat_rejection(c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(r.param, c.param) << c.body;
    EXPECT_THAT(r.message, HasSubstr(c.message)) << c.body;
  }
}

TEST(OpenAiProtocol, RejectsBodiesNestedTooDeeplyBeforeParsingThem) {
  auto nested = [](size_t depth) {
    return R"({"prompt": "a", "x": )" + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  EXPECT_NO_THROW((void)parse_completion_request(nested(kMaxJsonNesting - 1)));
  for (size_t depth : {kMaxJsonNesting, size_t(1) << 20}) {
    try {
      (void)parse_completion_request(nested(depth));
      ADD_FAILURE() << depth << " levels were accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(int(e.status()), 400);
      EXPECT_THAT(e.what(), HasSubstr("more than 128 levels deep"));
    }
  }
  // Brackets inside strings are text, not nesting.
  EXPECT_NO_THROW((void)parse_completion_request(
      R"({"prompt": ")" + std::string(100000, '[') + R"(\"{"})"));
}

TEST(OpenAiProtocol, ParsesTokenizeAndDetokenizeRequests) {
  TokenizeRequest t = parse_tokenize_request(R"({"model": "m", "prompt": "hello"})");
  EXPECT_EQ(t.prompt, "hello");
  EXPECT_TRUE(t.add_special_tokens);
  TokenizeRequest chat = parse_tokenize_request(
      R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false,
          "return_token_strs": true})");
  EXPECT_FALSE(chat.prompt.has_value());
  EXPECT_FALSE(chat.add_special_tokens);
  EXPECT_FALSE(chat.add_generation_prompt);
  EXPECT_TRUE(chat.return_token_strs);
  EXPECT_THAT(parse_detokenize_request(R"({"tokens": [1, 2]})").tokens, ElementsAre(1, 2));

  EXPECT_EQ(rejection([] { parse_tokenize_request("{}"); }).param, "prompt");
  EXPECT_EQ(rejection([] { parse_tokenize_request(R"({"prompt": "a", "messages": []})"); }).param,
            "messages");
  EXPECT_EQ(rejection([] { parse_detokenize_request("{}"); }).param, "tokens");
  EXPECT_EQ(rejection([] { parse_detokenize_request(R"({"tokens": [1, "a"]})"); }).param, "tokens");
}

TEST(OpenAiProtocol, DumpsInvalidUtf8WithoutThrowing) {
  OrderedJson j = {{"text", std::string("a\xff")}};
  EXPECT_EQ(dump_json(j), "{\"text\":\"a\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace tandem
