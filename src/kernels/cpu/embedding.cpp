// embedding: one dtype conversion per gathered row.
#include "kernels/cpu/embedding.h"

#include "core/error.h"

namespace tandem::cpu {

void embedding(const void* table, DType dtype, int64_t vocab_size, int64_t dim, const int32_t* ids,
               int64_t n, float* out) {
  const auto* base = static_cast<const uint8_t*>(table);
  const int64_t row_bytes = dim * int64_t(dtype_size(dtype));
  for (int64_t i = 0; i < n; ++i) {
    TANDEM_CHECK(ids[i] >= 0 && ids[i] < vocab_size,
                 "embedding: token id {} at row {} is outside the vocabulary [0, {})", ids[i], i,
                 vocab_size);
    convert_to_f32(dtype, base + ids[i] * row_bytes, out + i * dim, size_t(dim));
  }
}

}  // namespace tandem::cpu
