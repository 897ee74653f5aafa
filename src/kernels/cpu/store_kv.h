// Writes this step's keys and values into the paged KV cache at their slots (vLLM's
// reshape_and_cache): slot = block * block_size + offset, and each slot holds one token's
// (num_kv_heads, head_dim) K and V.
#pragma once
#include <cstdint>

namespace tandem::cpu {

// k_cache/v_cache (num_slots, kv_dim) = k/v (num_tokens, kv_dim) rows at slot_mapping (num_tokens).
// A slot outside [0, num_slots) throws tandem::Error (the caller validates slots first).
void store_kv(const float* k, const float* v, const int64_t* slot_mapping, int64_t num_tokens,
              int64_t kv_dim, int64_t num_slots, float* k_cache, float* v_cache);

}  // namespace tandem::cpu
