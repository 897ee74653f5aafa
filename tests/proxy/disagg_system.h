// DisaggSystem: a real disaggregated deployment for end-to-end tests — N prefillers and M
// decoders (`tandem serve` with the example's CPU LMCache configs and the reference
// --kv-transfer-config flags, chunk_size 16 so short prompts span many chunks) behind one
// `tandem proxy`, plus (optionally) a plain `tandem serve` for reference answers, all on free
// ports with stories260K. Any process can be killed, stopped or restarted in place; `ask` sends
// one request and reassembles the answer; `metric` reads a /metrics value.
#pragma once
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <regex>

#include "fake_engines.h"
#include "tandem_process.h"
#include "test_support.h"

namespace tandem::test {

inline std::string example_config(const std::string& name) {
  return std::string(TANDEM_SOURCE_DIR) + "/examples/disagg_prefill/1p1d/configs/" + name;
}

inline std::string model_dir() { return golden_model("stories260K").string(); }

// stories260K has no chat template of its own.
inline std::string chat_template_file() {
  static const std::string path = [] {
    std::string p = (make_temp_dir("tandem-e2e") / "chat.jinja").string();
    std::ofstream(p) << "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    return p;
  }();
  return path;
}

inline std::vector<std::string> serve_args(int port, const std::string& transfer_config,
                                           const std::string& model = model_dir(),
                                           const std::string& kv_cache_memory = "8MiB") {
  std::vector<std::string> args = {"serve",
                                   model,
                                   "--port",
                                   std::to_string(port),
                                   "--enforce-eager",
                                   "--no-enable-prefix-caching",
                                   "--disable-log-requests",
                                   "--threads",
                                   "1",
                                   "--kv-cache-memory",
                                   kv_cache_memory,
                                   "--chat-template",
                                   chat_template_file()};
  if (!transfer_config.empty()) {
    args.push_back("--kv-transfer-config");
    args.push_back(transfer_config);
  }
  return args;
}

inline constexpr const char* kProducer =
    R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "producer1"}})";
inline constexpr const char* kConsumer =
    R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "consumer1", "skip_last_n_tokens": 1}})";

inline std::string join(const std::vector<int>& v) {
  std::string out;
  for (int x : v) {
    if (!out.empty()) out += ',';
    out += std::to_string(x);
  }
  return out;
}

// The value of `name{...} value` (or `name value`) in a /metrics page; -1 if absent.
inline double metric(const std::string& page, const std::string& name) {
  std::regex re("(^|\n)" + name + R"((\{[^}]*\})? (\S+))");
  std::smatch m;
  if (!std::regex_search(page, m, re)) return -1;
  return std::stod(m[3]);
}

inline std::string get_metrics(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto r = client.Get("/metrics");
  return r ? r->body : "";
}

// `args` with each "--flag value" pair of `extra` applied: the flag's value replaced where `args`
// has it (the commands refuse a repeated flag), else the pair appended.
inline std::vector<std::string> with_flags(std::vector<std::string> args,
                                           const std::vector<std::string>& extra) {
  for (size_t i = 0; i + 1 < extra.size(); i += 2) {
    auto it = std::find(args.begin(), args.end(), extra[i]);
    if (it != args.end() && it + 1 != args.end()) {
      *(it + 1) = extra[i + 1];
    } else {
      args.push_back(extra[i]);
      args.push_back(extra[i + 1]);
    }
  }
  return args;
}

// What differs between tests: extra environment for the engines and extra proxy flags.
struct DisaggOptions {
  std::vector<std::string> prefiller_env;  // NAME=VALUE, over the defaults
  std::vector<std::string> decoder_env;
  std::vector<std::string> proxy_args;      // "--flag value" pairs, over the defaults
  std::vector<std::string> prefiller_args;  // "--flag value" pairs for `tandem serve`
  std::vector<std::string> decoder_args;
  std::string model;                     // "": stories260K
  std::string kv_cache_memory = "8MiB";  // each engine's --kv-cache-memory
  bool plain_server = true;              // also start a plain `tandem serve` for reference
};

// N prefillers and M decoders behind one `tandem proxy`, plus a plain server for reference.
class DisaggSystem {
 public:
  DisaggSystem(int num_prefillers, int num_decoders, DisaggOptions options = {})
      : options_(std::move(options)) {
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
    if (options_.plain_server) {
      plain_port_ = dead_port();
      plain_ = std::make_unique<TandemProcess>(
          serve_args(plain_port_, "", model(), options_.kv_cache_memory));
    }
    proxy_port_ = dead_port();
    start_proxy();
  }

