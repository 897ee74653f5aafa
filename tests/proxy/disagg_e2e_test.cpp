// Disaggregated prefill end to end through the real `tandem proxy`: prefillers and decoders are
// `tandem serve` processes with the example's CPU LMCache configs and the reference
// --kv-transfer-config flags (chunk_size 16 so that short prompts span many chunks). Greedy
// answers for 20 prompts (1 token to past several chunks, chunk-aligned and not) equal a single
// `tandem serve` — completions and chat, streamed and not — while the decoder computes only the
// skip_last_n_tokens prompt token per request and its buffer empties; 2 prefillers + 2 decoders
// serve 100 concurrent requests; and killing a decoder or a prefiller mid-run gives the affected
// clients an error within the timeout while the survivors keep serving and the restarted
// process rejoins.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <regex>

#include "fake_engines.h"
#include "tandem_process.h"
#include "test_support.h"

namespace tandem::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string example_config(const std::string& name) {
  return std::string(TANDEM_SOURCE_DIR) + "/examples/disagg_prefill/1p1d/configs/" + name;
}

std::string model_dir() { return golden_model("stories260K").string(); }

// stories260K has no chat template of its own.
std::string chat_template_file() {
  static const std::string path = [] {
    std::string p = (make_temp_dir("tandem-e2e") / "chat.jinja").string();
    std::ofstream(p) << "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    return p;
  }();
  return path;
}

std::vector<std::string> serve_args(int port, const std::string& transfer_config) {
  std::vector<std::string> args = {"serve", model_dir(), "--port", std::to_string(port),
                                   "--enforce-eager", "--no-enable-prefix-caching",
                                   "--disable-log-requests", "--threads", "1",
                                   "--kv-cache-memory", "8MiB", "--chat-template",
                                   chat_template_file()};
  if (!transfer_config.empty()) {
    args.push_back("--kv-transfer-config");
    args.push_back(transfer_config);
  }
  return args;
}

constexpr const char* kProducer =
    R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "producer1"}})";
constexpr const char* kConsumer =
    R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "consumer1", "skip_last_n_tokens": 1}})";

std::string join(const std::vector<int>& v) {
  std::string out;
  for (int x : v) {
    if (!out.empty()) out += ',';
    out += std::to_string(x);
  }
  return out;
}

// The value of `name{...} value` (or `name value`) in a /metrics page; -1 if absent.
double metric(const std::string& page, const std::string& name) {
  std::regex re("(^|\n)" + name + R"((\{[^}]*\})? (\S+))");
  std::smatch m;
  if (!std::regex_search(page, m, re)) return -1;
  return std::stod(m[3]);
}

std::string get_metrics(int port) {
  httplib::Client client("127.0.0.1", port);
  auto r = client.Get("/metrics");
  return r ? r->body : "";
}

// N prefillers and M decoders behind one `tandem proxy`, plus a plain server for reference.
class DisaggSystem {
 public:
  DisaggSystem(int num_prefillers, int num_decoders) {
    notify_port_ = dead_port();
    for (int i = 0; i < num_decoders; ++i) {
      decoder_ports_.push_back(dead_port());
      init_ports_.push_back(dead_port());
      alloc_ports_.push_back(dead_port());
      decoders_.push_back(nullptr);
      start_decoder(i);
    }
    for (int i = 0; i < num_prefillers; ++i) {
      prefiller_ports_.push_back(dead_port());
      prefillers_.push_back(nullptr);
      start_prefiller(i);
    }
    plain_port_ = dead_port();
    plain_ = std::make_unique<TandemProcess>(serve_args(plain_port_, ""));
    proxy_port_ = dead_port();
    proxy_ = std::make_unique<TandemProcess>(std::vector<std::string>{
        "proxy", "--host", "127.0.0.1", "--port", std::to_string(proxy_port_),
        "--prefiller-host", "127.0.0.1", "--prefiller-port", join(prefiller_ports_),
        "--decoder-host", "127.0.0.1", "--decoder-port", join(decoder_ports_),
        "--decoder-init-port", join(init_ports_), "--decoder-alloc-port", join(alloc_ports_),
        "--proxy-host", "127.0.0.1", "--proxy-port", std::to_string(notify_port_),
        "--transfer-timeout", "10", "--prefill-timeout", "30", "--decode-timeout", "30",
        "--stats-interval", "1"});
  }

