// store_kv: one row copy per token for K and for V.
#include "kernels/cpu/store_kv.h"

#include <cstring>

#include "core/error.h"

namespace tandem::cpu {

void store_kv(const float* k, const float* v, const int64_t* slot_mapping, int64_t num_tokens,
              int64_t kv_dim, int64_t num_slots, float* k_cache, float* v_cache) {
  const size_t row_bytes = size_t(kv_dim) * sizeof(float);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    TANDEM_CHECK(slot >= 0 && slot < num_slots,
                 "store_kv: slot {} of token {} is outside the cache's {} slots", slot, t,
                 num_slots);
    std::memcpy(k_cache + slot * kv_dim, k + t * kv_dim, row_bytes);
    std::memcpy(v_cache + slot * kv_dim, v + t * kv_dim, row_bytes);
  }
}

}  // namespace tandem::cpu
