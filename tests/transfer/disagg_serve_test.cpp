// Disaggregated prefill through two real `tandem serve` processes, started with the example
// LMCache configs and vLLM's reference --kv-transfer-config flags: a prefiller (kv_producer,
// pd_role sender) and a decoder (kv_consumer, receiver), with the test playing the proxy (its
// notification port, then the decode request). Greedy completions and chat answers equal the
// prefiller's own (a plain server's), the decoder's /metrics prove it computed one prompt token
// per request and that its buffer is empty again; bad kv_transfer_params are a 400 and a role
// that contradicts the YAML stops start-up with a message naming it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "server/serve_process.h"
#include "test_support.h"
#include "transfer/proxy_stub.h"
#include "transfer/ucx_transport.h"

namespace tandem {
namespace {

using test::ProxyStub;

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string example_config(const std::string& name) {
  return std::string(TANDEM_SOURCE_DIR) + "/examples/disagg_prefill/1p1d/configs/" + name;
}

// A TCP port that was free a moment ago (the kernel's pick for port 0).
int free_tcp_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string transfer_config(const char* role, const char* rpc_port, bool consumer) {
  json extra = {{"discard_partial_chunks", false}, {"lmcache_rpc_port", rpc_port}};
  if (consumer) extra["skip_last_n_tokens"] = 1;
  return json{{"kv_connector", "LMCacheConnectorV1"},
              {"kv_role", role},
              {"kv_connector_extra_config", extra}}
      .dump();
}

// stories260K has no chat template of its own.
std::string chat_template_file() {
  static const std::string path = [] {
    std::string p = (test::make_temp_dir("tandem-disagg") / "chat.jinja").string();
    std::ofstream(p) << "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    return p;
  }();
  return path;
}

std::vector<std::string> serve_args(const std::string& transfer) {
  return {test::golden_model("stories260K").string(),
          "--port",
          "0",
          "--enforce-eager",
          "--no-enable-prefix-caching",
          "--disable-log-requests",
          "--threads",
          "1",
          "--kv-cache-memory",
          "8MiB",
          "--chat-template",
          chat_template_file(),
          "--kv-transfer-config",
          transfer};
}

// The value of an unlabelled-by-reason series `name{...} value` in a /metrics page.
double metric(const std::string& page, const std::string& name) {
  std::regex re("(^|\n)" + name + R"(\{[^}]*\} (\S+))");
  std::smatch m;
  if (!std::regex_search(page, m, re)) return -1;
  return std::stod(m[2]);
}

class DisaggServe : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    proxy_ = new ProxyStub(30s);
    init_port_ = free_tcp_port();
    alloc_port_ = free_tcp_port();
    while (alloc_port_ == init_port_) alloc_port_ = free_tcp_port();
    std::vector<std::string> common = {"LMCACHE_CHUNK_SIZE=16", "LMCACHE_PD_BUFFER_SIZE=16777216",
                                       "LMCACHE_PD_PEER_HOST=127.0.0.1",
                                       "LMCACHE_PD_PEER_INIT_PORT=" + std::to_string(init_port_),
                                       "LMCACHE_PD_PEER_ALLOC_PORT=" + std::to_string(alloc_port_)};
    std::vector<std::string> decoder_env = common;
    decoder_env.push_back("LMCACHE_CONFIG_FILE=" +
                          example_config("lmcache-decoder-config-cpu.yaml"));
    decoder_ = new test::ServeProcess(serve_args(transfer_config("kv_consumer", "consumer1", true)),
                                      decoder_env);
    // The prefiller uses the CUDA reference config (pd_buffer_device: cuda falls back to host
    // memory on this CPU engine) through --kv-config.
    std::vector<std::string> prefiller_args =
        serve_args(transfer_config("kv_producer", "producer1", false));
    prefiller_args.push_back("--kv-config");
    prefiller_args.push_back(example_config("lmcache-prefiller-config.yaml"));
    std::vector<std::string> prefiller_env = common;
    prefiller_env.push_back("LMCACHE_PD_PROXY_HOST=127.0.0.1");
    prefiller_env.push_back("LMCACHE_PD_PROXY_PORT=" + std::to_string(proxy_->port()));
    prefiller_ = new test::ServeProcess(prefiller_args, prefiller_env);
    decoder_port_ = decoder_->wait_for_port();
    prefiller_port_ = prefiller_->wait_for_port();
  }
  static void TearDownTestSuite() {
    // Both roles shut down cleanly on SIGTERM (connector threads joined, connections closed).
    EXPECT_EQ(prefiller_->stop(SIGTERM), 0) << prefiller_->log();
    EXPECT_EQ(decoder_->stop(SIGTERM), 0) << decoder_->log();
    delete prefiller_;
    delete decoder_;
    delete proxy_;
  }
  void SetUp() override {
    ASSERT_GT(decoder_port_, 0) << decoder_->log();
    ASSERT_GT(prefiller_port_, 0) << prefiller_->log();
  }

