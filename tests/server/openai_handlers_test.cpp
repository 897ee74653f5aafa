// The OpenAI handlers over a scripted engine (exact, deterministic outputs): response shapes,
// streaming == non-streaming, stop strings cut as OpenAI does, logprobs shapes, n x prompts,
// echo, usage, errors, and aborts when a stop string hits or the client goes away.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "fake_engine.h"
#include "server_fixture.h"

namespace tandem::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const char* kScriptText =
    "Once upon a time, there was a little girl named Lily. She liked to play.";

class HandlersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = new Tokenizer(Tokenizer::load(golden_model("stories260K")));
  }
  static void TearDownTestSuite() { delete tokenizer_; }

  void SetUp() override {
    for (int id : tokenizer_->encode(kScriptText, false)) script_.push_back(id);
    engine_ = std::make_unique<FakeEngine>(script_, std::vector<int32_t>{2});
    ServedModel model = stories_model();
    model.names = {"stories", "alias"};
    model.root = golden_model("stories260K").string();
    model.created = 1700000000;
    server_ = std::make_unique<TestServer>(*engine_, *tokenizer_, model);
  }

  // The served stories260K of tests that start their own FakeEngine and TestServer.
  static ServedModel stories_model() {
    ServedModel model;
    model.names = {"stories"};
    model.max_model_len = 512;
    model.vocab_size = 512;
    model.eos_token_ids = {2};
    return model;
  }

  // The text the script's first k tokens add after `prompt` (the tokenizer is the oracle).
  std::string script_text(const std::string& prompt, size_t k, bool add_special = true) const {
    std::vector<int> prompt_ids = tokenizer_->encode(prompt, add_special);
    std::vector<int> all = prompt_ids;
    for (size_t i = 0; i < k; ++i) all.push_back(script_[i % script_.size()]);  // as FakeEngine
    return tokenizer_->decode(all, true).substr(tokenizer_->decode(prompt_ids, true).size());
  }

  static Tokenizer* tokenizer_;
  std::vector<int32_t> script_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<TestServer> server_;
};

Tokenizer* HandlersTest::tokenizer_ = nullptr;

std::string streamed_text(const std::vector<json>& chunks, int index, bool chat) {
  std::string text;
  for (const json& c : chunks) {
    for (const json& choice : c["choices"]) {
      if (choice["index"] != index) continue;
      text += chat ? choice["delta"].value("content", "") : choice["text"].get<std::string>();
    }
  }
  return text;
}

TEST_F(HandlersTest, CompletionHasOpenAiShapeAndUsage) {
  HttpReply r = server_->post("/v1/completions",
                              {{"model", "stories"}, {"prompt", "Hello"}, {"max_tokens", 5}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_THAT(r.body["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(r.body["object"], "text_completion");
  EXPECT_TRUE(r.body["created"].is_number_integer());
  EXPECT_EQ(r.body["model"], "stories");
  ASSERT_EQ(r.body["choices"].size(), 1u);
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], script_text("Hello", 5));
  EXPECT_TRUE(c["logprobs"].is_null());
  EXPECT_EQ(c["finish_reason"], "length");
  int prompt_tokens = int(tokenizer_->encode("Hello", true).size());
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 5);
  EXPECT_EQ(r.body["usage"]["total_tokens"], prompt_tokens + 5);
  // The engine got the tokenized prompt (BOS included) and the parsed params.
  auto sent = engine_->received();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].prompt_ids.front(), 1);
  EXPECT_EQ(sent[0].params.max_tokens, 5);
}

TEST_F(HandlersTest, CompletionDefaultsTo16TokensAndAcceptsTheAlias) {
  HttpReply r = server_->post("/v1/completions", {{"model", "alias"}, {"prompt", "Hi"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["model"], "alias");
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 16);
}

TEST_F(HandlersTest, StreamingMatchesNonStreamingOneChunkPerToken) {
  json body = {{"prompt", "Hello"}, {"max_tokens", 8}};
  HttpReply whole = server_->post("/v1/completions", body);
  body["stream"] = true;
  StreamReply s = server_->stream("/v1/completions", body);
  ASSERT_EQ(s.status, 200);
  auto chunks = parse_chunks(s);
  ASSERT_EQ(chunks.size(), 8u);  // one per token
  EXPECT_EQ(streamed_text(chunks, 0, false), whole.body["choices"][0]["text"]);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i]["object"], "text_completion");
    EXPECT_EQ(chunks[i]["id"], chunks[0]["id"]);
    EXPECT_FALSE(chunks[i].contains("usage"));
    EXPECT_EQ(chunks[i]["choices"][0]["finish_reason"],
              i + 1 == chunks.size() ? json("length") : json(nullptr));
  }
}

