// rope_store_kv: grid (token, chunk of that token's work). A token's work items are its rotation
// pairs (head, i < hd/2) over the q and k heads, then its v elements; each thread takes one item,
// so a decode batch of a few tokens still spreads over dozens of blocks (one block per token made
// each thread walk 20+ sincosf pairs in series). Angles: sincosf of the f32 product the CPU uses.
#include "kernels/cuda/rope_store_kv.cuh"

namespace tandem::cuda {
namespace {

__device__ __forceinline__ float biased(const bf16* row, const bf16* bias, int64_t i) {
  // The bias is added in f32 and rounded once, as a bf16 linear layer with bias would.
  return bias ? to_float(to_bf16(to_float(row[i]) + to_float(bias[i]))) : to_float(row[i]);
}

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) rope_store_kv_kernel(RopeStoreKvParams p) {
  const int64_t t = blockIdx.x;
  const int j = int(blockIdx.y) * kThreads + int(threadIdx.x);  // this thread's work item
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
  const bf16 y1 = to_bf16(x1 * c - x2 * s), y2 = to_bf16(x2 * c + x1 * s);
  if (head < p.num_heads) {
    row[base + i] = y1;
    row[base + i + half] = y2;
  } else {
    bf16* dst = p.k_cache + slot * kv_dim + (base - q_dim);
    dst[i] = y1;
    dst[i + half] = y2;
  }
}

}  // namespace

cudaError_t rope_store_kv(const RopeStoreKvParams& p, cudaStream_t stream) {
  if (p.n <= 0) return cudaSuccess;
  if (p.head_dim <= 0 || p.head_dim % 2 != 0 || p.num_heads <= 0 || p.num_kv_heads <= 0 ||
      p.qkv_stride < int64_t(p.num_heads + 2 * p.num_kv_heads) * p.head_dim || p.n > INT32_MAX) {
    return cudaErrorInvalidValue;
  }
  const int64_t items = int64_t(p.num_heads + p.num_kv_heads) * (p.head_dim / 2) +
                        int64_t(p.num_kv_heads) * p.head_dim;
  const dim3 grid(unsigned(p.n), unsigned((items + kThreads - 1) / kThreads));
  rope_store_kv_kernel<<<grid, kThreads, 0, stream>>>(p);
  return last_launch_error();
}

}  // namespace tandem::cuda