  // Every process answers; else a message with the log of the one that does not.
  std::string wait_ready() {
    for (size_t i = 0; i < decoders_.size(); ++i) {
      if (decoders_[i]->wait_for_port() < 0) return "decoder " + std::to_string(i) + ":\n" + decoders_[i]->log();
    }
    for (size_t i = 0; i < prefillers_.size(); ++i) {
      if (prefillers_[i]->wait_for_port() < 0) return "prefiller " + std::to_string(i) + ":\n" + prefillers_[i]->log();
    }
    if (plain_->wait_for_port() < 0) return "plain server:\n" + plain_->log();
    if (proxy_->wait_for_port() < 0) return "proxy:\n" + proxy_->log();
    return "";
  }

  void start_decoder(int i) {
    decoders_[i] = std::make_unique<TandemProcess>(
        serve_args(decoder_ports_[i], kConsumer),
        std::vector<std::string>{
            "LMCACHE_CONFIG_FILE=" + example_config("lmcache-decoder-config-cpu.yaml"),
            // A restarted decoder listens again on ports its predecessor's peers just left.
            "UCX_CM_REUSEADDR=y",
            "LMCACHE_CHUNK_SIZE=16", "LMCACHE_PD_BUFFER_SIZE=16777216",
            "LMCACHE_PD_PEER_HOST=127.0.0.1",
            "LMCACHE_PD_PEER_INIT_PORT=" + std::to_string(init_ports_[i]),
            "LMCACHE_PD_PEER_ALLOC_PORT=" + std::to_string(alloc_ports_[i])});
  }
  void start_prefiller(int i) {
    prefillers_[i] = std::make_unique<TandemProcess>(
        serve_args(prefiller_ports_[i], kProducer),
        std::vector<std::string>{
            "LMCACHE_CONFIG_FILE=" + example_config("lmcache-prefiller-config-cpu.yaml"),
            "LMCACHE_CHUNK_SIZE=16", "LMCACHE_PD_BUFFER_SIZE=16777216",
            "LMCACHE_PD_PEER_HOST=127.0.0.1",
            "LMCACHE_PD_PEER_INIT_PORT=" + std::to_string(init_ports_[0]),
            "LMCACHE_PD_PEER_ALLOC_PORT=" + std::to_string(alloc_ports_[0]),
            "LMCACHE_PD_PROXY_HOST=127.0.0.1",
            "LMCACHE_PD_PROXY_PORT=" + std::to_string(notify_port_)});
  }

  int proxy_port() const { return proxy_port_; }
  int plain_port() const { return plain_port_; }
  int decoder_port(int i) const { return decoder_ports_[i]; }
  int prefiller_port(int i) const { return prefiller_ports_[i]; }
  TandemProcess& decoder(int i) { return *decoders_[i]; }
  TandemProcess& prefiller(int i) { return *prefillers_[i]; }
  TandemProcess& proxy() { return *proxy_; }

 private:
  int notify_port_ = 0, plain_port_ = 0, proxy_port_ = 0;
  std::vector<int> decoder_ports_, init_ports_, alloc_ports_, prefiller_ports_;
  std::vector<std::unique_ptr<TandemProcess>> decoders_, prefillers_;
  std::unique_ptr<TandemProcess> plain_, proxy_;
};

struct Answer {
  int status = 0;
  std::string text;           // the generated text (streamed: the deltas joined)
  std::string finish_reason;
  json usage;
  std::string raw;
  bool stream_error = false;  // a streamed answer that ended with an error event
};

// One request; streamed answers are reassembled from their SSE events.
Answer ask(int port, bool chat, const json& prompt, bool stream, int max_tokens = 16) {
  json body = {{"model", model_dir()}, {"max_tokens", max_tokens}, {"temperature", 0},
               {"stream", stream}};
  if (chat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", prompt}}});
  } else {
    body["prompt"] = prompt;
  }
  if (stream) body["stream_options"] = {{"include_usage", true}};
  RawReply reply = post(port, chat ? "/v1/chat/completions" : "/v1/completions", body);
  Answer a;
  a.status = reply.status;
  a.raw = reply.body;
  if (reply.status != 200) return a;
  if (!stream) {
    json j = json::parse(reply.body, nullptr, false);
    if (!j.is_object()) return a;
    const json& choice = j["choices"][0];
    a.text = chat ? choice["message"]["content"].get<std::string>() : choice["text"].get<std::string>();
    a.finish_reason = choice.value("finish_reason", "");
    a.usage = j["usage"];
    return a;
  }
  size_t pos = 0;
  while ((pos = reply.body.find("data: ", pos)) != std::string::npos) {
    size_t end = reply.body.find("\n\n", pos);
    std::string data = reply.body.substr(pos + 6, end - pos - 6);
    pos = end == std::string::npos ? reply.body.size() : end;
    if (data == "[DONE]") continue;
    json event = json::parse(data, nullptr, false);
    if (!event.is_object()) continue;
    if (event.contains("error")) a.stream_error = true;
    if (event.contains("usage") && event["usage"].is_object()) a.usage = event["usage"];
    if (!event.contains("choices") || event["choices"].empty()) continue;
    const json& choice = event["choices"][0];
    if (chat) {
      if (choice.contains("delta") && choice["delta"].contains("content") &&
          choice["delta"]["content"].is_string()) {
        a.text += choice["delta"]["content"].get<std::string>();
      }
    } else if (choice.contains("text")) {
      a.text += choice["text"].get<std::string>();
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      a.finish_reason = choice["finish_reason"];
    }
  }
  return a;
}