TEST_F(HandlersTest, StreamEndsWithAUsageChunkWhenAsked) {
  StreamReply s =
      server_->stream("/v1/completions", {{"prompt", "Hello"},
                                          {"max_tokens", 3},
                                          {"stream", true},
                                          {"stream_options", {{"include_usage", true}}}});
  auto chunks = parse_chunks(s);
  ASSERT_EQ(chunks.size(), 4u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(chunks[i]["usage"].is_null());
  EXPECT_TRUE(chunks[3]["choices"].empty());
  EXPECT_EQ(chunks[3]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(chunks[3]["usage"]["total_tokens"], 3 + int(tokenizer_->encode("Hello", true).size()));
}

TEST_F(HandlersTest, StopStringsCutTheTextAndAbortTheEngineRequest) {
  std::string full = script_text("Hello", 30);
  size_t at = full.find("little");
  ASSERT_NE(at, std::string::npos);
  json body = {{"prompt", "Hello"}, {"max_tokens", 30}, {"stop", {"zebra", "little"}}};
  HttpReply whole = server_->post("/v1/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  const json& c = whole.body["choices"][0];
  EXPECT_EQ(c["text"], full.substr(0, at));
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_EQ(c["stop_reason"], "little");
  EXPECT_LT(whole.body["usage"]["completion_tokens"].get<int>(), 30);
  EXPECT_EQ(engine_->aborted().size(), 1u);  // stopped by the server, not the engine

  body["stream"] = true;
  auto chunks = parse_chunks(server_->stream("/v1/completions", body));
  EXPECT_EQ(streamed_text(chunks, 0, false), full.substr(0, at));
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "stop");
  for (const json& chunk : chunks) {  // nothing of the stop string ever went out
    EXPECT_EQ(chunk["choices"][0]["text"].get<std::string>().find("lit"), std::string::npos);
  }

  body["stream"] = false;
  body["include_stop_str_in_output"] = true;
  HttpReply with_stop = server_->post("/v1/completions", body);
  EXPECT_EQ(with_stop.body["choices"][0]["text"], full.substr(0, at + 6));
}

TEST_F(HandlersTest, StopTokenIdsAndEosFinishWithStop) {
  HttpReply r =
      server_->post("/v1/completions",
                    {{"prompt", "Hello"}, {"max_tokens", 30}, {"stop_token_ids", {script_[3]}}});
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_EQ(c["stop_reason"], script_[3]);
  EXPECT_EQ(c["text"], script_text("Hello", 3));  // the stop token's text is not included
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 4);
}

TEST_F(HandlersTest, TextHeldBeforeAnEosIsNotLost) {
  // "a 😊" ends in a byte-fallback run, which the detokenizer holds until it knows the run is
  // complete; the EOS that follows must release it, not drop it with its own text.
  std::vector<int32_t> script;
  for (int id : tokenizer_->encode("Hi a \xF0\x9F\x98\x8A", false)) script.push_back(id);
  script.push_back(2);
  FakeEngine engine(script, {2});
  TestServer server(engine, *tokenizer_, stories_model());
  json body = {{"prompt", "Hello"}, {"max_tokens", 50}};
  HttpReply r = server.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], " Hi a \xF0\x9F\x98\x8A");
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r.body["usage"]["completion_tokens"], int(script.size()));
  body["stream"] = true;
  EXPECT_EQ(streamed_text(parse_chunks(server.stream("/v1/completions", body)), 0, false),
            " Hi a \xF0\x9F\x98\x8A");
}

TEST_F(HandlersTest, FansOutPromptsTimesNWithPromptMajorIndices) {
  HttpReply r = server_->post(
      "/v1/completions", {{"prompt", {"Hello", "Once"}}, {"n", 3}, {"max_tokens", 2}, {"seed", 7}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["choices"].size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const json& c = r.body["choices"][i];
    EXPECT_EQ(c["index"], i);
    EXPECT_EQ(c["text"], script_text(i < 3 ? "Hello" : "Once", 2));
  }
  int prompt_tokens =
      int(tokenizer_->encode("Hello", true).size() + tokenizer_->encode("Once", true).size());
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], prompt_tokens);  // each prompt once
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 12);
  std::set<int64_t> seeds;
  for (const auto& req : engine_->received()) seeds.insert(*req.params.seed);
  EXPECT_EQ(seeds, (std::set<int64_t>{7, 8, 9}));  // sample i gets seed + i

  json body = {
      {"prompt", {{1, 400, 401}, {1, 402}}}, {"n", 2}, {"max_tokens", 3}, {"stream", true}};
  auto chunks = parse_chunks(server_->stream("/v1/completions", body));
  EXPECT_EQ(chunks.size(), 12u);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(streamed_text(chunks, i, false).empty());
}

