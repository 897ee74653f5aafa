// LlmEngine: the engine thread. Each iteration drains the task queue (add / abort), runs one
// step (schedule -> run model + sample -> update) and pushes every request's new token, or
// its final output, to its RequestStream; it sleeps on a condition variable when idle.
// KV cache size: --kv-cache-memory-bytes when given, else enough blocks for max_num_seqs
// sequences of max_model_len tokens, capped at 1 GiB (the CPU default); on CUDA, what
// --gpu-memory-utilization leaves after the weights, the workspace and the KV transfer's GPU
// buffers (engine/kv_transfer_reserve.h).
#include "engine/llm_engine.h"

#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <random>
#include <unordered_set>
#include <variant>
#include <vector>

#include "backend/model_backend.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/thread_pool.h"
#include "engine/kv_connector_chain.h"
#include "engine/kv_transfer_reserve.h"
#include "engine/model_runner.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/stop_checker.h"
#include "kv/block_manager.h"
#include "kv/kv_cache.h"
#include "kvstore/kv_store_connector.h"
#include "transfer/host_kv_cache_io.h"
#include "transfer/kv_connector_factory.h"

namespace tandem {
namespace {

constexpr uint64_t kDefaultCpuKvCacheBytes = uint64_t(1) << 30;
// How long the loop sleeps when every waiting sequence waits for its KV transfer.
constexpr auto kStalledWait = std::chrono::milliseconds(1);

struct AddTask {
  EngineRequest request;
  std::shared_ptr<RequestStream> stream;
};
struct AbortTask {
  std::string request_id;
};
struct AbortTransferTask {
  std::string transfer_id;
};
using Task = std::variant<AddTask, AbortTask, AbortTransferTask>;

// The model on the configured device (CPU: the f32 oracle; CUDA: bf16 on the GPU).
std::unique_ptr<ModelBackend> load_backend(const EngineConfig& config, ThreadPool& pool) {
  BackendOptions o;
  o.device = config.device == Device::kCuda ? BackendDevice::kCuda : BackendDevice::kCpu;
  o.pool = &pool;
  o.max_num_batched_tokens = std::max(1, config.max_num_batched_tokens);
  o.execution = config.enforce_eager ? ExecutionMode::kEager : ExecutionMode::kGraphs;
  o.cuda_device = config.cuda_device;
  return load_model_backend(config.model_dir, o);
}

int resolve_max_model_len(const EngineConfig& config, const ModelConfig& model) {
  TANDEM_CHECK(config.max_model_len >= 0, "max_model_len must be >= 0 (0 = the model's), got {}",
               config.max_model_len);
  if (config.max_model_len == 0) return model.max_position_embeddings;
  TANDEM_CHECK(config.max_model_len <= model.max_position_embeddings,
               "max_model_len {} exceeds the model's max_position_embeddings {}",
               config.max_model_len, model.max_position_embeddings);
  return config.max_model_len;
}

// KV blocks: from kv_cache_memory_bytes, or the default budget described at the top (on CUDA:
// what gpu_memory_utilization leaves after the weights, workspace and transfer buffers).
int resolve_num_blocks(const EngineConfig& config, const ModelBackend& model, int max_model_len) {
  TANDEM_CHECK(config.block_size >= 1, "block_size must be >= 1, got {}", config.block_size);
  const uint64_t block_bytes = uint64_t(model.kv_block_bytes(config.block_size));
  const std::optional<uint64_t> device_budget =
      model.kv_memory_budget(config.gpu_memory_utilization);
  uint64_t blocks = 0;
  if (config.kv_cache_memory_bytes > 0) {
    blocks = config.kv_cache_memory_bytes / block_bytes;
    TANDEM_CHECK(blocks >= 1,
                 "kv_cache_memory_bytes {} is smaller than one KV block ({} bytes "
                 "for {} tokens)",
                 config.kv_cache_memory_bytes, block_bytes, config.block_size);
  } else if (device_budget) {
    const uint64_t transfer = kv_transfer_gpu_bytes(config);
    blocks = *device_budget > transfer ? (*device_budget - transfer) / block_bytes : 0;
    TANDEM_CHECK(blocks >= 1,
                 "gpu_memory_utilization {} leaves no GPU memory for the KV cache after the "
                 "weights, the workspace and {} bytes of KV transfer buffer (pd_buffer_size); "
                 "one block is {} bytes",
                 config.gpu_memory_utilization, transfer, block_bytes);
    if (transfer > 0) {
      log_info(
          "KV cache: {} blocks; {:.2f} GiB of GPU memory kept for the KV transfer "
          "(pd_buffer_size)",
          blocks, double(transfer) / double(1ull << 30));
    }
  } else {
    uint64_t tokens = uint64_t(std::max(1, config.max_num_seqs)) * uint64_t(max_model_len);
    uint64_t needed = (tokens + uint64_t(config.block_size) - 1) / uint64_t(config.block_size);
    blocks = std::max<uint64_t>(1, std::min(needed, kDefaultCpuKvCacheBytes / block_bytes));
  }
  TANDEM_CHECK(blocks <= uint64_t(std::numeric_limits<int32_t>::max()),
               "the KV cache would have {} blocks; at most {} are supported", blocks,
               std::numeric_limits<int32_t>::max());
  return int(blocks);
}

KvCacheShape allocate_kv_cache(ModelBackend& model, int num_blocks, int block_size) {
  model.allocate_kv_cache(num_blocks, block_size);
  return model.kv_cache_shape();
}

// How the connectors reach the KV blocks. Disaggregated prefill: the CPU backend's host cache
// through kv_layout's functions (kept in `host_io`), or the CUDA backend's own device KvCacheIo.
// The CPU/disk tiers: host memory only. With both, the tiers load first and the transfer
// continues after them.
std::unique_ptr<KvConnector> make_connector(const EngineConfig& config, ModelBackend& model,
                                            std::unique_ptr<KvCacheIo>& host_io) {
  if (!config.kv_connector && !config.kv_store) return nullptr;
  KvCache* kv = model.host_kv_cache();
  std::vector<std::unique_ptr<KvConnector>> links;
  if (config.kv_store) {
    TANDEM_CHECK(kv != nullptr,
                 "--kv-transfer-config: the KV tiers (local_cpu, local_disk) keep KV in host "
                 "memory, and the CUDA backend keeps it on the GPU (not wired to the tiers yet); "
                 "set local_cpu: False and no local_disk, or use --device cpu");
    links.push_back(std::make_unique<KvStoreConnector>(
        *config.kv_store, *kv, transfer_model_fingerprint(model.config(), kv->shape())));
  }
  if (config.kv_connector) {
    KvCacheIo* io = model.device_kv_cache_io();
    if (!io) {
      TANDEM_CHECK(kv != nullptr, "--kv-transfer-config: the model backend exposes no KV cache");
      host_io = std::make_unique<HostKvCacheIo>(*kv);
      io = host_io.get();
    }
    links.push_back(
        make_kv_connector(*config.kv_connector, config.kv_transport, *io, model.config()));
  }
  if (links.size() == 1) return std::move(links.front());
  return std::make_unique<KvConnectorChain>(std::move(links));
}

// Prompt tokens among the tokens a step computes for `s`.
int prompt_tokens_in_step(const ScheduledSeq& s) {
  const Sequence& seq = *s.seq;
  int end = std::min(seq.num_computed_tokens + s.num_new_tokens, seq.num_prompt_tokens);
  return std::max(0, end - seq.num_computed_tokens);
}

RequestOutput aborted_output() {
  RequestOutput out;
  out.finish = FinishReason::kAbort;
  return out;
}

// The last output of a sequence that finished without a new token (abort, error).
RequestOutput final_output(const Sequence& seq) {
  RequestOutput out;
  out.finish = seq.finish_reason;
  out.error = seq.error;
  out.num_prompt_tokens = seq.num_prompt_tokens;
  out.num_cached_tokens = seq.num_cached_tokens;
  out.times = seq.times;
  return out;
}

TokenLogprob to_token_logprob(int32_t token, const SampleLogprobs& lp) {
  TokenLogprob out{.token = token, .logprob = lp.logprob, .top = {}};
  for (const auto& entry : lp.top) out.top.emplace_back(entry.token_id, entry.logprob);
  return out;
}

}  // namespace

struct LlmEngine::Impl {
  explicit Impl(const EngineConfig& c);

