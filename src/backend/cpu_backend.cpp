// CpuBackend: LlamaModel plus a host KvCache allocated on request.
#include "backend/cpu_backend.h"

#include "core/error.h"

namespace tandem {

void CpuBackend::allocate_kv_cache(int64_t num_blocks, int block_size) {
  kv_.reset();
  kv_.emplace(model_.kv_cache_shape(num_blocks, block_size));
}

KvCacheShape CpuBackend::kv_cache_shape() const {
  return kv_ ? kv_->shape() : model_.kv_cache_shape(0, kDefaultBlockSize);
}

void CpuBackend::forward(const ForwardBatch& batch, float* logits) {
  TANDEM_CHECK(kv_.has_value(), "forward: the KV cache is not allocated");
  model_.forward(batch, *kv_, logits);
}

}  // namespace tandem