  // Every process answers; else a message with the log of the one that does not.
  std::string wait_ready() {
    for (size_t i = 0; i < decoders_.size(); ++i) {
      if (decoders_[i]->wait_for_port() < 0)
        return "decoder " + std::to_string(i) + ":\n" + decoders_[i]->log();
    }
    for (size_t i = 0; i < prefillers_.size(); ++i) {
      if (prefillers_[i]->wait_for_port() < 0)
        return "prefiller " + std::to_string(i) + ":\n" + prefillers_[i]->log();
    }
    if (plain_ && plain_->wait_for_port() < 0) return "plain server:\n" + plain_->log();
    if (proxy_->wait_for_port() < 0) return "proxy:\n" + proxy_->log();
    // The proxy may have probed the engines before they listened: wait until each has answered
    // a probe (a fault injected earlier would find the engine "starting", never "unhealthy").
    if (!eventually([&] { return proxy_sees_all_healthy(); }, std::chrono::seconds(60))) {
      return "the proxy does not see every engine healthy:\n" + proxy_->log();
    }
    return "";
  }

  // SIGTERM to every process, the proxy first; "" when each exited with status 0 within 30 s,
  // else which did not (a process that hangs at shutdown, or crashes).
  std::string stop_all() {
    std::string out;
    auto stop = [&](TandemProcess& p, const std::string& name) {
      int code = p.stop(SIGTERM);
      if (code != 0)
        out += fmt::format("{} exited with {} (-1: killed or still running)\n", name, code);
    };
    stop(*proxy_, "the proxy");
    for (size_t i = 0; i < prefillers_.size(); ++i)
      stop(*prefillers_[i], fmt::format("prefiller {}", i));
    for (size_t i = 0; i < decoders_.size(); ++i) stop(*decoders_[i], fmt::format("decoder {}", i));
    if (plain_) stop(*plain_, "the plain server");
    return out;
  }

  // Whether the proxy's /health says every engine has answered its last health probe.
  bool proxy_sees_all_healthy() {
    RawReply reply = raw_request(proxy_port_, "GET", "/health", "");
    json j = json::parse(reply.body, nullptr, false);
    if (!j.is_object() || !j["engines"].is_object()) return false;
    for (const auto& [name, health] : j["engines"].items()) {
      if (health != "healthy") return false;
    }
    return true;
  }

  void start_decoder(int i) {
    std::vector<std::string> env = {
        "LMCACHE_CONFIG_FILE=" + example_config("lmcache-decoder-config-cpu.yaml"),
        // A restarted decoder listens again on ports its predecessor's peers just left.
        "UCX_CM_REUSEADDR=y", "LMCACHE_CHUNK_SIZE=16", "LMCACHE_PD_BUFFER_SIZE=16777216",
        "LMCACHE_PD_PEER_HOST=127.0.0.1",
        "LMCACHE_PD_PEER_INIT_PORT=" + std::to_string(init_ports_[i]),
        "LMCACHE_PD_PEER_ALLOC_PORT=" + std::to_string(alloc_ports_[i])};
    env.insert(env.end(), options_.decoder_env.begin(), options_.decoder_env.end());
    std::vector<std::string> args =
        with_flags(serve_args(decoder_ports_[i], kConsumer, model(), options_.kv_cache_memory),
                   options_.decoder_args);
    decoders_[i] = std::make_unique<TandemProcess>(args, env);
  }
  void start_prefiller(int i) {
    std::vector<std::string> env = {
        "LMCACHE_CONFIG_FILE=" + example_config("lmcache-prefiller-config-cpu.yaml"),
        "LMCACHE_CHUNK_SIZE=16",
        "LMCACHE_PD_BUFFER_SIZE=16777216",
        "LMCACHE_PD_PEER_HOST=127.0.0.1",
        "LMCACHE_PD_PEER_INIT_PORT=" + std::to_string(init_ports_[0]),
        "LMCACHE_PD_PEER_ALLOC_PORT=" + std::to_string(alloc_ports_[0]),
        "LMCACHE_PD_PROXY_HOST=127.0.0.1",
        "LMCACHE_PD_PROXY_PORT=" + std::to_string(notify_port_)};
    env.insert(env.end(), options_.prefiller_env.begin(), options_.prefiller_env.end());
    std::vector<std::string> args =
        with_flags(serve_args(prefiller_ports_[i], kProducer, model(), options_.kv_cache_memory),
                   options_.prefiller_args);
    prefillers_[i] = std::make_unique<TandemProcess>(args, env);
  }
  // (Re)starts the proxy on its port.
  void start_proxy() {
    std::vector<std::string> args = {
        "proxy", "--host", "127.0.0.1", "--port", std::to_string(proxy_port_), "--prefiller-host",
        "127.0.0.1", "--prefiller-port", join(prefiller_ports_), "--decoder-host", "127.0.0.1",
        "--decoder-port", join(decoder_ports_), "--decoder-init-port", join(init_ports_),
        "--decoder-alloc-port", join(alloc_ports_), "--proxy-host", "127.0.0.1", "--proxy-port",
        std::to_string(notify_port_),
        // Stretched in the sanitizer builds, where 100 queued prompts take ~30 s to prefill.
        "--transfer-timeout", std::to_string(10 * kLatencyScale), "--prefill-timeout",
        std::to_string(30 * kLatencyScale), "--decode-timeout", std::to_string(30 * kLatencyScale),
        "--stats-interval", "1"};
    proxy_ = std::make_unique<TandemProcess>(with_flags(args, options_.proxy_args));
  }

