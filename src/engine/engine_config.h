// The engine's settings, filled from `tandem serve` flags (vLLM's names and defaults).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "kvstore/kv_store_config.h"
#include "transfer/kv_connector_config.h"

namespace tandem {

class Transport;

enum class Device { kCpu, kCuda };

struct EngineConfig {
  std::filesystem::path model_dir;
  Device device = Device::kCpu;
  int num_threads = 0;                // CPU threads for the forward pass; 0 = all cores
  int max_model_len = 0;              // 0 = the model's max_position_embeddings
  int max_num_seqs = 256;             // sequences running at once
  int max_num_batched_tokens = 2048;  // tokens per engine step (chunked prefill budget)
  int block_size = 16;                // tokens per KV block
  bool enable_prefix_caching = true;
  uint64_t kv_cache_memory_bytes = 0;   // 0 = a default budget (CPU: 1 GiB, capped by need)
  float gpu_memory_utilization = 0.9f;  // CUDA only
  bool enforce_eager = false;           // CUDA only: no CUDA graphs for decode steps
  int cuda_device = 0;                  // CUDA only: the device ordinal (of the visible ones)
  std::optional<uint64_t> seed;         // global seed for unseeded requests
  // Disaggregated prefill: the sender or receiver connector, over kv_transport (required then).
  std::optional<KvConnectorConfig> kv_connector;
  std::shared_ptr<Transport> kv_transport;
  // The CPU and disk KV tiers (LMCache's local_cpu / local_disk); nullopt: none.
  std::optional<KvStoreConfig> kv_store;
};

}  // namespace tandem
