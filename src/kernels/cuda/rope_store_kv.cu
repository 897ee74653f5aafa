// rope_store_kv, two launch shapes with bit-identical results (the same sincosf and the same
// unfused f32 rotation), chosen by the number of tokens:
//  - rope_pair_kernel, grid (token, chunk of that token's work) for a few tokens (decode): a
//    token's work items are its rotation pairs over the q and k heads, then its v elements, one
//    a thread, so a decode batch still spreads over dozens of blocks;
//  - rope_token_kernel, one block per token for many tokens (prefill): thread (r, i) computes the
//    angles of pairs i (and i + 1) once and rotates them in heads r, r + rows, ..., issuing a
//    batch's loads before its math, then the block copies the v row 16 bytes at a time where it
//    can. One sincosf per (token, pair) instead of per (token, head, pair): the pair kernel
//    spent 6 ms of a 7500-token Llama-3.1-8B prefill here;
//  - rope_token16_kernel, the same block a token where rows take 16-byte accesses (no bias): a
//    thread rotates 8 pairs of one head and moves at most one 16-byte chunk of v, every load
//    issued before the block's angles are computed (into shared memory, once a pair), so a
//    token's q, k and v reads are one round trip (rope_token_kernel reads v after rotating:
//    44% of DRAM peak at 7500 tokens under ncu).
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rope_store_kv.cuh"