  int proxy_port() const { return proxy_port_; }
  int plain_port() const { return plain_port_; }
  int decoder_port(int i) const { return decoder_ports_[i]; }
  int prefiller_port(int i) const { return prefiller_ports_[i]; }
  TandemProcess& decoder(int i) { return *decoders_[i]; }
  TandemProcess& prefiller(int i) { return *prefillers_[i]; }
  TandemProcess& proxy() { return *proxy_; }
  size_t num_prefillers() const { return prefillers_.size(); }
  size_t num_decoders() const { return decoders_.size(); }
  std::string model() const { return options_.model.empty() ? model_dir() : options_.model; }

 private:
  DisaggOptions options_;
  int notify_port_ = 0, plain_port_ = 0, proxy_port_ = 0;
  std::vector<int> decoder_ports_, init_ports_, alloc_ports_, prefiller_ports_;
  std::vector<std::unique_ptr<TandemProcess>> decoders_, prefillers_;
  std::unique_ptr<TandemProcess> plain_, proxy_;
};

struct Answer {
  int status = 0;    // 0: no HTTP answer (the connection failed or broke)
  std::string text;  // the generated text (streamed: the deltas joined)
  std::string finish_reason;
  json usage;
  std::string raw;
  bool stream_error = false;  // a streamed answer that ended with an error event
};

// One request; streamed answers are reassembled from their SSE events. `extra` is merged into
// the body (e.g. {"ignore_eos": true}).
inline Answer ask(int port, bool chat, const json& prompt, bool stream, int max_tokens = 16,
                  const json& extra = json::object()) {
  json body = {
      {"model", model_dir()}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", stream}};
  if (chat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", prompt}}});
  } else {
    body["prompt"] = prompt;
  }
  if (stream) body["stream_options"] = {{"include_usage", true}};
  body.update(extra);
  RawReply reply = post(port, chat ? "/v1/chat/completions" : "/v1/completions", body);
  Answer a;
  a.status = reply.status;
  a.raw = reply.body;
  if (reply.status != 200) return a;
  if (!stream) {
    json j = json::parse(reply.body, nullptr, false);
    if (!j.is_object()) return a;
    const json& choice = j["choices"][0];
    a.text =
        chat ? choice["message"]["content"].get<std::string>() : choice["text"].get<std::string>();
    a.finish_reason = choice.value("finish_reason", "");
    a.usage = j["usage"];
    return a;
  }
  size_t pos = 0;
  bool done = false;
  while ((pos = reply.body.find("data: ", pos)) != std::string::npos) {
    size_t end = reply.body.find("\n\n", pos);
    std::string data = reply.body.substr(pos + 6, end - pos - 6);
    pos = end == std::string::npos ? reply.body.size() : end;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
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
  // A stream cut off without [DONE] (the proxy died) is an error too, not a short answer.
  if (!done) a.stream_error = true;
  return a;
}

// What an engine still holds: "" when nothing (no running request, no KV block in use and, on a
// decoder, an empty transfer buffer).
inline std::string held_by(const std::string& name, int port, bool decoder) {
  std::string page = get_metrics(port);
  std::string out;
  for (const char* m :
       {"tandem:num_requests_running", "tandem:num_requests_waiting", "tandem:kv_blocks_used"}) {
    if (metric(page, m) != 0) out += fmt::format("{} {} = {}; ", name, m, metric(page, m));
  }
  if (decoder && metric(page, "tandem:pd_buffer_bytes_used") != 0) {
    out += fmt::format("{} pd_buffer_bytes_used = {}; ", name,
                       metric(page, "tandem:pd_buffer_bytes_used"));
  }
  return out;
}

// Waits (up to `limit`) until no engine holds anything; "" or what is still held.
inline std::string wait_until_drained(DisaggSystem& system,
                                      std::chrono::seconds limit = std::chrono::seconds(20)) {
  std::string held;
  eventually(
      [&] {
        held.clear();
        for (size_t i = 0; i < system.num_prefillers(); ++i) {
          held += held_by("prefiller", system.prefiller_port(int(i)), false);
        }
        for (size_t i = 0; i < system.num_decoders(); ++i) {
          held += held_by("decoder", system.decoder_port(int(i)), true);
        }
        return held.empty();
      },
      limit);
  return held;
}

}  // namespace tandem::test