  void loop();
  void handle(Task& task);
  void add(AddTask& task);
  void take_first_token(Sequence& seq);
  // One step; false when nothing could be scheduled.
  bool guarded_step();
  bool step();
  void fail_step(const SchedulerOutput& out, const std::string& message);
  // Pushes `seq`'s output: its newest token (when `token` is set) and, if finished, the end.
  void emit(Sequence& seq, const std::optional<SampleResult>& token);
  // Before update(): counts computed prompt tokens and lets the connector push finished prompts
  // while their blocks are still held.
  void after_forward(const SchedulerOutput& out);
  void publish_stats();
  void finish_all_with_abort(std::vector<Task>& pending);

  EngineConfig config;
  ThreadPool pool;
  std::unique_ptr<ModelBackend> model;  // weights and the KV storage, CPU or CUDA
  int max_model_len;
  KvCacheShape kv;
  BlockManager blocks;
  std::unique_ptr<KvCacheIo> host_kv_io;   // the connector's view of a host cache (CPU backend)
  std::unique_ptr<KvConnector> connector;  // disaggregated prefill; null when off
  Scheduler scheduler;
  Sampler sampler;
  ModelRunner runner;
  std::mt19937_64 seed_rng;                  // seeds unseeded requests when config.seed is set
  std::unordered_set<std::string> live_ids;  // requests added and not yet finished

