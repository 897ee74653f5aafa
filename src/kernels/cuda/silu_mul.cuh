// The Llama MLP's SwiGLU on the GPU, reading the fused gate/up GEMM output.
// CPU reference: kernels/cpu/silu_mul.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

// out (n, inter) = silu(gate_up[:, :inter]) * gate_up[:, inter:], gate_up (n, 2 * inter); math f32.
cudaError_t silu_mul(const bf16* gate_up, int64_t n, int64_t inter, bf16* out, cudaStream_t stream);

#ifdef __CUDACC__
// silu(g) * u in f32, as every kernel that fuses it computes it (so they agree bit for bit).
__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }
#endif

}  // namespace tandem::cuda
