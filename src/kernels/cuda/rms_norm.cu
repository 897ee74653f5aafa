// rms_norm: one thread per 4 elements up to 1024 threads (a 4096-wide row is a single float4 per
// thread), so a decode batch of a few rows finishes in one load round instead of walking the row
// 256 elements at a time. Rows of at most 4096 elements (aligned, a multiple of 4) take
// rms_norm_rows_kernel, which keeps the row in registers and, for many rows (prefill), gives a
// block two rows so twice the bytes are in flight around its reduction's barriers (one row a
// block of 1024 threads ran at 71% of DRAM peak at 7500 tokens on an H200); a row's arithmetic
// and reduction order are the same at one or two rows a block, so its bits do not depend on its
// batch. Wider rows walk the row (rms_norm_kernel), and rows whose width is not a multiple of 4
// (or unaligned pointers) take that kernel with one element per step.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rms_norm.cuh"

namespace tandem::cuda {
namespace {

constexpr int kMaxThreads = 1024;
constexpr int64_t kTwoRowsFrom = 512;  // rows: below, one a block keeps more SMs busy

// Four consecutive elements of each buffer; kVec4 loads them with one (16- or 8-byte) access.
template <bool kVec4>
struct Row4;

template <>
struct Row4<true> {
  static __device__ __forceinline__ float4 load_f32(const float* p) {
    return *reinterpret_cast<const float4*>(p);
  }
  static __device__ __forceinline__ void store_f32(float* p, float4 x) {
    *reinterpret_cast<float4*>(p) = x;
  }
  static __device__ __forceinline__ float4 load_bf16(const bf16* p) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    return make_float4(a.x, a.y, b.x, b.y);
  }
  static __device__ __forceinline__ void store_bf16(bf16* p, float4 x) {
    __nv_bfloat162 h[2] = {__floats2bfloat162_rn(x.x, x.y), __floats2bfloat162_rn(x.z, x.w)};
    *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(h);
  }
};

// Scalar fallback: element i of a "vector" is p[i] only (the kernel then steps one at a time).
template <>
struct Row4<false> {
  static __device__ __forceinline__ float4 load_f32(const float* p) {
    return make_float4(*p, 0.0f, 0.0f, 0.0f);
  }
  static __device__ __forceinline__ void store_f32(float* p, float4 x) { *p = x.x; }
  static __device__ __forceinline__ float4 load_bf16(const bf16* p) {
    return make_float4(to_float(*p), 0.0f, 0.0f, 0.0f);
  }
  static __device__ __forceinline__ void store_bf16(bf16* p, float4 x) { *p = to_bf16(x.x); }
};

// The sum of squares a thread adds for its four elements (the same expression in both kernels).
__device__ __forceinline__ float sum_of_squares(float4 x) {
  float sum_sq = 0.0f;
  sum_sq += x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
  return sum_sq;
}

template <bool kVec4>
__global__ void __launch_bounds__(kMaxThreads) rms_norm_kernel(RmsNormParams p) {
  wait_for_previous_kernel();
  let_next_kernel_start();  // a few_rows_gemm after it may start streaming weights
  using R = Row4<kVec4>;
  constexpr int kWidth = kVec4 ? 4 : 1;
  __shared__ float scratch[32];
  const int64_t src = p.rows ? p.rows[blockIdx.x] : blockIdx.x;
  float* row = p.residual + src * p.dim;
  const bf16* delta = p.delta ? p.delta + src * p.dim : nullptr;
  const int64_t step = int64_t(blockDim.x) * kWidth;
  float sum_sq = 0.0f;
  for (int64_t i = int64_t(threadIdx.x) * kWidth; i < p.dim; i += step) {
    float4 x = R::load_f32(row + i);
    if (delta) {
      const float4 d = R::load_bf16(delta + i);
      x = make_float4(x.x + d.x, x.y + d.y, x.z + d.z, x.w + d.w);
      R::store_f32(row + i, x);
    }
    sum_sq += sum_of_squares(x);
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq, scratch) / float(p.dim) + p.eps);
  bf16* out = p.out + int64_t(blockIdx.x) * p.dim;
  // Each thread re-reads only what it wrote itself above (still in L1).
  for (int64_t i = int64_t(threadIdx.x) * kWidth; i < p.dim; i += step) {
    const float4 x = R::load_f32(row + i), w = R::load_bf16(p.weight + i);
    R::store_bf16(out + i, make_float4(w.x * (x.x * inv_rms), w.y * (x.y * inv_rms),
                                       w.z * (x.z * inv_rms), w.w * (x.w * inv_rms)));
  }
}

