// OnePOneD: the 1p1d example as test processes on free ports — a prefiller and a decoder
// (`tandem serve` with the example's CPU LMCache configs and the reference --kv-transfer-config)
// and `tandem proxy` in front — with extra flags for every server (e.g. --api-key).
#pragma once
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fake_engines.h"
#include "tandem_process.h"
#include "test_support.h"

namespace tandem::test {

class OnePOneD {
 public:
  struct Options {
    std::vector<std::string> engine_flags;  // appended to both `tandem serve` command lines
    std::vector<std::string> proxy_flags;   // appended to the `tandem proxy` command line
    std::vector<std::string> decoder_env;   // more NAME=VALUE for the decoder
  };

  OnePOneD() : OnePOneD(Options{}) {}
  explicit OnePOneD(const Options& options) {
    std::string dir = (make_temp_dir("tandem-1p1d") / "chat.jinja").string();
    // As real templates do, it refuses some conversations (raise_exception: a 400).
    std::ofstream(dir) << "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception("
                          "'Conversations must not start with an assistant message') }}{% endif %}"
                          "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                          "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    chat_template_ = dir;
    const std::string notify = std::to_string(notify_port_), init = std::to_string(init_port_),
                      alloc = std::to_string(alloc_port_);
    std::vector<std::string> decoder_env = {
        "LMCACHE_CONFIG_FILE=" + config("lmcache-decoder-config-cpu.yaml"), "LMCACHE_CHUNK_SIZE=16",
        "LMCACHE_PD_BUFFER_SIZE=16777216", "LMCACHE_PD_PEER_HOST=127.0.0.1",
        "LMCACHE_PD_PEER_INIT_PORT=" + init, "LMCACHE_PD_PEER_ALLOC_PORT=" + alloc};
    decoder_env.insert(decoder_env.end(), options.decoder_env.begin(), options.decoder_env.end());
    decoder_ = std::make_unique<TandemProcess>(
        serve_args(decoder_port_, kConsumer, options.engine_flags), decoder_env);
    prefiller_ = std::make_unique<TandemProcess>(
        serve_args(prefiller_port_, kProducer, options.engine_flags),
        std::vector<std::string>{
            "LMCACHE_CONFIG_FILE=" + config("lmcache-prefiller-config-cpu.yaml"),
            "LMCACHE_CHUNK_SIZE=16", "LMCACHE_PD_BUFFER_SIZE=16777216",
            "LMCACHE_PD_PEER_HOST=127.0.0.1", "LMCACHE_PD_PEER_INIT_PORT=" + init,
            "LMCACHE_PD_PEER_ALLOC_PORT=" + alloc, "LMCACHE_PD_PROXY_HOST=127.0.0.1",
            "LMCACHE_PD_PROXY_PORT=" + notify});
    std::vector<std::string> proxy_args = {
        "proxy", "--host", "127.0.0.1", "--port", std::to_string(proxy_port_),
        "--prefiller-host", "127.0.0.1", "--prefiller-port", std::to_string(prefiller_port_),
        "--decoder-host", "127.0.0.1", "--decoder-port", std::to_string(decoder_port_),
        "--decoder-init-port", init, "--decoder-alloc-port", alloc, "--proxy-host", "127.0.0.1",
        "--proxy-port", notify, "--transfer-timeout", "10", "--prefill-timeout", "60",
        "--decode-timeout", "60"};
    proxy_args.insert(proxy_args.end(), options.proxy_flags.begin(), options.proxy_flags.end());
    proxy_ = std::make_unique<TandemProcess>(proxy_args);
  }

  // "" when all three answer; else the log of the one that does not.
  std::string wait_ready() {
    if (decoder_->wait_for_port() < 0) return "decoder:\n" + decoder_->log();
    if (prefiller_->wait_for_port() < 0) return "prefiller:\n" + prefiller_->log();
    if (proxy_->wait_for_port() < 0) return "proxy:\n" + proxy_->log();
    return "";
  }

  std::string model() const { return golden_model("stories260K").string(); }
  int prefiller_port() const { return prefiller_port_; }
  int decoder_port() const { return decoder_port_; }
  int proxy_port() const { return proxy_port_; }
  TandemProcess& decoder() { return *decoder_; }
  TandemProcess& prefiller() { return *prefiller_; }
  TandemProcess& proxy() { return *proxy_; }

 private:
  static constexpr const char* kProducer =
      R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "producer1"}})";
  static constexpr const char* kConsumer =
      R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "consumer1", "skip_last_n_tokens": 1}})";

  static std::string config(const std::string& name) {
    return std::string(TANDEM_SOURCE_DIR) + "/examples/disagg_prefill/1p1d/configs/" + name;
  }

  std::vector<std::string> serve_args(int port, const char* transfer_config,
                                      const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"serve", model(), "--port", std::to_string(port),
                                     "--enforce-eager", "--no-enable-prefix-caching",
                                     "--disable-log-requests", "--threads", "1",
                                     "--kv-cache-memory", "8MiB", "--chat-template",
                                     chat_template_, "--kv-transfer-config", transfer_config};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  int notify_port_ = dead_port(), init_port_ = dead_port(), alloc_port_ = dead_port();
  int decoder_port_ = dead_port(), prefiller_port_ = dead_port(), proxy_port_ = dead_port();
  std::string chat_template_;
  std::unique_ptr<TandemProcess> decoder_, prefiller_, proxy_;
};

}  // namespace tandem::test