  static json post(int port, const std::string& path, const json& body, int expect = 200,
                   const std::string& request_id = "") {
    httplib::Client client(test::kLoopbackHost, port);
    client.set_read_timeout(60, 0);
    httplib::Headers headers;
    if (!request_id.empty()) headers.emplace("X-Request-Id", request_id);
    auto r = client.Post(path, headers, body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, expect) << r->body;
    return json::parse(r->body);
  }
  static std::string metrics(int port) {
    httplib::Client client(test::kLoopbackHost, port);
    auto r = client.Get("/metrics");
    return r ? r->body : "";
  }

  // The proxy's part: prefill with the decoder named, wait for TransferDone, then decode.
  static json disaggregated(const std::string& path, json body, const std::string& id) {
    json prefill = body;
    prefill["max_tokens"] = 1;
    prefill["kv_transfer_params"] = {{"disagg_spec",
                                      {{"req_id", id},
                                       {"receiver_host", test::kLoopbackHost},
                                       {"receiver_init_port", {init_port_}},
                                       {"receiver_alloc_port", {alloc_port_}}}}};
    post(prefiller_port_, path, prefill, 200, id);
    WireMessage note = proxy_->next();
    EXPECT_TRUE(std::holds_alternative<TransferDone>(note))
        << (std::holds_alternative<Abort>(note) ? std::get<Abort>(note).reason : "");
    if (auto* done = std::get_if<TransferDone>(&note)) {
      EXPECT_EQ(done->request_id, id);
    }
    body["kv_transfer_params"] = {{"disagg_spec", {{"req_id", id}}}};
    return post(decoder_port_, path, body, 200, id);
  }

  static inline ProxyStub* proxy_ = nullptr;
  static inline test::ServeProcess* decoder_ = nullptr;
  static inline test::ServeProcess* prefiller_ = nullptr;
  static inline int init_port_ = 0, alloc_port_ = 0, decoder_port_ = 0, prefiller_port_ = 0;
};

TEST_F(DisaggServe, CompletionsAndChatEqualASingleServer) {
  const std::vector<std::string> prompts = {
      "Once",
      "Once upon a time",
      "Once upon a time, there was a little girl named Lily. She liked to play outside.",
      "The cat sat on the mat. The dog ran in the park. The bird sang in the tree. The sun "
      "was warm and the sky was blue. Tom and his mom went to the store to buy some milk.",
  };
  std::string page = metrics(decoder_port_);
  double computed0 = metric(page, "tandem:pd_prompt_tokens_computed_total");
  double received0 = metric(page, "tandem:pd_prompt_tokens_received_total");
  ASSERT_GE(computed0, 0) << page;
  int prompt_tokens = 0, requests = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    json body = {{"prompt", prompts[i]}, {"max_tokens", 12}, {"temperature", 0}};
    json single = post(prefiller_port_, "/v1/completions", body);
    json split = disaggregated("/v1/completions", body, "cmpl-test-" + std::to_string(i));
    EXPECT_EQ(split["choices"][0]["text"], single["choices"][0]["text"]);
    prompt_tokens += split["usage"]["prompt_tokens"].get<int>();
    ++requests;
  }
  json chat = {{"messages", {{{"role", "user"}, {"content", "Tell me a story about a dog."}}}},
               {"max_tokens", 10},
               {"temperature", 0}};
  json single = post(prefiller_port_, "/v1/chat/completions", chat);
  json split = disaggregated("/v1/chat/completions", chat, "chat-test-0");
  EXPECT_EQ(split["choices"][0]["message"], single["choices"][0]["message"]);
  prompt_tokens += split["usage"]["prompt_tokens"].get<int>();
  ++requests;

  page = metrics(decoder_port_);
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_computed_total") - computed0, requests) << page;
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_received_total") - received0,
            prompt_tokens - requests);
  EXPECT_EQ(metric(page, "tandem:pd_buffer_bytes_used"), 0);
  EXPECT_GE(metric(page, "tandem:pd_transfers_received_total"), requests);
  std::string sender = metrics(prefiller_port_);
  EXPECT_GE(metric(sender, "tandem:pd_transfers_sent_total"), requests) << sender;
  EXPECT_EQ(metric(sender, "tandem:pd_transfer_failures_total"), 0);
  EXPECT_GT(metric(sender, "tandem:pd_bytes_sent_total"), 0);
  EXPECT_NE(prefiller_->log().find("pd_buffer_device 'cuda'"), std::string::npos);
}

