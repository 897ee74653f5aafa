// Token embedding lookup on the GPU: rows of a bf16 table gathered into the f32 residual stream
// (the model keeps the residual in f32 so the sum of 2 x layers updates loses nothing to bf16).
// CPU reference: kernels/cpu/embedding.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

// out (n, dim) f32 = table (vocab_size, dim)[ids[i]]. An id outside [0, vocab_size) (the host
// validates them first) yields a zero row rather than an out-of-bounds read.
cudaError_t embedding(const bf16* table, int64_t vocab_size, int64_t dim, const int32_t* ids,
                      int64_t n, float* out, cudaStream_t stream);

}  // namespace tandem::cuda
