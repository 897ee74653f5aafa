// The OpenAI server over the real LlmEngine on stories260K: greedy outputs equal the golden
// run and the single-sequence Generator (alone and with 32 different requests at once), stop
// strings cut exactly, streaming equals non-streaming, and 64 concurrent streaming clients,
// some disconnecting midway, finish cleanly with every KV block freed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <regex>
#include <thread>

#include "backend/cpu_backend.h"
#include "core/thread_pool.h"
#include "engine/generator.h"
#include "engine/llm_engine.h"
#include "model/llama_model.h"
#include "server/serving_setup.h"
#include "server_fixture.h"

namespace tandem::test {
namespace {

using ::testing::HasSubstr;

struct GoldenCase {
  std::string prompt;
  std::vector<int32_t> prompt_ids, greedy_ids;
  std::string greedy_text;  // the continuation as a server returns it (see golden_cases)
};

std::vector<GoldenCase> golden_cases() {
  static const std::vector<GoldenCase> cases = [] {
    auto j = read_json_file(shared_dir() / "golden" / "logits" / "stories260K.json");
    Tokenizer tokenizer = Tokenizer::load(golden_model("stories260K"));
    std::vector<GoldenCase> out;
    for (const auto& c : j.at("cases")) {
      GoldenCase g{c.at("prompt"), c.at("prompt_ids"), c.at("greedy_ids"), ""};
      // The golden greedy_text decodes the generated ids alone, which drops the leading space
      // SentencePiece strips at the start of a text; after the prompt the space stays (as in
      // vLLM): decode(prompt + generated) minus decode(prompt).
      std::vector<int> prompt(g.prompt_ids.begin(), g.prompt_ids.end()), all = prompt;
      all.insert(all.end(), g.greedy_ids.begin(), g.greedy_ids.end());
      std::string prompt_text = tokenizer.decode(prompt, true);
      g.greedy_text = tokenizer.decode(all, true).substr(prompt_text.size());
      std::string golden_text = c.at("greedy_text");
      EXPECT_TRUE(g.greedy_text == golden_text || g.greedy_text == " " + golden_text)
          << g.greedy_text << " vs golden " << golden_text;
      out.push_back(std::move(g));
    }
    return out;
  }();
  return cases;
}

class ServerE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineConfig config;
    config.model_dir = golden_model("stories260K");
    config.num_threads = 2;
    config.kv_cache_memory_bytes = 16 << 20;  // ~800 blocks of 16 tokens
    engine_ = new LlmEngine(config);
    assets_ = new ModelAssets(load_model_assets(
        config, engine_->model_config(), {{"stories"}, config.model_dir.string(), std::nullopt}));
    client_ = new LlmEngineClient(*engine_);
    engine_->start();
    server_ = new TestServer(*client_, *assets_->tokenizer, assets_->model);
  }
  static void TearDownTestSuite() {
    delete server_;
    engine_->stop();
    delete client_;
    delete assets_;
    delete engine_;
  }

  // The single-sequence reference path (no batching, no server).
  static GenerationResult reference(const std::vector<int32_t>& prompt_ids,
                                    const SamplingParams& params) {
    static ThreadPool pool(2);
    static CpuBackend model(golden_model("stories260K"), &pool);
    Generator generator(model, assets_->tokenizer.get(), &pool);
    return generator.generate(prompt_ids, params);
  }

  static double metric(const std::string& name) {
    std::string text = server_->get("/metrics").raw;
    std::smatch m;
    std::regex re(name + "\\{model_name=\"stories\"\\} ([0-9.e+-]+)");
    if (!std::regex_search(text, m, re)) return -1;
    return std::stod(m[1]);
  }

