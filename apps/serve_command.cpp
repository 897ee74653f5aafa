// `tandem serve MODEL [options]`: the OpenAI-compatible server, with vLLM's flags and
// defaults. Loads the model into an LlmEngine, serves /v1/completions, /v1/chat/completions and
// the other endpoints until SIGINT/SIGTERM, then stops gracefully (open streams end, engine
// requests are aborted, the engine thread joins).
#include <pthread.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "config/kv_transfer_config.h"
#include "config/lmcache_config.h"
#include "core/error.h"
#include "core/heap_trimmer.h"
#include "core/logging.h"
#include "engine/llm_engine.h"
#include "kvstore/kv_store_config.h"
#include "server/openai_server.h"
#include "server/serving_setup.h"
#include "transfer/kv_connector_config.h"
#include "transfer/ucx_transport.h"
#ifdef TANDEM_WITH_CUDA
#include "transfer/cuda_ipc_transport.h"
#endif

namespace tandem::apps {
namespace {

struct ServeOptions {
  std::string model;
  std::string host = "0.0.0.0";
  int port = 8000;
  std::vector<std::string> served_model_names;
  int max_model_len = 0;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int block_size = 16;
  bool enable_prefix_caching = true;
  bool enforce_eager = false;  // CUDA: no CUDA graphs (the CPU has none to skip)
  bool disable_log_requests = false;
  std::optional<std::string> kv_transfer_config;
  std::optional<std::string> kv_config_file;  // LMCache YAML (else LMCACHE_CONFIG_FILE)
  std::optional<uint64_t> seed;
  std::optional<std::string> api_key;
  std::string device = "cpu";
  int threads = 0;
  uint64_t kv_cache_memory = 0;
  float gpu_memory_utilization = 0.9f;
  int cuda_device = 0;
  std::optional<std::string> chat_template;
  uint64_t max_request_body = 32u << 20;
};

void add_options(CLI::App& app, ServeOptions& o) {
  app.add_option("model", o.model, "Hugging Face model directory")->required();
  app.add_option("--host", o.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o.port, "port to listen on")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--served-model-name", o.served_model_names,
                 "model name(s) the API accepts (default: MODEL as given)");
  app.add_option("--max-model-len", o.max_model_len, "context length (default: the model's)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--max-num-seqs", o.max_num_seqs, "sequences running at once")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-num-batched-tokens", o.max_num_batched_tokens, "tokens per engine step")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  app.add_option("--block-size", o.block_size, "tokens per KV block")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", o.enable_prefix_caching,
               "reuse KV blocks of shared prompt prefixes (default: on)");
  app.add_flag("--enforce-eager", o.enforce_eager, "CUDA: run decode steps without CUDA graphs");
  app.add_flag("--disable-log-requests", o.disable_log_requests, "no log line per request");
  app.add_option("--kv-transfer-config", o.kv_transfer_config,
                 "KV transfer connector config (JSON), e.g. LMCacheConnectorV1");
  app.add_option("--kv-config", o.kv_config_file,
                 "LMCache config YAML for --kv-transfer-config (default: $LMCACHE_CONFIG_FILE)");
  app.add_option("--seed", o.seed, "global seed for requests without one");
  app.add_option("--api-key", o.api_key,
                 "require 'Authorization: Bearer KEY' (also TANDEM_API_KEY / VLLM_API_KEY)");
  app.add_option("--device", o.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads for the model (0 = all cores)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--kv-cache-memory,--kv-cache-memory-bytes", o.kv_cache_memory,
                 "KV cache budget in bytes (suffixes like 512MiB work; 0 = default)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                 "fraction of GPU memory to use (CUDA only)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--cuda-device", o.cuda_device,
                 "CUDA: which GPU (ordinal among the visible ones); both engines of a 1p1d pair "
                 "must see both GPUs for CUDA IPC, so pick with this rather than "
                 "CUDA_VISIBLE_DEVICES")
      ->check(CLI::Range(0, 1023))
      ->capture_default_str();
  app.add_option("--chat-template", o.chat_template, "chat template file (or template text)");
  app.add_option("--max-request-body-bytes", o.max_request_body, "larger request bodies get a 413")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
}

// --kv-transfer-config plus the LMCache config give the KV connectors: disaggregated prefill
// (its UCX transport is started in serve(), once the stop signals are blocked) when enable_pd is
// set, and the CPU/disk KV tiers (local_cpu, local_disk) for kv_both and kv_producer.
void add_kv_connector(const ServeOptions& o, EngineConfig& c) {
  if (!o.kv_transfer_config) {
    TANDEM_CHECK(!o.kv_config_file, "--kv-config is only used with --kv-transfer-config");
    return;
  }
  KvTransferConfig kv = parse_kv_transfer_config(*o.kv_transfer_config);
  std::optional<std::filesystem::path> file;
  if (o.kv_config_file) file = *o.kv_config_file;
  LmCacheConfig lmcache = load_lmcache_config(file);
  std::string peer_id =
      fmt::format("tandem-{}@{}:{} (pid {})", kv_role_name(kv.kv_role), o.host, o.port, getpid());
  c.kv_connector = make_kv_connector_config(kv, lmcache, std::move(peer_id));
  c.kv_store = make_kv_store_config(kv, lmcache);
  if (!c.kv_store) {
    log_info(
        "kv-transfer-config: {} as {}: no KV tiers (local_cpu off or size 0, no local_disk, "
        "or a decoder)",
        kv.kv_connector, kv_role_name(kv.kv_role));
  }
  if (!c.kv_connector) {
    log_info("kv-transfer-config: {} as {}: {} has enable_pd false, so no KV is transferred",
             kv.kv_connector, kv_role_name(kv.kv_role), lmcache.source);
    return;
  }
  if (c.kv_connector->buffer_device == PdBufferDevice::kCuda && o.device != "cuda") {
    log_warning(
        "{}: pd_buffer_device 'cuda' on the CPU engine: the transfer buffer lives in host "
        "memory instead",
        lmcache.source);
    c.kv_connector->buffer_device = PdBufferDevice::kCpu;
  }
  log_info("kv-transfer-config: {} as {}, pd_role {} ({}, chunk_size {})", kv.kv_connector,
           kv_role_name(kv.kv_role), pd_role_name(c.kv_connector->role), lmcache.source,
           c.kv_connector->chunk_size);
}