// 20 prompts: 10 texts of growing length, 10 token-id prompts of exact lengths around chunks.
std::vector<json> twenty_prompts() {
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She liked to play outside in the "
      "park with her dog Max. One day the sun was warm and the sky was blue, so they ran to the "
      "big tree and sang a happy song together. ";
  std::vector<json> prompts;
  for (size_t chars : {1u, 4u, 16u, 40u, 70u, 120u, 200u, 300u, 450u, 700u}) {
    std::string text;
    while (text.size() < chars) text += story;
    prompts.push_back(text.substr(0, chars));
  }
  for (int length : {1, 15, 16, 17, 32, 33, 64, 100, 256, 300}) {
    std::vector<int> ids;
    for (int i = 0; i < length; ++i) ids.push_back(3 + (i * 37 + 11) % 480);
    prompts.push_back(ids);
  }
  return prompts;
}

TEST(DisaggE2E, TwentyPromptsThroughTheProxyEqualASingleServer) {
  DisaggSystem system(1, 1);
  ASSERT_EQ(system.wait_ready(), "");
  std::string page = get_metrics(system.decoder_port(0));
  double computed0 = metric(page, "tandem:pd_prompt_tokens_computed_total");
  double received0 = metric(page, "tandem:pd_prompt_tokens_received_total");
  ASSERT_GE(computed0, 0) << page;
  int requests = 0, prompt_tokens = 0;
  std::vector<json> prompts = twenty_prompts();
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (bool chat : {false, true}) {
      if (chat && !prompts[i].is_string()) continue;  // chat content is text
      SCOPED_TRACE(testing::Message() << "prompt " << i << (chat ? " (chat)" : ""));
      Answer single = ask(system.plain_port(), chat, prompts[i], /*stream=*/false);
      ASSERT_EQ(single.status, 200) << single.raw;
      for (bool stream : {false, true}) {
        Answer split = ask(system.proxy_port(), chat, prompts[i], stream);
        ASSERT_EQ(split.status, 200) << split.raw << "\nproxy:\n" << system.proxy().log();
        EXPECT_FALSE(split.stream_error) << split.raw;
        EXPECT_EQ(split.text, single.text) << (stream ? "streamed" : "whole");
        EXPECT_EQ(split.finish_reason, single.finish_reason);
        EXPECT_EQ(split.usage, single.usage);
        ++requests;
        prompt_tokens += split.usage["prompt_tokens"].get<int>();
      }
    }
  }
  // max_tokens 1 still works.
  Answer one = ask(system.proxy_port(), false, "Once upon a time", false, /*max_tokens=*/1);
  EXPECT_EQ(one.status, 200) << one.raw;
  EXPECT_EQ(one.usage["completion_tokens"], 1);
  ++requests;
  prompt_tokens += one.usage["prompt_tokens"].get<int>();

  // The engine publishes its counters a moment after the last answer.
  for (int i = 0; i < 50; ++i) {
    page = get_metrics(system.decoder_port(0));
    if (metric(page, "tandem:pd_prompt_tokens_computed_total") - computed0 >= requests) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_computed_total") - computed0, requests)
      << "the decoder computes only skip_last_n_tokens (1) prompt token per request\n" << page;
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_received_total") - received0,
            prompt_tokens - requests);
  EXPECT_EQ(metric(page, "tandem:pd_buffer_bytes_used"), 0);
  std::string proxy_metrics = get_metrics(system.proxy_port());
  EXPECT_EQ(metric(proxy_metrics, "tandem:proxy_errors_total"), -1) << proxy_metrics;
  std::this_thread::sleep_for(1200ms);
  EXPECT_NE(system.proxy().log().find("Prefill node TTFT stats:"), std::string::npos);
}

