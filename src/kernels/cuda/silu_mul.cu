// silu_mul: a grid-stride loop over the n * inter outputs.
#include "kernels/cuda/silu_mul.cuh"

namespace tandem::cuda {
namespace {

__global__ void silu_mul_kernel(const bf16* gate_up, int64_t n, int64_t inter, bf16* out) {
  const int64_t total = n * inter;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / inter, col = i - row * inter;
    const float g = to_float(gate_up[row * 2 * inter + col]);
    const float u = to_float(gate_up[row * 2 * inter + inter + col]);
    out[i] = to_bf16(g / (1.0f + expf(-g)) * u);
  }
}

}  // namespace

cudaError_t silu_mul(const bf16* gate_up, int64_t n, int64_t inter, bf16* out,
                     cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (inter <= 0) return cudaErrorInvalidValue;
  const int64_t total = n * inter;
  const int64_t blocks = (total + 255) / 256 < 65536 ? (total + 255) / 256 : 65536;
  silu_mul_kernel<<<unsigned(blocks), 256, 0, stream>>>(gate_up, n, inter, out);
  return last_launch_error();
}

}  // namespace tandem::cuda
