// y = x @ W^T for the few rows of a decode step (m <= 16), streaming W once from memory with every
// SM busy and starting to before the kernel ahead of it ends, optionally fused with SwiGLU's
// SiLU·mul. It gives the bits cuBLAS gives as the engine
// runs it (no workspace): each output is one chain of mma.sync m16n8k16 over k in 16-wide slices
// from zero, rounded once to bf16, so a row's bits do not depend on which of the two ran it.
// CPU reference: kernels/cpu/matmul (and kernels/cpu/silu_mul).
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

constexpr int64_t kFewRowsGemmMaxRows = 16;

struct FewRowsGemmParams {
  const bf16* x = nullptr;  // (m, k) row-major, rows k apart
  const bf16* w = nullptr;  // (n, k) row-major: a Hugging Face Linear weight (out, in)
  bf16* y = nullptr;        // (m, n) row-major, or (m, n / 2) with silu_mul
  int64_t m = 0, n = 0, k = 0;
  // W is [gate; up] (n = 2 * inter) and y = silu(x gate^T) * (x up^T), gate and up rounded to
  // bf16 first, exactly as the gate/up GEMM followed by kernels/cuda/silu_mul computes it.
  bool silu_mul = false;
};

// Whether few_rows_gemm takes these sizes and pointers: 1 <= m <= 16, k a multiple of 64, the
// output columns (n, or n / 2 with silu_mul) a multiple of 16, 16-byte-aligned x, w and y.
bool few_rows_gemm_supported(const FewRowsGemmParams& p);

// cudaErrorInvalidValue for parameters few_rows_gemm_supported refuses.
cudaError_t few_rows_gemm(const FewRowsGemmParams& p, cudaStream_t stream);

// False when TANDEM_FEW_ROWS_GEMM=0 was set when first asked (cuBLAS then runs every GEMM; for
// timing the two); read once per process.
bool few_rows_gemm_enabled();

}  // namespace tandem::cuda