  std::mutex mutex;  // guards tasks, stopping
  std::condition_variable cv;
  std::vector<Task> tasks;
  bool stopping = false;
  std::thread thread;

  mutable std::mutex stats_mutex;  // guards stats
  EngineStats stats;
  uint64_t prompt_tokens = 0, generation_tokens = 0;  // engine thread only
  uint64_t prompt_tokens_computed = 0;                // engine thread only
  uint64_t steps = 0;                                 // engine thread only
  double step_seconds = 0.0, forward_seconds = 0.0;   // engine thread only
};

LlmEngine::Impl::Impl(const EngineConfig& c)
    : config(c),
      pool(c.num_threads),
      model(load_backend(c, pool)),
      max_model_len(resolve_max_model_len(c, model->config())),
      kv(allocate_kv_cache(*model, resolve_num_blocks(c, *model, max_model_len), c.block_size)),
      blocks({.num_blocks = int(kv.num_blocks),
              .block_size = c.block_size,
              .prefix_caching =
                  c.enable_prefix_caching ? PrefixCaching::kEnabled : PrefixCaching::kDisabled,
              .model_fingerprint = model_fingerprint(model->config(), kv)}),
      connector(make_connector(c, *model, host_kv_io)),
      scheduler({.max_num_seqs = c.max_num_seqs,
                 .max_num_batched_tokens = c.max_num_batched_tokens,
                 .max_model_len = max_model_len},
                blocks, connector.get()),
      sampler(&pool),
      runner(*model, sampler),
      seed_rng(c.seed.value_or(0)) {
  stats.kv_blocks_total = blocks.num_blocks();
  log_info(
      "engine: {} threads, max_model_len {}, KV cache {} blocks x {} tokens ({:.1f} MiB), "
      "prefix caching {}",
      pool.size(), max_model_len, blocks.num_blocks(), c.block_size,
      double(kv.total_bytes()) / (1 << 20), blocks.prefix_caching() ? "on" : "off");
  model->warm_up(c.max_num_seqs, c.max_num_batched_tokens, int(max_model_len));
}

void LlmEngine::Impl::loop() {
  std::vector<Task> batch;
  bool stalled = false;  // the last step had work but could run none of it (KV still arriving)
  for (;;) {
    {
      std::unique_lock lock(mutex);
      auto woken = [&] { return stopping || !tasks.empty(); };
      if (!scheduler.has_work()) {
        cv.wait(lock, woken);
      } else if (stalled) {
        cv.wait_for(lock, kStalledWait, woken);
      }
      if (stopping) break;
      batch.swap(tasks);
    }
    for (Task& task : batch) handle(task);
    batch.clear();
    stalled = scheduler.has_work() && !guarded_step();
    publish_stats();
  }
  std::lock_guard lock(mutex);
  finish_all_with_abort(tasks);
}

void LlmEngine::Impl::handle(Task& task) {
  if (auto* add_task = std::get_if<AddTask>(&task)) return add(*add_task);
  if (auto* abort_transfer = std::get_if<AbortTransferTask>(&task)) {
    const std::string& transfer_id = abort_transfer->transfer_id;
    for (const std::string& id : scheduler.ids_of_transfer(transfer_id)) {
      if (auto seq = scheduler.abort(id)) emit(*seq, std::nullopt);
    }
    // After the sequences: a prompt computed just before this task has its job queued by now.
    if (connector) connector->abort_transfer(transfer_id);
    return;
  }
  const std::string& id = std::get<AbortTask>(task).request_id;
  if (auto seq = scheduler.abort(id)) emit(*seq, std::nullopt);
}

void LlmEngine::Impl::add(AddTask& task) {
  auto seq = std::make_unique<Sequence>(std::move(task.request), task.stream, max_model_len);
  try {
    TANDEM_CHECK(!live_ids.contains(seq->request_id), "request id {} is already in use",
                 seq->request_id);
    for (int32_t t : seq->token_ids) {
      TANDEM_CHECK(t >= 0 && t < model->config().vocab_size,
                   "request {}: prompt token id {} is outside the vocabulary [0, {})",
                   seq->request_id, t, model->config().vocab_size);
    }
    if (auto error = scheduler.admission_error(*seq)) fail("{}", *error);
    if (config.seed && !seq->params.seed) seq->params.seed = int64_t(seed_rng() >> 1);
    const std::vector<int>& eos = model->config().eos_token_ids;
    seq->sampler = std::make_unique<SamplerState>(seq->params, seq->token_ids, eos);
    seq->stop =
        std::make_unique<StopChecker>(seq->params, eos, max_model_len - seq->num_prompt_tokens);
    if (seq->kv_transfer && seq->kv_transfer->first_token_id) take_first_token(*seq);
  } catch (const Error& e) {
    seq->finish(FinishReason::kError, e.what());
    if (connector) connector->on_finished(*seq);
    seq->stream->push(final_output(*seq));  // never live: live_ids stays as it is
    return;
  }
  if (seq->is_finished()) {  // by its handed-over first token: never live
    emit(*seq, std::nullopt);
    return;
  }
  live_ids.insert(seq->request_id);
  scheduler.add(std::move(seq));
}

// The prefiller's first token (already pushed to the stream by add_request) becomes the
// sequence's first output, through the sampler and stop checker as a sampled token would.
void LlmEngine::Impl::take_first_token(Sequence& seq) {
  const int32_t token = *seq.kv_transfer->first_token_id;
  TANDEM_CHECK(token >= 0 && token < model->config().vocab_size,
               "request {}: first token id {} is outside the vocabulary [0, {})", seq.request_id,
               token, model->config().vocab_size);
  seq.hand_over_first_token(token);
  seq.sampler->append_handed_over_token(token);
  const FinishReason finish = seq.within_max_tokens(seq.stop->append(token, ""));
  prompt_tokens += uint64_t(seq.num_prompt_tokens);
  ++generation_tokens;
  if (finish != FinishReason::kNone) seq.finish(finish);
}

// A failure outside the model (a broken invariant) ends every live request with kError
// instead of the process; the engine stays up for new requests.
bool LlmEngine::Impl::guarded_step() {
  try {
    return step();
  } catch (const std::exception& e) {
    log_error("engine: step failed, finishing all {} live requests: {}", live_ids.size(), e.what());
    for (auto& seq : scheduler.abort_all(FinishReason::kError, e.what())) emit(*seq, std::nullopt);
    return true;
  }
}

bool LlmEngine::Impl::step() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  SchedulerOutput out = scheduler.schedule();
  if (out.empty()) return false;
  RunnerOutput result;
  const auto forward_start = Clock::now();
  try {
    result = runner.run(out);
  } catch (const std::exception& e) {
    fail_step(out, e.what());
    return true;
  }
  forward_seconds += std::chrono::duration<double>(Clock::now() - forward_start).count();
  after_forward(out);
  auto finished = scheduler.update(out, result.tokens);  // keeps finished sequences alive here
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    if (out.seqs[i].samples) emit(*out.seqs[i].seq, result.samples[i]);
  }
  ++steps;
  step_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  return true;
}

