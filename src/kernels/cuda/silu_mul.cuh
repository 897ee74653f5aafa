// The Llama MLP's SwiGLU on the GPU, reading the fused gate/up GEMM output.
// CPU reference: kernels/cpu/silu_mul.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

// out (n, inter) = silu(gate_up[:, :inter]) * gate_up[:, inter:], gate_up (n, 2 * inter); math f32.
cudaError_t silu_mul(const bf16* gate_up, int64_t n, int64_t inter, bf16* out, cudaStream_t stream);

}  // namespace tandem::cuda