// kRows rows a block, thread t holding elements [4t, 4t + 4) of each: every row's loads are issued
// before the first barrier, and the rows' block sums share their barriers.
template <int kRows>
__global__ void __launch_bounds__(kMaxThreads) rms_norm_rows_kernel(RmsNormParams p) {
  wait_for_previous_kernel();
  let_next_kernel_start();  // a few_rows_gemm after it may start streaming weights
  using R = Row4<true>;
  __shared__ float scratch[kRows][32];
  const int64_t i = int64_t(threadIdx.x) * 4;
  const bool active = i < p.dim;
  int64_t src[kRows];
  bool has[kRows];
  float4 x[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t out_row = int64_t(blockIdx.x) * kRows + r;
    has[r] = out_row < p.n && active;
    src[r] = out_row < p.n ? (p.rows ? p.rows[out_row] : out_row) : 0;
    x[r] = has[r] ? R::load_f32(p.residual + src[r] * p.dim + i) : make_float4(0, 0, 0, 0);
  }
  if (p.delta) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (!has[r]) continue;
      const float4 d = R::load_bf16(p.delta + src[r] * p.dim + i);
      x[r] = make_float4(x[r].x + d.x, x[r].y + d.y, x[r].z + d.z, x[r].w + d.w);
      R::store_f32(p.residual + src[r] * p.dim + i, x[r]);
    }
  }
  const float4 w = active ? R::load_bf16(p.weight + i) : make_float4(0, 0, 0, 0);
  float sum[kRows];  // block_sum's reduction for each row, sharing its barriers
#pragma unroll
  for (int r = 0; r < kRows; ++r) sum[r] = has[r] ? sum_of_squares(x[r]) : 0.0f;
  block_reduce_each(sum, scratch, 0.0f, WarpSum{});
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (!has[r]) continue;
    const float inv_rms = rsqrtf(sum[r] / float(p.dim) + p.eps);
    R::store_bf16(p.out + (int64_t(blockIdx.x) * kRows + r) * p.dim + i,
                  make_float4(w.x * (x[r].x * inv_rms), w.y * (x[r].y * inv_rms),
                              w.z * (x[r].z * inv_rms), w.w * (x[r].w * inv_rms)));
  }
}

bool aligned(const void* ptr, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(ptr) % bytes == 0;
}

}  // namespace

cudaError_t rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.n <= 0) return cudaSuccess;
  if (p.dim <= 0 || p.n > INT32_MAX || !p.residual || !p.weight || !p.out) {
    return cudaErrorInvalidValue;
  }
  const bool vec4 = p.dim % 4 == 0 && aligned(p.residual, 16) && aligned(p.delta, 8) &&
                    aligned(p.weight, 8) && aligned(p.out, 8);
  if (vec4 && p.dim <= 4 * kMaxThreads) {
    const unsigned threads = unsigned((p.dim / 4 + 31) / 32 * 32);
    if (p.n >= kTwoRowsFrom) {
      return launch_kernel(rms_norm_rows_kernel<2>, unsigned((p.n + 1) / 2), threads, 0, stream, p);
    }
    return launch_kernel(rms_norm_rows_kernel<1>, unsigned(p.n), threads, 0, stream, p);
  }
  const int64_t per_thread = vec4 ? 4 : 1;
  const int64_t want = (p.dim / per_thread + 31) / 32 * 32;
  const unsigned threads = unsigned(want < kMaxThreads ? want : kMaxThreads);
  return launch_kernel(vec4 ? rms_norm_kernel<true> : rms_norm_kernel<false>, unsigned(p.n),
                       threads, 0, stream, p);
}

}  // namespace tandem::cuda