// vLLM's return_token_ids: each choice carries its prompt's ids and the generated ids, whole or
// streamed (the prompt's in a choice's first chunk); a prompt given as ids comes back as given.
TEST_F(HandlersTest, ReturnTokenIdsGivesPromptAndGeneratedIds) {
  const std::vector<int> prompt_ids = tokenizer_->encode("Hello", true);
  const std::vector<int32_t> generated(script_.begin(), script_.begin() + 4);
  json body = {{"prompt", "Hello"}, {"max_tokens", 4}, {"n", 2}, {"return_token_ids", true}};
  HttpReply whole = server_->post("/v1/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  for (const json& c : whole.body["choices"]) {
    EXPECT_EQ(c["prompt_token_ids"], json(prompt_ids));
    EXPECT_EQ(c["token_ids"], json(generated));
  }
  body["stream"] = true;
  auto chunks = parse_chunks(server_->stream("/v1/completions", body));
  for (int index : {0, 1}) {
    std::vector<int32_t> streamed;
    int with_prompt = 0;
    for (const json& chunk : chunks) {
      const json& c = chunk["choices"][0];
      if (c["index"] != index) continue;
      if (c.contains("prompt_token_ids")) {
        ++with_prompt;
        EXPECT_TRUE(streamed.empty()) << "the prompt's ids come with the choice's first chunk";
        EXPECT_EQ(c["prompt_token_ids"], json(prompt_ids));
      }
      for (const json& id : c["token_ids"]) streamed.push_back(id.get<int32_t>());
    }
    EXPECT_EQ(with_prompt, 1) << index;
    EXPECT_EQ(streamed, generated) << index;
  }
  HttpReply by_ids = server_->post(
      "/v1/completions", {{"prompt", prompt_ids}, {"max_tokens", 4}, {"return_token_ids", true}});
  ASSERT_EQ(by_ids.status, 200) << by_ids.raw;
  EXPECT_EQ(by_ids.body["choices"][0]["prompt_token_ids"], json(prompt_ids));
  EXPECT_EQ(by_ids.body["choices"][0]["text"], whole.body["choices"][0]["text"]);
  // Without the field the response has neither.
  HttpReply plain = server_->post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 2}});
  EXPECT_FALSE(plain.body["choices"][0].contains("token_ids"));
  EXPECT_FALSE(plain.body["choices"][0].contains("prompt_token_ids"));
  // Chat has no such field here: a clear 400, not a silently different answer.
  HttpReply chat = server_->post(
      "/v1/chat/completions", {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                               {"return_token_ids", true}});
  EXPECT_EQ(chat.status, 400);
  EXPECT_EQ(chat.body["error"]["param"], "return_token_ids");
}

TEST_F(HandlersTest, EchoPrependsThePrompt) {
  HttpReply r =
      server_->post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 3}, {"echo", true}});
  EXPECT_EQ(r.body["choices"][0]["text"], "Hello" + script_text("Hello", 3));
  auto chunks = parse_chunks(
      server_->stream("/v1/completions",
                      {{"prompt", "Hello"}, {"max_tokens", 3}, {"echo", true}, {"stream", true}}));
  EXPECT_EQ(streamed_text(chunks, 0, false), "Hello" + script_text("Hello", 3));
}

TEST_F(HandlersTest, CompletionLogprobsHaveTheLegacyShape) {
  HttpReply r =
      server_->post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 4}, {"logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& lp = r.body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 4u);
  ASSERT_EQ(lp["token_logprobs"].size(), 4u);
  ASSERT_EQ(lp["top_logprobs"].size(), 4u);
  ASSERT_EQ(lp["text_offset"].size(), 4u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  int64_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    std::string token = lp["tokens"][i];
    int id = script_[i];
    EXPECT_EQ(token, tokenizer_->decode(std::vector<int>{id}, false));
    EXPECT_FLOAT_EQ(lp["token_logprobs"][i].get<float>(), -0.25f);
    EXPECT_TRUE(lp["top_logprobs"][i].is_object());
    EXPECT_LE(lp["top_logprobs"][i].size(), 3u);  // the sampled token + up to 2
    EXPECT_TRUE(lp["top_logprobs"][i].contains(token));
    EXPECT_EQ(lp["text_offset"][i], offset);
    offset += int64_t(token.size());  // ASCII here
  }
  auto chunks = parse_chunks(
      server_->stream("/v1/completions",
                      {{"prompt", "Hello"}, {"max_tokens", 4}, {"logprobs", 2}, {"stream", true}}));
  ASSERT_EQ(chunks.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const json& clp = chunks[i]["choices"][0]["logprobs"];
    EXPECT_EQ(clp["tokens"][0], lp["tokens"][i]);
    EXPECT_EQ(clp["text_offset"][0], lp["text_offset"][i]);
  }
}

