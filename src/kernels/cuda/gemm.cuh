// The dense projections on the GPU: y = x @ W^T with bf16 inputs and f32 accumulation through
// cuBLAS (cublasGemmEx picks cuBLASLt's kernels for Hopper). Fused QKV and gate/up are plain
// GEMMs over weights concatenated row-wise at upload time. CPU reference: kernels/cpu/matmul.
#pragma once
#include <cublas_v2.h>

#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

// What a GEMM writes: bf16 (the next op's input) or f32 (the residual stream, the logits).
enum class GemmOut { kBF16, kF32 };

struct GemmParams {
  const bf16* x = nullptr;  // (m, k) row-major
  const bf16* w = nullptr;  // (n, k) row-major: a Hugging Face Linear weight (out, in)
  void* y = nullptr;        // (m, n) row-major, bf16 or f32 per `out`
  GemmOut out = GemmOut::kBF16;
  int64_t m = 0, n = 0, k = 0;
  float beta = 0.0f;  // y = x @ W^T + beta * y; beta = 1 with kF32 adds into a residual stream
};

// Runs on the stream `handle` is bound to. Returns the cuBLAS status.
cublasStatus_t gemm(cublasHandle_t handle, const GemmParams& p);

}  // namespace tandem::cuda
