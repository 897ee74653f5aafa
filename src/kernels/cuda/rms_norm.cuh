// RMSNorm with an optional fused residual add, on the GPU: the residual stream stays f32, the
// normalized output (the next GEMM's input) is bf16. CPU reference: kernels/cpu/rms_norm.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

struct RmsNormParams {
  float* residual = nullptr;      // (rows, dim) f32; += delta first when delta is set
  const bf16* delta = nullptr;    // (rows, dim) or null: a layer's o_proj / down_proj output
  const int32_t* rows = nullptr;  // (n) or null: output row i normalizes residual row rows[i]
                                  // (the rows whose logits are wanted; distinct)
  const bf16* weight = nullptr;   // (dim)
  bf16* out = nullptr;            // (n, dim) = residual * rsqrt(mean(residual^2) + eps) * weight
  int64_t n = 0;
  int64_t dim = 0;
  float eps = 1e-5f;
};

cudaError_t rms_norm(const RmsNormParams& p, cudaStream_t stream);

}  // namespace tandem::cuda