TEST_F(DisaggServe, MalformedKvTransferParamsAreA400) {
  json base = {{"prompt", "Once upon a time"}, {"max_tokens", 2}};
  for (const json& bad :
       {json("text"), json{{"disagg_spec", 5}}, json{{"disagg_spec", json::object()}},
        json{{"disagg_spec", {{"req_id", 7}}}},
        json{{"disagg_spec", {{"req_id", "x"}, {"receiver_init_port", "7300"}}}},
        json{{"disagg_spec", {{"req_id", "x"}, {"receiver_alloc_port", {70000}}}}},
        json{{"first_token_id", "7"}}, json{{"first_token_id", -1}},
        json{{"first_token_id", int64_t(1) << 40}}, json{{"first_token_id", 512}}}) {  // vocab 512
    json body = base;
    body["kv_transfer_params"] = bad;
    json e = post(decoder_port_, "/v1/completions", body, 400);
    EXPECT_EQ(e["error"]["type"], "invalid_request_error") << bad;
    EXPECT_NE(e["error"]["param"].get<std::string>().find("kv_transfer_params"), std::string::npos)
        << e;
  }
  // A handed-over first token stands for the first token of one plain choice.
  for (const json& extra : {json{{"n", 2}}, json{{"logprobs", 1}}, json{{"echo", true}},
                            json{{"prompt", {"Once", "Twice"}}}}) {
    json body = base;
    body.update(extra);
    body["kv_transfer_params"] = {{"first_token_id", 7}};
    json e = post(decoder_port_, "/v1/completions", body, 400);
    EXPECT_EQ(e["error"]["param"], "kv_transfer_params.first_token_id") << extra << e;
  }
  json ok = base;
  ok["kv_transfer_params"] = nullptr;  // null: not given
  post(decoder_port_, "/v1/completions", ok);
  // Given, it is the answer's first token (no transfer under this id: the decoder computes).
  json with_ids = base;
  with_ids["return_token_ids"] = true;
  with_ids["temperature"] = 0;
  with_ids["max_tokens"] = 6;
  json reference = post(decoder_port_, "/v1/completions", with_ids);
  json handed = with_ids;
  handed["kv_transfer_params"] = {{"first_token_id", reference["choices"][0]["token_ids"][0]}};
  json answer = post(decoder_port_, "/v1/completions", handed);
  EXPECT_EQ(answer["choices"][0]["token_ids"], reference["choices"][0]["token_ids"]);
  EXPECT_EQ(answer["choices"][0]["text"], reference["choices"][0]["text"]);
  handed["kv_transfer_params"] = {{"first_token_id", 5}};
  answer = post(decoder_port_, "/v1/completions", handed);
  EXPECT_EQ(answer["choices"][0]["token_ids"][0], 5) << answer;
}

TEST(DisaggServeConfig, RoleThatContradictsTheYamlStopsStartup) {
  test::ServeProcess serve(
      serve_args(transfer_config("kv_producer", "producer1", false)),
      {"LMCACHE_CONFIG_FILE=" + example_config("lmcache-decoder-config-cpu.yaml")});
  EXPECT_NE(serve.wait_exit(), 0);
  std::string log = serve.log();
  EXPECT_NE(log.find("lmcache-decoder-config-cpu.yaml"), std::string::npos) << log;
  EXPECT_NE(log.find("'pd_role' is 'receiver'"), std::string::npos) << log;
}

}  // namespace
}  // namespace tandem
