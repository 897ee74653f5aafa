// CpuBackend and load_model_backend (which picks the CUDA backend only in CUDA builds).
#include "backend/cpu_backend.h"

#include "core/error.h"
#ifdef TANDEM_WITH_CUDA
#include "backend/cuda_model.h"
#endif

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

std::unique_ptr<ModelBackend> load_model_backend(const std::filesystem::path& dir,
                                                 const BackendOptions& options) {
  if (options.device == BackendDevice::kCpu) return std::make_unique<CpuBackend>(dir, options.pool);
#ifdef TANDEM_WITH_CUDA
  return std::make_unique<CudaModel>(
      dir, CudaModelOptions{options.max_num_batched_tokens, options.execution});
#else
  fail("--device cuda: this tandem was built without CUDA (configure with -DTANDEM_CUDA=ON)");
#endif
}

}  // namespace tandem
