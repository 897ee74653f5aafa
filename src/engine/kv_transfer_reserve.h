// The GPU memory a CUDA engine's KV transfer takes beside its KV pool: the pool is sized from
// --gpu-memory-utilization after this much is set aside (vLLM sets LMCache's buffer up before
// it profiles memory, to the same end).
#pragma once
#include <cstdint>

#include "engine/engine_config.h"

namespace tandem {

// On --device cuda with a KV connector: a sender's gathered KV payloads wait on the GPU until
// sent, up to pd_buffer_size; a receiver with pd_buffer_device cuda holds its pd_buffer_size
// transfer buffer there. 0 otherwise (host memory, or no disaggregated prefill).
uint64_t kv_transfer_gpu_bytes(const EngineConfig& config);

}  // namespace tandem