namespace tandem::cuda {
namespace {

__device__ __forceinline__ float biased(const bf16* row, const bf16* bias, int64_t i) {
  // The bias is added in f32 and rounded once, as a bf16 linear layer with bias would.
  return bias ? to_float(to_bf16(to_float(row[i]) + to_float(bias[i]))) : to_float(row[i]);
}

// The rotation with its one FMA spelled out, so both kernels give the same bits whatever the
// compiler would contract (this is what it made of x1 * c - x2 * s before).
__device__ __forceinline__ void rotate(float x1, float x2, float c, float s, bf16& y1, bf16& y2) {
  y1 = to_bf16(fmaf(x1, c, -__fmul_rn(x2, s)));
  y2 = to_bf16(fmaf(x2, c, __fmul_rn(x1, s)));
}

constexpr int kPairThreads = 128;
constexpr int kTokenKernelMinTokens = 128;  // below: decode-sized batches take the pair kernel
constexpr int kBatch = 8;                   // heads a token-kernel thread loads before rotating
constexpr int kMaxThreads = 1024;

__global__ void __launch_bounds__(kPairThreads) rope_pair_kernel(RopeStoreKvParams p) {
  wait_for_previous_kernel();
  const int64_t t = blockIdx.x;
  const int j = int(blockIdx.y) * kPairThreads + int(threadIdx.x);  // this thread's work item
  const int hd = p.head_dim, half = hd / 2;
  const int pairs = (p.num_heads + p.num_kv_heads) * half;
  const int64_t kv_dim = int64_t(p.num_kv_heads) * hd;
  if (j >= pairs + kv_dim) return;
  bf16* row = p.qkv + t * p.qkv_stride;
  const int64_t slot = p.slot_mapping[t];
  const bool store = slot >= 0 && slot < p.num_slots;
  const int64_t q_dim = int64_t(p.num_heads) * hd;
  if (j >= pairs) {  // a v element
    const int64_t e = j - pairs;
    if (store) p.v_cache[slot * kv_dim + e] = to_bf16(biased(row, p.bias, q_dim + kv_dim + e));
    return;
  }
  const int head = j / half, i = j % half;  // heads [0, num_heads) are q, the rest k
  const int64_t base = int64_t(head) * hd;
  if (head >= p.num_heads && !store) return;
  const float x1 = biased(row, p.bias, base + i), x2 = biased(row, p.bias, base + i + half);
  float s, c;
  sincosf(p.inv_freq[i] * float(p.positions[t]), &s, &c);
  bf16 y1, y2;
  rotate(x1, x2, c, s, y1, y2);
  if (head < p.num_heads) {
    row[base + i] = y1;
    row[base + i + half] = y2;
  } else {
    bf16* dst = p.k_cache + slot * kv_dim + (base - q_dim);
    dst[i] = y1;
    dst[i + half] = y2;
  }
}

// Pairs i .. i + P - 1 of a head: loaded and stored as one bf16x2 when P = 2 (rows 4-byte aligned).
template <int P>
__device__ __forceinline__ void load_pairs(const bf16* row, const bf16* bias, int64_t base, int i,
                                           int half, float (&x1)[P], float (&x2)[P]) {
  if constexpr (P == 2) {
    if (!bias) {
      const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(row + base + i);
      const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(row + base + i + half);
      x1[0] = __low2float(a), x1[1] = __high2float(a);
      x2[0] = __low2float(b), x2[1] = __high2float(b);
      return;
    }
  }
#pragma unroll
  for (int q = 0; q < P; ++q) {
    x1[q] = biased(row, bias, base + i + q);
    x2[q] = biased(row, bias, base + i + q + half);
  }
}

template <int P>
__device__ __forceinline__ void store_pairs(bf16* dst, int i, int half, const bf16 (&y1)[P],
                                            const bf16 (&y2)[P]) {
  if constexpr (P == 2) {
    *reinterpret_cast<__nv_bfloat162*>(dst + i) = __halves2bfloat162(y1[0], y1[1]);
    *reinterpret_cast<__nv_bfloat162*>(dst + i + half) = __halves2bfloat162(y2[0], y2[1]);
  } else {
    dst[i] = y1[0];
    dst[i + half] = y2[0];
  }
}

// P rotation pairs a thread (2 where a row's halves are 4-byte aligned: a warp then moves 128
// contiguous bytes a load instead of 64, and a 7500-token prefill spent 2.5 ms here with P = 1).
template <int P>
__global__ void rope_token_kernel(RopeStoreKvParams p, int rows, bool vector_v) {
  wait_for_previous_kernel();
  const int64_t t = blockIdx.x;
  const int hd = p.head_dim, half = hd / 2, lanes = half / P;
  const int i = (int(threadIdx.x) % lanes) * P, r = int(threadIdx.x) / lanes;
  const int total = p.num_heads + p.num_kv_heads;
  bf16* row = p.qkv + t * p.qkv_stride;
  const int64_t slot = p.slot_mapping[t];
  const bool store = slot >= 0 && slot < p.num_slots;
  const int64_t q_dim = int64_t(p.num_heads) * hd, kv_dim = int64_t(p.num_kv_heads) * hd;
  float s[P], c[P];
#pragma unroll
  for (int q = 0; q < P; ++q) sincosf(p.inv_freq[i + q] * float(p.positions[t]), &s[q], &c[q]);
  for (int h0 = r; h0 < total; h0 += kBatch * rows) {
    float x1[kBatch][P], x2[kBatch][P];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int h = h0 + k * rows;
      if (h < total) load_pairs<P>(row, p.bias, int64_t(h) * hd, i, half, x1[k], x2[k]);
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int h = h0 + k * rows;
      if (h >= total) break;
      bf16 y1[P], y2[P];
#pragma unroll
      for (int q = 0; q < P; ++q) rotate(x1[k][q], x2[k][q], c[q], s[q], y1[q], y2[q]);
      if (h < p.num_heads) {
        store_pairs<P>(row + int64_t(h) * hd, i, half, y1, y2);
      } else if (store) {
        store_pairs<P>(p.k_cache + slot * kv_dim + int64_t(h - p.num_heads) * hd, i, half, y1, y2);
      }
    }
  }
  if (!store) return;
  bf16* v_dst = p.v_cache + slot * kv_dim;
  if (vector_v) {  // no bias, 16-byte aligned rows: plain 16-byte copies
    const uint4* src = reinterpret_cast<const uint4*>(row + q_dim + kv_dim);
    for (int64_t e = threadIdx.x; e < kv_dim / 8; e += blockDim.x) {
      reinterpret_cast<uint4*>(v_dst)[e] = src[e];
    }
  } else {
    for (int64_t e = threadIdx.x; e < kv_dim; e += blockDim.x) {
      v_dst[e] = to_bf16(biased(row, p.bias, q_dim + kv_dim + e));
    }
  }
}

// 8 pairs a thread: lane (i / 8) of head h moves 16 bytes from each half of the head; threads
// [0, kv_dim / 8) also move one 16-byte chunk of v. The angles are rope_token_kernel's.
constexpr int kPairs16 = 8;
__global__ void rope_token16_kernel(RopeStoreKvParams p) {
  extern __shared__ float angles[];  // (half) sines, then (half) cosines
  wait_for_previous_kernel();
  const int64_t t = blockIdx.x;
  const int hd = p.head_dim, half = hd / 2, lanes = half / kPairs16;
  const int h = int(threadIdx.x) / lanes, i = (int(threadIdx.x) % lanes) * kPairs16;
  const int total = p.num_heads + p.num_kv_heads;
  bf16* row = p.qkv + t * p.qkv_stride;
  const int64_t slot = p.slot_mapping[t];
  const bool store = slot >= 0 && slot < p.num_slots;
  const int64_t q_dim = int64_t(p.num_heads) * hd, kv_dim = int64_t(p.num_kv_heads) * hd;
  const bool rotates = h < total && (h < p.num_heads || store);
  uint4 a = {}, b = {}, v = {};
  if (rotates) {
    a = *reinterpret_cast<const uint4*>(row + int64_t(h) * hd + i);
    b = *reinterpret_cast<const uint4*>(row + int64_t(h) * hd + i + half);
  }
  const bool moves_v = store && threadIdx.x < kv_dim / 8;
  if (moves_v) v = reinterpret_cast<const uint4*>(row + q_dim + kv_dim)[threadIdx.x];
  const float pos = float(p.positions[t]);
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    sincosf(p.inv_freq[j] * pos, &angles[j], &angles[half + j]);
  }
  __syncthreads();
  if (moves_v) reinterpret_cast<uint4*>(p.v_cache + slot * kv_dim)[threadIdx.x] = v;
  if (!rotates) return;
  const bf16* x1 = reinterpret_cast<const bf16*>(&a);
  const bf16* x2 = reinterpret_cast<const bf16*>(&b);
  uint4 ya, yb;
  bf16* y1 = reinterpret_cast<bf16*>(&ya);
  bf16* y2 = reinterpret_cast<bf16*>(&yb);
#pragma unroll
  for (int q = 0; q < kPairs16; ++q) {
    rotate(to_float(x1[q]), to_float(x2[q]), angles[half + i + q], angles[i + q], y1[q], y2[q]);
  }
  bf16* dst = h < p.num_heads ? row + int64_t(h) * hd
                              : p.k_cache + slot * kv_dim + int64_t(h - p.num_heads) * hd;
  *reinterpret_cast<uint4*>(dst + i) = ya;
  *reinterpret_cast<uint4*>(dst + i + half) = yb;
}

