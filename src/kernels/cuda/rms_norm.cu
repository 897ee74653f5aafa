// rms_norm: one block per row; the row is read once into registers-through-L1 (rows are at most a
// few thousand wide), the sum of squares reduced over the block, then scaled and written as bf16.
#include "kernels/cuda/rms_norm.cuh"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rms_norm_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t src = p.rows ? p.rows[blockIdx.x] : blockIdx.x;
  float* row = p.residual + src * p.dim;
  const bf16* delta = p.delta ? p.delta + src * p.dim : nullptr;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
    float x = row[i];
    if (delta) {
      x += to_float(delta[i]);
      row[i] = x;
    }
    sum_sq += x * x;
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq, scratch) / float(p.dim) + p.eps);
  bf16* out = p.out + int64_t(blockIdx.x) * p.dim;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
    out[i] = to_bf16(to_float(p.weight[i]) * (row[i] * inv_rms));
  }
}

}  // namespace

cudaError_t rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.n <= 0) return cudaSuccess;
  if (p.dim <= 0 || p.n > INT32_MAX || !p.residual || !p.weight || !p.out) {
    return cudaErrorInvalidValue;
  }
  rms_norm_kernel<<<unsigned(p.n), kThreads, 0, stream>>>(p);
  return last_launch_error();
}

}  // namespace tandem::cuda
