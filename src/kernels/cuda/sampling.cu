// greedy_sample: one block per row. Pass 1 finds (max, lowest index) by a block reduction;
// pass 2 sums exp(x - max) for the log-softmax normalizer. Pass 1 also notes NaN and +inf.
#include "kernels/cuda/sampling.cuh"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 1024;

struct MaxIdx {
  float v;
  int32_t i;
};

__device__ __forceinline__ MaxIdx better(MaxIdx a, MaxIdx b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

__global__ void greedy_kernel(const float* logits, int64_t vocab, int32_t* ids, float* logprobs,
                              int32_t* invalid) {
  __shared__ MaxIdx best_s[32];
  __shared__ float sum_s[32];
  const float* row = logits + int64_t(blockIdx.x) * vocab;
  MaxIdx best{-INFINITY, INT32_MAX};
  int bad = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float x = row[j];
    bad |= int(isnan(x) || x == INFINITY);
    best = better(best, {x, int32_t(j)});
  }
  bad = __syncthreads_or(bad);
  for (int o = 16; o > 0; o >>= 1) {
    MaxIdx other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) best_s[warp] = best;
  __syncthreads();
  best = best_s[0];
  for (int w = 1; w < kThreads / 32; ++w) best = better(best, best_s[w]);
  bad |= int(best.v == -INFINITY);      // every value -inf (or NaN): nothing to pick
  if (best.i == INT32_MAX) best.i = 0;  // a row of NaNs: no maximum; pick token 0
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) sum += expf(row[j] - best.v);
  sum = block_sum(sum, sum_s);
  if (threadIdx.x == 0) {
    ids[blockIdx.x] = best.i;
    if (logprobs) logprobs[blockIdx.x] = -logf(sum);
    if (invalid) invalid[blockIdx.x] = bad;
  }
}

}  // namespace

cudaError_t greedy_sample(const float* logits, int64_t rows, int64_t vocab, int32_t* ids,
                          float* logprobs, int32_t* invalid, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || rows > INT32_MAX || vocab > INT32_MAX || !logits || !ids) {
    return cudaErrorInvalidValue;
  }
  greedy_kernel<<<unsigned(rows), kThreads, 0, stream>>>(logits, vocab, ids, logprobs, invalid);
  return last_launch_error();
}

}  // namespace tandem::cuda
