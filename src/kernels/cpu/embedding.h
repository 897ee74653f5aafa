// Token embedding lookup: rows of an embedding table (any checkpoint dtype) gathered as f32.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace tandem::cpu {

// out (n, dim) = table (vocab_size, dim)[ids[i]] converted to f32. The caller validates ids;
// an id outside [0, vocab_size) still throws tandem::Error rather than reading out of bounds.
void embedding(const void* table, DType dtype, int64_t vocab_size, int64_t dim, const int32_t* ids,
               int64_t n, float* out);

}  // namespace tandem::cpu
