// The CPU ModelBackend: LlamaModel's f32 forward pass over a host KvCache, unchanged — the oracle
// the CUDA backend is tested against.
#pragma once
#include <memory>
#include <optional>

#include "backend/model_backend.h"
#include "model/llama_model.h"

namespace tandem {

class CpuBackend : public ModelBackend {
 public:
  CpuBackend(const std::filesystem::path& dir, ThreadPool* pool) : model_(dir, pool) {}

  const ModelConfig& config() const override { return model_.config(); }
  void allocate_kv_cache(int64_t num_blocks, int block_size) override;
  KvCacheShape kv_cache_shape() const override;
  void forward(const ForwardBatch& batch, float* logits) override;
  KvCache* host_kv_cache() override { return kv_ ? &*kv_ : nullptr; }

  LlamaModel& model() { return model_; }

 private:
  LlamaModel model_;
  std::optional<KvCache> kv_;
};

}  // namespace tandem