void LlmEngine::Impl::after_forward(const SchedulerOutput& out) {
  for (const ScheduledSeq& s : out.seqs) {
    int prompt_part = prompt_tokens_in_step(s);
    prompt_tokens_computed += uint64_t(prompt_part);
    const Sequence& seq = *s.seq;
    bool prompt_done =
        prompt_part > 0 && seq.num_computed_tokens + prompt_part == seq.num_prompt_tokens;
    if (connector && prompt_done) connector->on_prompt_computed(seq);
  }
}

void LlmEngine::Impl::fail_step(const SchedulerOutput& out, const std::string& message) {
  log_error("engine: step failed, finishing its {} requests: {}", out.seqs.size(), message);
  std::vector<std::string> ids;
  for (const auto& s : out.seqs) ids.push_back(s.seq->request_id);
  for (const auto& id : ids) {
    if (auto seq = scheduler.abort(id, FinishReason::kError, message)) emit(*seq, std::nullopt);
  }
}

void LlmEngine::Impl::emit(Sequence& seq, const std::optional<SampleResult>& token) {
  RequestOutput out;
  out.num_prompt_tokens = seq.num_prompt_tokens;
  out.num_cached_tokens = seq.num_cached_tokens;
  if (token) {
    out.new_token_ids.push_back(token->token_id);
    if (token->logprobs)
      out.logprobs.push_back(to_token_logprob(token->token_id, *token->logprobs));
    if (seq.num_output_tokens() == 1) prompt_tokens += uint64_t(seq.num_prompt_tokens);
    ++generation_tokens;
  }
  if (seq.is_finished()) {
    out.finish = seq.finish_reason;
    out.error = seq.error;
    out.times = seq.times;
    live_ids.erase(seq.request_id);
    if (connector) connector->on_finished(seq);
  }
  if (seq.stream && (!out.new_token_ids.empty() || seq.is_finished())) {
    seq.stream->push(std::move(out));
  }
}

