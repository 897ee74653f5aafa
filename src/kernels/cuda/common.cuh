// What every CUDA op shares: the bf16 element type, f32 <-> bf16 conversions usable on both sides,
// the launch-error check launchers end with, and warp/block reductions. Kernels below kernels/
// take plain pointers, sizes, strides and a stream (STYLE habit 3); nothing here knows a model.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tandem::cuda {

using bf16 = __nv_bfloat16;

// The error of the launch just made (bad configuration, missing device), cleared for the next.
inline cudaError_t last_launch_error() { return cudaGetLastError(); }

#ifdef __CUDACC__
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduces each of `v`'s N values over a block of blockDim.x threads (a multiple of 32, at most
// 1024) with a warp reduction applied twice: within each warp, then over the warps' results
// (`identity` fills the lanes past the last warp); the N reductions share their two barriers and
// every thread gets the results. `scratch` holds N x 32 floats in shared memory.
template <int N, typename WarpReduce>
__device__ __forceinline__ void block_reduce_each(float (&v)[N], float (*scratch)[32],
                                                  float identity, WarpReduce warp_reduce) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = warp_reduce(v[i]);
  __syncthreads();
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) scratch[i][warp] = v[i];
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = warp_reduce(lane < warps ? scratch[i][lane] : identity);
}

// One value: `scratch` holds 32 floats in shared memory.
template <typename WarpReduce>
__device__ __forceinline__ float block_reduce(float v, float* scratch, float identity,
                                              WarpReduce warp_reduce) {
  float one[1] = {v};
  block_reduce_each(one, reinterpret_cast<float(*)[32]>(scratch), identity, warp_reduce);
  return one[0];
}

struct WarpSum {
  __device__ __forceinline__ float operator()(float v) const { return warp_sum(v); }
};
struct WarpMax {
  __device__ __forceinline__ float operator()(float v) const { return warp_max(v); }
};

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  return block_reduce(v, scratch, 0.0f, WarpSum{});
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  return block_reduce(v, scratch, -INFINITY, WarpMax{});
}
#endif

}  // namespace tandem::cuda