  // Waits for the engine to go idle and return its blocks; the last kv_blocks_used seen.
  static double settle() {
    double used = -1;
    for (int i = 0; i < 300; ++i) {
      used = metric("tandem:kv_blocks_used");
      if (used == 0 && metric("tandem:num_requests_running") == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return used;
  }

  static LlmEngine* engine_;
  static ModelAssets* assets_;
  static LlmEngineClient* client_;
  static TestServer* server_;
};

LlmEngine* ServerE2eTest::engine_ = nullptr;
ModelAssets* ServerE2eTest::assets_ = nullptr;
LlmEngineClient* ServerE2eTest::client_ = nullptr;
TestServer* ServerE2eTest::server_ = nullptr;

json greedy_body(const json& prompt, int max_tokens) {
  return {{"model", "stories"},
          {"prompt", prompt},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"ignore_eos", true}};
}

std::string joined_text(const std::vector<json>& chunks, int index) {
  std::string text;
  for (const json& c : chunks) {
    for (const json& choice : c["choices"]) {
      if (choice["index"] == index) text += choice["text"].get<std::string>();
    }
  }
  return text;
}

TEST_F(ServerE2eTest, GreedyOutputEqualsGoldenAndTheSingleSequenceEngine) {
  for (const GoldenCase& g : golden_cases()) {
    SCOPED_TRACE(g.prompt);
    HttpReply r = server_->post("/v1/completions", greedy_body(g.prompt, 64));
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["text"], g.greedy_text);
    EXPECT_EQ(r.body["usage"]["prompt_tokens"], g.prompt_ids.size());
    EXPECT_EQ(r.body["usage"]["completion_tokens"], 64);
    SamplingParams p;
    p.temperature = 0;
    p.max_tokens = 64;
    p.ignore_eos = true;
    GenerationResult ref = reference(g.prompt_ids, p);
    EXPECT_EQ(ref.generated_ids, g.greedy_ids);
    EXPECT_EQ(r.body["choices"][0]["text"], ref.text);
    // Token-id prompts give the same result.
    HttpReply ids = server_->post("/v1/completions", greedy_body(g.prompt_ids, 64));
    EXPECT_EQ(ids.body["choices"][0]["text"], g.greedy_text);
  }
}

TEST_F(ServerE2eTest, ThirtyTwoConcurrentDifferentRequestsMatchTheReference) {
  struct Job {
    std::vector<int32_t> prompt;
    int max_tokens;
    std::string expected;
  };
  std::vector<Job> jobs;
  auto cases = golden_cases();
  for (int split : {0, 3, 7, 12, 20, 28, 35, 44}) {  // different lengths, shared prefixes
    for (const GoldenCase& g : cases) {
      Job job;
      job.prompt = g.prompt_ids;
      job.prompt.insert(job.prompt.end(), g.greedy_ids.begin(), g.greedy_ids.begin() + split);
      job.max_tokens = 64 - split;
      SamplingParams p;
      p.temperature = 0;
      p.max_tokens = job.max_tokens;
      p.ignore_eos = true;
      job.expected = reference(job.prompt, p).text;
      jobs.push_back(std::move(job));
    }
  }
  ASSERT_EQ(jobs.size(), 32u);
  std::vector<std::future<HttpReply>> replies;
  for (size_t i = 0; i < jobs.size(); ++i) {
    replies.push_back(std::async(std::launch::async, [&, i] {
      json body = greedy_body(jobs[i].prompt, jobs[i].max_tokens);
      if (i % 2) {  // half of them streamed
        body["stream"] = true;
        auto chunks = parse_chunks(server_->stream("/v1/completions", body));
        return HttpReply{200, {{"choices", {{{"text", joined_text(chunks, 0)}}}}}, ""};
      }
      return server_->post("/v1/completions", body);
    }));
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    HttpReply r = replies[i].get();
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["text"], jobs[i].expected) << "job " << i;
  }
  EXPECT_EQ(settle(), 0);
}

TEST_F(ServerE2eTest, StopStringsCutExactlyStreamedOrNot) {
  const GoldenCase g = golden_cases()[0];  // ", there was a little girl named Lily. She loved..."
  size_t at = g.greedy_text.find("Lily");
  ASSERT_NE(at, std::string::npos);
  json body = greedy_body(g.prompt, 64);
  body["stop"] = {"Lily", "never-there"};
  HttpReply r = server_->post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], g.greedy_text.substr(0, at));
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r.body["choices"][0]["stop_reason"], "Lily");
  body["stream"] = true;
  auto chunks = parse_chunks(server_->stream("/v1/completions", body));
  EXPECT_EQ(joined_text(chunks, 0), g.greedy_text.substr(0, at));
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "stop");
  body["include_stop_str_in_output"] = true;
  EXPECT_EQ(joined_text(parse_chunks(server_->stream("/v1/completions", body)), 0),
            g.greedy_text.substr(0, at + 4));
  EXPECT_EQ(settle(), 0);  // the engine requests the server aborted freed their blocks
}