void LlmEngine::Impl::publish_stats() {
  std::lock_guard lock(stats_mutex);
  stats.num_running = scheduler.num_running();
  stats.num_waiting = scheduler.num_waiting();
  stats.kv_blocks_used = blocks.num_used_blocks();
  stats.prefix_cache_queries = blocks.prefix_cache().queried_tokens();
  stats.prefix_cache_hits = blocks.prefix_cache().hit_tokens();
  stats.prompt_tokens = prompt_tokens;
  stats.generation_tokens = generation_tokens;
  stats.num_preemptions = scheduler.num_preemptions();
  stats.prompt_tokens_computed = prompt_tokens_computed;
  stats.steps = steps;
  stats.step_seconds = step_seconds;
  stats.forward_seconds = forward_seconds;
  stats.device_seconds = model->device_seconds();
}

// Shutdown: every live request and every request still queued ends with kAbort.
void LlmEngine::Impl::finish_all_with_abort(std::vector<Task>& pending) {
  for (auto& seq : scheduler.abort_all()) emit(*seq, std::nullopt);
  for (Task& task : pending) {
    if (auto* add_task = std::get_if<AddTask>(&task)) {
      add_task->stream->push(aborted_output());
    }
  }
  pending.clear();
  publish_stats();
}

LlmEngine::LlmEngine(const EngineConfig& config) : impl_(std::make_unique<Impl>(config)) {}

LlmEngine::~LlmEngine() { stop(); }

void LlmEngine::start() {
  std::lock_guard lock(impl_->mutex);
  TANDEM_CHECK(!impl_->thread.joinable() && !impl_->stopping, "engine: start() called twice");
  impl_->thread = std::thread([impl = impl_.get()] { impl->loop(); });
}

void LlmEngine::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  } else {
    std::lock_guard lock(impl_->mutex);
    impl_->finish_all_with_abort(impl_->tasks);
  }
}

void LlmEngine::add_request(EngineRequest request, std::shared_ptr<RequestStream> stream) {
  TANDEM_CHECK(stream != nullptr, "add_request: request {} has no stream", request.request_id);
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->stopping) {
      // A first token handed over by the prefiller goes out now, not after the step in flight;
      // pushed before the task is queued, so it precedes whatever the engine pushes.
      if (request.kv_transfer && request.kv_transfer->first_token_id) {
        RequestOutput first;
        first.new_token_ids.push_back(*request.kv_transfer->first_token_id);
        first.num_prompt_tokens = int(request.prompt_ids.size());
        stream->push(std::move(first));
      }
      impl_->tasks.push_back(AddTask{std::move(request), stream});
      stream.reset();
    }
  }
  if (stream) {
    stream->push(aborted_output());  // the engine has stopped
    return;
  }
  impl_->cv.notify_one();
}

void LlmEngine::abort_transfer(const std::string& transfer_id) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->tasks.push_back(AbortTransferTask{transfer_id});
  }
  impl_->cv.notify_one();
}

void LlmEngine::abort_request(const std::string& request_id) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->tasks.push_back(AbortTask{request_id});
  }
  impl_->cv.notify_one();
}

EngineStats LlmEngine::stats() const {
  EngineStats s;
  {
    std::lock_guard lock(impl_->stats_mutex);
    s = impl_->stats;
  }
  // The connector's threads move its counters while the engine idles: read them now.
  if (impl_->connector) s.kv_transfer = impl_->connector->stats();
  return s;
}

const EngineConfig& LlmEngine::config() const { return impl_->config; }

const ModelConfig& LlmEngine::model_config() const { return impl_->model->config(); }

KvConnector* LlmEngine::kv_connector() const { return impl_->connector.get(); }

}  // namespace tandem