TEST_F(HandlersTest, ChatCompletionRendersTheTemplateAndHasChatShape) {
  json messages = {{{"role", "user"}, {"content", "Tell me a story"}}};
  HttpReply r = server_->post("/v1/chat/completions",
                              {{"model", "stories"}, {"messages", messages}, {"max_tokens", 6}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_THAT(r.body["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(r.body["object"], "chat.completion");
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_TRUE(c["logprobs"].is_null());
  std::string prompt =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
      "<|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\n";
  auto sent = engine_->received();
  std::vector<int> expected_ids = tokenizer_->encode(prompt, false);
  EXPECT_EQ(std::vector<int>(sent[0].prompt_ids.begin(), sent[0].prompt_ids.end()), expected_ids);
  EXPECT_EQ(c["message"]["content"], script_text(prompt, 6, false));
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], int(expected_ids.size()));
}

TEST_F(HandlersTest, ChatStreamStartsWithTheRoleAndMatchesNonStreaming) {
  json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 5}, {"n", 2}};
  HttpReply whole = server_->post("/v1/chat/completions", body);
  body["stream"] = true;
  auto chunks = parse_chunks(server_->stream("/v1/chat/completions", body));
  ASSERT_EQ(chunks.size(), 2u + 10u);  // a role chunk per choice, then one per token
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(chunks[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(chunks[i]["choices"][0]["index"], i);
    EXPECT_EQ(chunks[i]["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(streamed_text(chunks, i, true), whole.body["choices"][i]["message"]["content"]);
  }
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "length");
}

TEST_F(HandlersTest, ChatLogprobsHaveTheContentShape) {
  HttpReply r =
      server_->post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                             {"max_tokens", 3},
                                             {"logprobs", true},
                                             {"top_logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& content = r.body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  for (const json& entry : content) {
    std::string token = entry["token"];
    EXPECT_FLOAT_EQ(entry["logprob"].get<float>(), -0.25f);
    ASSERT_EQ(entry["bytes"].size(), token.size());
    ASSERT_EQ(entry["top_logprobs"].size(), 2u);
    EXPECT_TRUE(entry["top_logprobs"][0].contains("bytes"));
  }
}

TEST_F(HandlersTest, TokenizeAndDetokenizeUseVllmShapes) {
  HttpReply t =
      server_->post("/tokenize", {{"prompt", "Once upon a time"}, {"return_token_strs", true}});
  ASSERT_EQ(t.status, 200) << t.raw;
  std::vector<int> ids = tokenizer_->encode("Once upon a time", true);
  EXPECT_EQ(t.body["tokens"], json(ids));
  EXPECT_EQ(t.body["count"], ids.size());
  EXPECT_EQ(t.body["max_model_len"], 512);
  EXPECT_EQ(t.body["token_strs"][0], "<s>");
  HttpReply d = server_->post("/detokenize", {{"tokens", ids}});
  EXPECT_EQ(d.body["prompt"], tokenizer_->decode(ids, false));

  HttpReply chat =
      server_->post("/tokenize", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  EXPECT_EQ(chat.body["tokens"],
            json(tokenizer_->encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>"
                                    "\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                                    false)));
  EXPECT_TRUE(chat.body["token_strs"].is_null());
  EXPECT_EQ(server_->post("/detokenize", {{"tokens", {1, 9999}}}).status, 400);
}

TEST_F(HandlersTest, ModelsHealthVersionAndMetrics) {
  HttpReply m = server_->get("/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body["object"], "list");
  ASSERT_EQ(m.body["data"].size(), 2u);
  EXPECT_EQ(m.body["data"][0]["id"], "stories");
  EXPECT_EQ(m.body["data"][0]["object"], "model");
  EXPECT_EQ(m.body["data"][0]["max_model_len"], 512);
  EXPECT_EQ(m.body["data"][1]["id"], "alias");
  HttpReply h = server_->get("/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_TRUE(h.raw.empty());
  EXPECT_EQ(server_->get("/version").body["version"], kTandemVersion);
  server_->post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 2}});
  HttpReply metrics = server_->get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.raw, HasSubstr("tandem:kv_blocks_total{model_name=\"stories\"} 1000\n"));
  EXPECT_THAT(metrics.raw, HasSubstr("tandem:request_success_total{model_name=\"stories\","
                                     "finished_reason=\"length\"} 1\n"));
  EXPECT_THAT(metrics.raw, HasSubstr("tandem:time_to_first_token_seconds_count"
                                     "{model_name=\"stories\"} 1\n"));
}

struct BadRequest {
  const char* path;
  json body;
  int status;
  const char* param;
  const char* message;
};

TEST_F(HandlersTest, RejectsBadRequestsWithOpenAiErrors) {
  json user = {{{"role", "user"}, {"content", "Hi"}}};
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += " time";
  const BadRequest cases[] = {
      {"/v1/completions", {{"model", "gpt-4"}, {"prompt", "x"}}, 404, "model", "does not exist"},
      {"/v1/chat/completions",
       {{"model", "gpt-4"}, {"messages", user}},
       404,
       "model",
       "does not exist"},
      {"/v1/completions", {{"prompt", "x"}, {"max_tokens", 0}}, 400, "max_tokens", "at least 1"},
      {"/v1/completions",
       {{"prompt", "x"}, {"max_tokens", 600}},
       400,
       "max_tokens",
       "maximum context length is 512 tokens"},
      {"/v1/completions",
       {{"prompt", long_prompt}},
       400,
       "max_tokens",
       "maximum context length is 512 tokens"},
      {"/v1/completions", {{"prompt", {1, 512}}}, 400, "prompt", "out of vocabulary"},
      {"/v1/completions", {{"prompt", ""}}, 400, "prompt", "cannot be empty"},
      {"/v1/completions", {{"prompt", {"a", "b"}}, {"n", 100}}, 400, "n", "200 choices"},
      {"/v1/completions",
       {{"prompt", "x"}, {"n", 100}, {"max_tokens", 400}},
       400,
       "n",
       "KV-cache blocks"},
      {"/v1/completions", {{"prompt", "x"}, {"top_p", 5}}, 400, "top_p", "top_p"},
      {"/v1/completions",
       {{"prompt", "x"}, {"echo", true}, {"logprobs", 1}},
       400,
       "echo",
       "not supported"},
      {"/v1/chat/completions",
       {{"messages", {{{"role", "user"}}}}},
       400,
       "messages",
       "chat template"},
      {"/tokenize", {{"model", "nope"}, {"prompt", "x"}}, 404, "model", "does not exist"},
  };
  for (const BadRequest& c : cases) {
    HttpReply r = server_->post(c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.body.dump() << " -> " << r.raw;
    ASSERT_TRUE(r.body.contains("error")) << r.raw;
    EXPECT_EQ(r.body["error"]["type"], "invalid_request_error");
    EXPECT_EQ(r.body["error"]["param"], c.param) << r.raw;
    EXPECT_THAT(r.body["error"]["message"].get<std::string>(), HasSubstr(c.message)) << r.raw;
  }
  HttpReply malformed = server_->post_raw("/v1/completions", "{\"prompt\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body["error"]["message"].get<std::string>(), HasSubstr("not valid JSON"));
  EXPECT_TRUE(engine_->received().empty());  // nothing bad reached the engine
}

TEST_F(HandlersTest, ClientDisconnectAbortsTheEngineRequests) {
  // 400 tokens at 10 ms a step: the requests outlast the disconnect on a loaded machine.
  FakeEngine engine(script_, {2}, 16, 1000, std::chrono::milliseconds(10));
  TestServer server(engine, *tokenizer_, stories_model());
  json body = {
      {"prompt", "Hello"}, {"max_tokens", 400}, {"n", 2}, {"ignore_eos", true}, {"stream", true}};
  StreamReply s = server.stream("/v1/completions", body, /* max_events = */ 3);
  EXPECT_GE(s.events.size(), 3u);  // one read may carry several events
  for (int i = 0; i < 200 * kLatencyScale && engine.num_live() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine.num_live(), 0u);
  EXPECT_EQ(engine.aborted().size(), 2u);
}

}  // namespace
}  // namespace tandem::test