TEST_F(ServerE2eTest, ChatAndLogprobsThroughTheRealEngine) {
  json body = {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
               {"max_tokens", 5},    {"temperature", 0},
               {"logprobs", true},   {"top_logprobs", 3},
               {"ignore_eos", true}};
  HttpReply whole = server_->post("/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  const json& content = whole.body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 5u);
  std::string joined;
  for (const json& entry : content) {
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    ASSERT_EQ(entry["top_logprobs"].size(), 3u);
    // Greedy: the sampled token is the most likely one.
    EXPECT_EQ(entry["top_logprobs"][0]["token"], entry["token"]);
    EXPECT_DOUBLE_EQ(entry["top_logprobs"][0]["logprob"].get<double>(),
                     entry["logprob"].get<double>());
  }
  body["stream"] = true;
  auto chunks = parse_chunks(server_->stream("/v1/chat/completions", body));
  ASSERT_EQ(chunks.size(), 1u + 5u);
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  std::string streamed;
  for (size_t i = 1; i < chunks.size(); ++i) {
    streamed += chunks[i]["choices"][0]["delta"]["content"].get<std::string>();
    EXPECT_EQ(chunks[i]["choices"][0]["logprobs"]["content"][0]["token"], content[i - 1]["token"]);
  }
  EXPECT_EQ(streamed, whole.body["choices"][0]["message"]["content"]);

  HttpReply c = server_->post(
      "/v1/completions",
      {{"prompt", "Once upon a time"}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", 3}});
  ASSERT_EQ(c.status, 200) << c.raw;
  const json& lp = c.body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    // The sampled token and the top 3, as one dict: 3 entries, as greedy picks the top one.
    EXPECT_EQ(lp["top_logprobs"][i].size(), 3u);
    EXPECT_TRUE(lp["top_logprobs"][i].contains(lp["tokens"][i].get<std::string>()));
  }
}

TEST_F(ServerE2eTest, SixtyFourConcurrentStreamsWithDisconnectsFreeEveryBlock) {
  constexpr int kClients = 64;
  const auto cases = golden_cases();
  std::vector<std::future<std::pair<bool, std::string>>> results;
  for (int i = 0; i < kClients; ++i) {
    results.push_back(std::async(std::launch::async, [&, i] {
      json body = greedy_body(cases[i % cases.size()].prompt, 64);
      body["stream"] = true;
      bool disconnects = i % 4 == 1;
      StreamReply s = server_->stream("/v1/completions", body, disconnects ? 5 : size_t(-1));
      if (disconnects) return std::make_pair(s.events.size() >= 5, std::string());
      auto chunks = parse_chunks(s);
      bool ok = s.status == 200 && chunks.size() == 64;
      return std::make_pair(ok, joined_text(chunks, 0));
    }));
  }
  for (int i = 0; i < kClients; ++i) {
    auto [ok, text] = results[i].get();
    EXPECT_TRUE(ok) << "client " << i;
    if (i % 4 != 1) {
      EXPECT_EQ(text, cases[i % cases.size()].greedy_text) << "client " << i;
    }
  }
  EXPECT_EQ(settle(), 0);
  EXPECT_EQ(metric("tandem:num_requests_running"), 0);
  EXPECT_EQ(metric("tandem:num_requests_waiting"), 0);
  EXPECT_GT(metric("tandem:kv_blocks_total"), 0);
  std::string text = server_->get("/metrics").raw;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("finished_reason=\"abort\"\\} ([0-9]+)")));
  EXPECT_GE(std::stoi(m[1]), kClients / 4);  // the disconnected clients' requests were aborted
}

}  // namespace
}  // namespace tandem::test
