// KvCache: one zeroed std::vector per layer for K and for V.
#include "kv/kv_cache.h"

#include <exception>

#include "core/error.h"

namespace tandem {

KvCache::KvCache(const KvCacheShape& shape) : shape_(shape) {
  TANDEM_CHECK(shape.num_layers > 0 && shape.num_blocks > 0 && shape.block_size > 0 &&
                   shape.num_kv_heads > 0 && shape.head_dim > 0,
               "KV cache: every size must be positive (layers {}, blocks {}, block_size {}, "
               "kv_heads {}, head_dim {})",
               shape.num_layers, shape.num_blocks, shape.block_size, shape.num_kv_heads,
               shape.head_dim);
  TANDEM_CHECK(shape.dtype == DType::kF32, "KV cache: the CPU cache holds f32, not {}",
               dtype_name(shape.dtype));
  const double floats = double(shape.num_layers) * double(shape.num_blocks) * shape.block_size *
                        shape.num_kv_heads * shape.head_dim;
  TANDEM_CHECK(floats < 0x1p60, "KV cache: {} blocks of {} tokens x {} layers is too large",
               shape.num_blocks, shape.block_size, shape.num_layers);
  try {
    k_.assign(size_t(shape.num_layers), std::vector<float>(size_t(shape.layer_floats())));
    v_.assign(size_t(shape.num_layers), std::vector<float>(size_t(shape.layer_floats())));
  } catch (const std::exception&) {  // bad_alloc, or length_error past max_size()
    fail("KV cache: cannot allocate {} bytes ({} blocks of {} tokens, {} layers)",
         shape.total_bytes(), shape.num_blocks, shape.block_size, shape.num_layers);
  }
}

float* KvCache::layer_data(std::vector<std::vector<float>>& arrays, int layer) {
  TANDEM_CHECK(layer >= 0 && layer < shape_.num_layers, "KV cache: layer {} out of range [0, {})",
               layer, shape_.num_layers);
  return arrays[size_t(layer)].data();
}

const float* KvCache::layer_data(const std::vector<std::vector<float>>& arrays, int layer) const {
  TANDEM_CHECK(layer >= 0 && layer < shape_.num_layers, "KV cache: layer {} out of range [0, {})",
               layer, shape_.num_layers);
  return arrays[size_t(layer)].data();
}

}  // namespace tandem
