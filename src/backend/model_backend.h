// The seam between the engine and where the forward pass runs: a ModelBackend owns a model's
// weights and its paged KV storage and runs one flat ForwardBatch, returning logits on the host.
// The CPU backend (the oracle) wraps LlamaModel + KvCache unchanged; the CUDA backend keeps bf16
// weights and a bf16 KV pool on the GPU. Block bookkeeping (which blocks a sequence owns) stays in
// kv/ and engine/, identical for both.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "kv/kv_cache.h"
#include "kv/kv_cache_io.h"
#include "model/device_sampling.h"
#include "model/forward_batch.h"
#include "model/model_config.h"

namespace tandem {

class ThreadPool;

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;

  virtual const ModelConfig& config() const = 0;
  // (Re)allocates the KV storage: num_blocks blocks of block_size tokens, contents undefined.
  virtual void allocate_kv_cache(int64_t num_blocks, int block_size) = 0;
  // The current KV storage's shape (num_blocks 0 before allocate_kv_cache).
  virtual KvCacheShape kv_cache_shape() const = 0;
  // Runs `batch` (validated first: throws tandem::Error before touching the cache), storing its
  // K/V at slot_mapping, and writes logits (batch.logits_indices.size(), vocab_size) f32 to the
  // host buffer `logits`.
  virtual void forward(const ForwardBatch& batch, float* logits) = 0;
  // Whether forward_sampled() is available (CUDA): tokens are then picked on the device, and only
  // the logits rows the host sampler needs cross to the host.
  virtual bool has_device_sampler() const { return false; }
  // Runs `batch` like forward(); picks a token for every logits row as draws[row] says (one draw
  // a row; the host rows' draws are not used) into `picks`, and copies to `logits` only the rows
  // `host_rows` names (ascending indices into batch.logits_indices), densely in that order:
  // (host_rows.size(), vocab_size) f32.
  virtual void forward_sampled(const ForwardBatch& batch, std::span<const DeviceDraw> draws,
                               std::span<const int32_t> host_rows, float* logits,
                               DevicePicks& picks);

  // Bytes one KV block of `block_size` tokens takes (all layers, K and V).
  int64_t kv_block_bytes(int block_size) const {
    KvCacheShape one = kv_cache_shape();
    one.num_blocks = 1;
    one.block_size = block_size;
    return one.total_bytes();
  }
  // Device memory the KV cache may take when the process keeps to `fraction` of the device's
  // memory (vLLM's --gpu-memory-utilization), after what is allocated now; nullopt on the CPU.
  virtual std::optional<uint64_t> kv_memory_budget(double fraction) const {
    (void)fraction;
    return std::nullopt;
  }
  // The host KV storage (CPU backend), for code that reads or writes blocks directly (KV
  // transfer); null where the cache lives in device memory.
  virtual KvCache* host_kv_cache() { return nullptr; }
  // The KV transfer's access to a cache in device memory (CUDA backend, once the cache is
  // allocated); null where host_kv_cache() serves.
  virtual KvCacheIo* device_kv_cache_io() { return nullptr; }
  // Runs the kinds of step the engine will run, on dummy tokens whose keys and values go only to
  // scratch storage, so the first requests do not pay for loading kernels and capturing graphs
  // (vLLM warms up and captures its CUDA graphs at startup): a prefill of up to
  // `max_num_batched_tokens` tokens (at most `max_model_len`) and a decode step at every batch
  // size bucket up to `max_num_seqs`. The cache's blocks keep their contents; a no-op on the CPU.
  virtual void warm_up(int max_num_seqs, int max_num_batched_tokens, int max_model_len) {
    (void)max_num_seqs;
    (void)max_num_batched_tokens;
    (void)max_model_len;
  }
  // Seconds the device spent on the forward passes so far (CUDA events from a step's first kernel
  // to its last copy back), for telling device time from host time; 0 on the CPU.
  virtual double device_seconds() const { return 0.0; }
};

enum class BackendDevice { kCpu, kCuda };
// CUDA: decode steps replay captured CUDA graphs (kGraphs) or launch kernel by kernel (kEager,
// vLLM's --enforce-eager). No effect on the CPU.
enum class ExecutionMode { kGraphs, kEager };

struct BackendOptions {
  BackendDevice device = BackendDevice::kCpu;
  ThreadPool* pool = nullptr;         // CPU: threads for the forward pass (may be null)
  int max_num_batched_tokens = 8192;  // CUDA: rows the activation workspace is sized for
  ExecutionMode execution = ExecutionMode::kGraphs;
  int cuda_device = 0;  // CUDA: which device (ordinal among the visible ones)
};

// Loads the model in `dir` onto `options.device`. Throws tandem::Error for a bad model, and for
// kCuda in a build without CUDA or on a machine without a GPU.
std::unique_ptr<ModelBackend> load_model_backend(const std::filesystem::path& dir,
                                                 const BackendOptions& options);

}  // namespace tandem