bool aligned4(const void* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; }
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

cudaError_t rope_store_kv(const RopeStoreKvParams& p, cudaStream_t stream) {
  if (p.n <= 0) return cudaSuccess;
  if (p.head_dim <= 0 || p.head_dim % 2 != 0 || p.head_dim / 2 > kMaxThreads || p.num_heads <= 0 ||
      p.num_kv_heads <= 0 ||
      p.qkv_stride < int64_t(p.num_heads + 2 * p.num_kv_heads) * p.head_dim || p.n > INT32_MAX) {
    return cudaErrorInvalidValue;
  }
  const int half = p.head_dim / 2, total = p.num_heads + p.num_kv_heads;
  const int64_t q_dim = int64_t(p.num_heads) * p.head_dim;
  const int64_t kv_dim = int64_t(p.num_kv_heads) * p.head_dim;
  if (p.n < kTokenKernelMinTokens) {
    const int64_t items = int64_t(total) * half + kv_dim;
    const dim3 grid(unsigned(p.n), unsigned((items + kPairThreads - 1) / kPairThreads));
    return launch_kernel(rope_pair_kernel, grid, kPairThreads, 0, stream, p);
  }
  const bool vector_v = !p.bias && kv_dim % 8 == 0 && q_dim % 8 == 0 && p.qkv_stride % 8 == 0 &&
                        aligned16(p.qkv) && aligned16(p.v_cache);
  if (vector_v && half % kPairs16 == 0 && aligned16(p.k_cache)) {
    const int64_t threads = std::max<int64_t>(int64_t(total) * (half / kPairs16), kv_dim / 8);
    if (threads <= kMaxThreads) {
      return launch_kernel(rope_token16_kernel, unsigned(p.n), unsigned((threads + 31) / 32 * 32),
                           size_t(p.head_dim) * sizeof(float), stream, p);
    }
  }
  const bool paired = half % 2 == 0 && p.qkv_stride % 2 == 0 && aligned4(p.qkv) &&
                      aligned4(p.k_cache);
  const int lanes = paired ? half / 2 : half;  // threads a head's pairs take
  int rows = (total + kBatch - 1) / kBatch;     // one batch of heads a thread where it fits
  if (rows * lanes > kMaxThreads) rows = kMaxThreads / lanes;
  const unsigned threads = unsigned(rows * lanes);
  return paired ? launch_kernel(rope_token_kernel<2>, unsigned(p.n), threads, 0, stream, p, rows,
                                vector_v)
                : launch_kernel(rope_token_kernel<1>, unsigned(p.n), threads, 0, stream, p, rows,
                                vector_v);
}

}  // namespace tandem::cuda