EngineConfig engine_config(const ServeOptions& o) {
#ifndef TANDEM_WITH_CUDA
  if (o.device == "cuda") {
    fail("--device cuda: this tandem was built without CUDA (configure with -DTANDEM_CUDA=ON)");
  }
#endif
  EngineConfig c;
  c.model_dir = o.model;
  c.device = o.device == "cuda" ? Device::kCuda : Device::kCpu;
  c.num_threads = o.threads;
  c.max_model_len = o.max_model_len;
  c.max_num_seqs = o.max_num_seqs;
  c.max_num_batched_tokens = o.max_num_batched_tokens;
  c.block_size = o.block_size;
  c.enable_prefix_caching = o.enable_prefix_caching;
  c.kv_cache_memory_bytes = o.kv_cache_memory;
  c.gpu_memory_utilization = o.gpu_memory_utilization;
  c.enforce_eager = o.enforce_eager;
  c.cuda_device = o.cuda_device;
  c.seed = o.seed;
  add_kv_connector(o, c);
  return c;
}

std::optional<std::string> api_key(const ServeOptions& o) {
  if (o.api_key) return o.api_key;
  for (const char* name : {"TANDEM_API_KEY", "VLLM_API_KEY"}) {
    if (const char* v = std::getenv(name); v && *v) return std::string(v);
  }
  return std::nullopt;
}

HttpServerOptions http_options(const ServeOptions& o) {
  HttpServerOptions h;
  h.host = o.host;
  h.port = o.port;
  // Every open stream holds a handler thread: room for every running sequence, plus headroom
  // for queued requests and the small endpoints.
  h.num_threads = size_t(std::max(64, o.max_num_seqs + 32));
  h.max_body_bytes = o.max_request_body;
  h.api_key = api_key(o);
  h.request_logging = o.disable_log_requests ? RequestLogging::kOff : RequestLogging::kOn;
  return h;
}

// Blocks SIGINT/SIGTERM in this thread and every thread started after it (so one thread can
// sigwait for them) and ignores SIGPIPE (a write to a vanished client fails instead).
sigset_t block_stop_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

// UCX for the control messages; with pd_buffer_device cuda on a CUDA engine, the KV bytes move
// GPU to GPU by CUDA IPC (else through host memory over UCX).
std::shared_ptr<Transport> make_kv_transport(const EngineConfig& config) {
  std::shared_ptr<Transport> ucx = make_ucx_transport();
#ifdef TANDEM_WITH_CUDA
  if (config.device == Device::kCuda &&
      config.kv_connector->buffer_device == PdBufferDevice::kCuda) {
    return make_cuda_ipc_transport(std::move(ucx), config.cuda_device);
  }
#else
  (void)config;  // without CUDA every engine moves KV through host memory
#endif
  return ucx;
}

// Serves until SIGINT/SIGTERM; then open streams end, their engine requests are aborted and the
// engine stops.
void serve(const ServeOptions& o, EngineConfig config, const HttpServerOptions& http) {
  sigset_t stop_signals = block_stop_signals();  // before the engine, UCX and HTTP threads start
  if (config.kv_connector) config.kv_transport = make_kv_transport(config);
  LlmEngine engine(config);
  ModelAssets assets = load_model_assets(config, engine.model_config(),
                                         {o.served_model_names, o.model, o.chat_template});
  LlmEngineClient client(engine);
  ServingContext ctx{&client, assets.tokenizer.get(), assets.chat.get(), assets.model, nullptr};
  OpenAiServer server(std::move(ctx), http);
  server.bind();
  engine.start();
  HeapTrimmer heap_trimmer("serve");
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  log_info("serving {} as '{}' on http://{}:{} ({} HTTP threads{})", o.model,
           assets.model.names.front(), o.host, server.port(), http.num_threads,
           http.api_key ? ", API key required" : "");
  try {
    server.run();  // returns once the signal thread has stopped the server
  } catch (...) {
    pthread_kill(signal_thread.native_handle(), SIGTERM);  // wake the waiting thread
    signal_thread.join();
    throw;
  }
  signal_thread.join();
  engine.stop();
  log_info("stopped");
}

}  // namespace

int serve_command(int argc, char** argv) {
  CLI::App app{"Serve a model with an OpenAI-compatible API (vLLM's flags).", argv[0]};
  ServeOptions o;
  add_options(app, o);
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  serve(o, engine_config(o), http_options(o));
  return 0;
}

}  // namespace tandem::apps
