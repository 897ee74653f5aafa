// The KV cache's storage on the CPU: per layer, one K and one V array of fixed-size blocks,
// layout [num_blocks][block_size][num_kv_heads][head_dim] f32. KvCacheShape also describes the
// CUDA backend's bf16 cache (same layout, in GPU memory). A token's slot is
// block * block_size + offset. Which blocks a sequence owns (block pool, prefix cache) lives
// elsewhere; this class is only storage and layout.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace tandem {

constexpr int kDefaultBlockSize = 16;

struct KvCacheShape {
  int num_layers = 0;
  int64_t num_blocks = 0;
  int block_size = kDefaultBlockSize;  // tokens per block
  int num_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::kF32;  // element type: f32 on the CPU, bf16 on CUDA

  int64_t num_slots() const { return num_blocks * block_size; }
  int64_t slot_floats() const { return int64_t(num_kv_heads) * head_dim; }  // per K (or V) slot
  int64_t layer_floats() const { return num_slots() * slot_floats(); }      // per K (or V) layer
  int64_t total_bytes() const {
    return 2 * int64_t(num_layers) * layer_floats() * int64_t(dtype_size(dtype));
  }
  bool operator==(const KvCacheShape&) const = default;
};

class KvCache {
 public:
  // Allocates zeroed storage; throws tandem::Error for non-positive sizes or a failed allocation
  // (naming the size asked for).
  explicit KvCache(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }

  // (num_blocks, block_size, num_kv_heads, head_dim) for `layer`; throws for a bad layer index.
  float* k(int layer) { return layer_data(k_, layer); }
  float* v(int layer) { return layer_data(v_, layer); }
  const float* k(int layer) const { return layer_data(k_, layer); }
  const float* v(int layer) const { return layer_data(v_, layer); }

 private:
  float* layer_data(std::vector<std::vector<float>>& arrays, int layer);
  const float* layer_data(const std::vector<std::vector<float>>& arrays, int layer) const;

  KvCacheShape shape_;
  std::vector<std::vector<float>>
      k_;  // (num_layers) x (num_blocks, block_size, kv_heads, head_dim)
  std::vector<std::vector<float>> v_;  // same as k_
};

}  // namespace tandem