TEST(DisaggE2E, TwoPrefillersAndTwoDecodersServe100ConcurrentRequests) {
  DisaggSystem system(2, 2);
  ASSERT_EQ(system.wait_ready(), "");
  std::vector<json> prompts = twenty_prompts();
  std::vector<Answer> expected;
  for (const json& p : prompts) expected.push_back(ask(system.plain_port(), false, p, false));
  constexpr int kRequests = 100;
  std::vector<Answer> got(kRequests);
  std::vector<std::thread> clients;
  Clock::time_point start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      got[i] = ask(system.proxy_port(), false, prompts[i % prompts.size()], i % 2 == 1);
    });
  }
  for (auto& t : clients) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("2P2D: %d concurrent requests in %.2f s\n", kRequests, seconds);
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(got[i].status, 200) << i << ": " << got[i].raw;
    EXPECT_EQ(got[i].text, expected[i % prompts.size()].text) << i;
    EXPECT_FALSE(got[i].stream_error) << i;
  }
  for (int d = 0; d < 2; ++d) {
    std::string page = get_metrics(system.decoder_port(d));
    EXPECT_GE(metric(page, "tandem:pd_transfers_received_total"), kRequests / 2 - 1) << page;
    EXPECT_EQ(metric(page, "tandem:pd_buffer_bytes_used"), 0) << page;
  }
}

// Clients in a loop while an engine is killed and restarted: every request ends — correct, or
// an error within the timeout — and after the restart every request succeeds again.
TEST(DisaggE2E, KilledEnginesFailOnlyTheirRequestsAndRejoinWhenRestarted) {
  DisaggSystem system(2, 2);
  ASSERT_EQ(system.wait_ready(), "");
  const json prompt = "Once upon a time, there was a little girl named Lily.";
  Answer expected = ask(system.plain_port(), false, prompt, false, 24);
  ASSERT_EQ(expected.status, 200);

  std::atomic<bool> running{true};
  std::atomic<int> ok{0}, failed{0}, wrong{0};
  std::atomic<double> slowest_ms{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; running; ++i) {
        Clock::time_point t = Clock::now();
        Answer a = ask(system.proxy_port(), false, prompt, (i + c) % 2 == 0, 24);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
        if (ms > slowest_ms) slowest_ms = ms;
        if (a.status == 200 && !a.stream_error) {
          (a.text == expected.text ? ok : wrong)++;
        } else {
          EXPECT_TRUE(a.status == 502 || a.status == 503 || a.status == 504 || a.stream_error)
              << a.status << " " << a.raw;
          ++failed;
        }
      }
    });
  }
  auto phase = [&](const char* what, auto action) {
    std::this_thread::sleep_for(1500ms);
    action();
    std::printf("%s: ok %d, failed %d\n", what, ok.load(), failed.load());
  };
  phase("decoder 1 killed", [&] { system.decoder(1).kill_now(); });
  phase("decoder 1 restarted", [&] {
    system.start_decoder(1);
    EXPECT_GT(system.decoder(1).wait_for_port(), 0) << system.decoder(1).log();
  });
  phase("prefiller 0 killed", [&] { system.prefiller(0).kill_now(); });
  phase("prefiller 0 restarted", [&] {
    system.start_prefiller(0);
    EXPECT_GT(system.prefiller(0).wait_for_port(), 0) << system.prefiller(0).log();
  });
  std::this_thread::sleep_for(3s);  // past the proxy's 2 s rest for engines that refused
  running = false;
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(ok, 0);
  EXPECT_LT(slowest_ms, 15000) << "every failure came within the timeouts";

  // Everyone is back: requests succeed, and both restarted engines take their share.
  std::string before_d1 = get_metrics(system.decoder_port(1));
  std::string before_p0 = get_metrics(system.prefiller_port(0));
  for (int i = 0; i < 8; ++i) {
    Answer a = ask(system.proxy_port(), false, prompt, i % 2 == 0, 24);
    EXPECT_EQ(a.status, 200) << a.raw << "\nproxy:\n" << system.proxy().log();
    EXPECT_EQ(a.text, expected.text);
  }
  EXPECT_GT(metric(get_metrics(system.decoder_port(1)), "tandem:pd_transfers_received_total"),
            metric(before_d1, "tandem:pd_transfers_received_total"));
  EXPECT_GT(metric(get_metrics(system.prefiller_port(0)), "tandem:pd_transfers_sent_total"),
            metric(before_p0, "tandem:pd_transfers_sent_total"));
}

}  // namespace
}  // namespace tandem::test
