// `tandem serve` as a process: flag errors name the flag, --device cuda and a bad
// --kv-transfer-config fail clearly, the API key (flag or env) guards every endpoint but
// /health, names/limits flags reach the API, and SIGTERM/SIGINT stop it cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "serve_process.h"
#include "test_support.h"
#ifdef TANDEM_WITH_CUDA
#include "backend/cuda_buffer.h"
#endif

namespace tandem::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string model_dir() { return golden_model("stories260K").string(); }

std::string chatml_file() {
  static const std::string path = [] {
    auto dir = make_temp_dir("tandem-chatml");
    std::string p = (dir / "chatml.jinja").string();
    std::ofstream(p) << read_json_file(shared_dir() / "golden" / "chat" / "chatml.json")
                            .at("template")
                            .get<std::string>();
    return p;
  }();
  return path;
}

TEST(ServeCommand, FlagErrorsNameTheFlag) {
  CommandResult r = run_tandem("serve '" + model_dir() + "' --max-batch 8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--max-batch"));
  r = run_tandem("serve '" + model_dir() + "' --port 70000");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--port"));
  r = run_tandem("serve");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("model"));
  r = run_tandem("serve --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag :
       {"--served-model-name", "--max-model-len", "--max-num-seqs", "--max-num-batched-tokens",
        "--block-size", "--enable-prefix-caching", "--no-enable-prefix-caching", "--enforce-eager",
        "--disable-log-requests", "--kv-transfer-config", "--seed", "--api-key", "--device",
        "--threads", "--kv-cache-memory", "--gpu-memory-utilization", "--chat-template"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
}

TEST(ServeCommand, CudaAndBadKvTransferConfigFailClearly) {
#ifdef TANDEM_WITH_CUDA
  // A CUDA build: where a GPU is present the server would start (tests/cuda covers it).
  if (!cuda::cuda_device_available()) {
    CommandResult r = run_tandem("serve '" + model_dir() + "' --device cuda");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("no CUDA device"));
  }
#else
  {
    CommandResult r = run_tandem("serve '" + model_dir() + "' --device cuda");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("built without CUDA"));
  }
#endif
  CommandResult r = run_tandem("serve '" + model_dir() +
                               "' --kv-transfer-config '{\"kv_connector\":\"LMCacheConnectorV1\","
                               "\"kv_role\":\"kv_sideways\"}'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'kv_role' must be one of kv_producer, kv_consumer, kv_both"));
  r = run_tandem("serve /nonexistent/model");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/model"));
}

TEST(ServeCommand, ServesWithNamesLimitsAndAnApiKeyFromTheEnvironment) {
  ServeProcess serve({model_dir(),
                      "--host",
                      "127.0.0.1",
                      "--port",
                      "0",
                      "--served-model-name",
                      "stories",
                      "story-alias",
                      "--max-model-len",
                      "256",
                      "--threads",
                      "1",
                      "--max-num-seqs",
                      "8",
                      "--kv-cache-memory",
                      "4MiB",
                      "--seed",
                      "3",
                      "--enforce-eager",
                      "--no-enable-prefix-caching",
                      "--chat-template",
                      chatml_file(),
                      "--max-request-body-bytes",
                      "4096",
                      "--kv-transfer-config",
                      R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"})"},
                     {"TANDEM_API_KEY=env-key"});
  int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.log();
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  httplib::Headers auth = {{"Authorization", "Bearer env-key"}};

  EXPECT_EQ(client.Get("/health")->status, 200);  // no key needed
  for (const char* path : {"/v1/models", "/metrics", "/version"}) {
    auto r = client.Get(path);
    EXPECT_EQ(r->status, 401) << path;
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
    EXPECT_EQ(client.Get(path, auth)->status, 200) << path;
  }
  auto models = json::parse(client.Get("/v1/models", auth)->body);
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][0]["id"], "stories");
  EXPECT_EQ(models["data"][1]["id"], "story-alias");
  EXPECT_EQ(models["data"][0]["max_model_len"], 256);

  json body = {{"model", "story-alias"}, {"prompt", "Once upon a time"}, {"max_tokens", 8}};
  auto unauthorized = client.Post("/v1/completions", body.dump(), "application/json");
  EXPECT_EQ(unauthorized->status, 401);
  auto done = client.Post("/v1/completions", auth, body.dump(), "application/json");
  ASSERT_EQ(done->status, 200) << done->body;
  EXPECT_EQ(json::parse(done->body)["usage"]["completion_tokens"], 8);
  json chat = {{"model", "stories"},
               {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
               {"max_tokens", 300}};
  auto too_long = client.Post("/v1/chat/completions", auth, chat.dump(), "application/json");
  EXPECT_EQ(too_long->status, 400);  // 83 prompt tokens + 300 > --max-model-len 256
  EXPECT_THAT(too_long->body, HasSubstr("maximum context length is 256"));
  auto big = client.Post("/v1/completions", auth, std::string(5000, ' '), "application/json");
  EXPECT_EQ(big->status, 413);

  EXPECT_EQ(serve.stop(SIGTERM), 0);
  std::string log = serve.log();
  EXPECT_THAT(log, HasSubstr("received SIGTERM"));
  EXPECT_THAT(log, HasSubstr("prefix caching off"));  // --no-enable-prefix-caching reached it
  EXPECT_THAT(log, HasSubstr("max_model_len 256"));
  // The allocator the binary was linked with (jemalloc unless a sanitizer build) hands freed
  // pages back.
  EXPECT_THAT(log, HasSubstr("go back to the OS every 10 s (" TANDEM_BINARY_HEAP_TRIM ")"));
  EXPECT_THAT(log, HasSubstr("\"POST /v1/completions\" 200"));  // one line per request
  EXPECT_THAT(log, HasSubstr("stopped"));
}

TEST(ServeCommand, SigintStopsAnOpenStreamAndChatWithoutTemplateIs400) {
  ServeProcess serve({model_dir(), "--host", "127.0.0.1", "--port", "0", "--api-key", "k",
                      "--threads", "1", "--kv-cache-memory", "4MiB", "--disable-log-requests"},
                     {"VLLM_API_KEY=ignored-when-the-flag-is-set"});
  int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.log();
  httplib::Client client("127.0.0.1", port);
  httplib::Headers auth = {{"Authorization", "Bearer k"}};
  json chat = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  auto r = client.Post("/v1/chat/completions", auth, chat.dump(), "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("no chat template"));

  // A long stream is open when SIGINT arrives: the server still stops promptly.
  std::atomic<int> received{0};
  std::thread reader([&] {
    httplib::Client c("127.0.0.1", port);
    json body = {{"prompt", "Once"}, {"max_tokens", 500}, {"ignore_eos", true}, {"stream", true}};
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.headers = auth;
    req.body = body.dump();
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      ++received;
      return true;
    };
    c.send(req);
  });
  for (int i = 0; i < 3000 && received == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(serve.stop(SIGINT), 0);
  reader.join();
  EXPECT_THAT(serve.log(), HasSubstr("received SIGINT"));
  EXPECT_THAT(serve.log(), ::testing::Not(HasSubstr("\"POST /v1/chat/completions\"")));
}

}  // namespace
}  // namespace tandem::test
