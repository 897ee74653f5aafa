// Merging split-KV's partial results across the splits of each (token, head) row: combine_kernel
// (a block of kCombineThreads a row) and combine_warp_kernel (warps, no barriers, for launches of
// up to 16 splits), which add in the same order and so give a row the same bits; split_kv.cu
// launches the merge after its kernels whenever a launch has more than one split.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/launch.cuh"

namespace tandem::cuda::attention {
namespace {

// Merges the splits' partials of one (token, head): out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M)
// l_s. The block first turns every split's max into its weight e^(m_s - M) in shared memory (0 for
// a split past the row's visible keys, whose partial is not used); then kCombineThreads / hd
// groups of hd threads each sum every groups-th split for one dimension apiece, so a thread's chain
// of dependent adds is num_splits / groups long (one group of 128 threads took 20 us a layer for
// one 7500-token sequence), and the groups' sums meet in shared memory. Which split goes to which
// thread does not depend on num_splits, so neither does a row's result. The loads do not wait for
// each other: every split's m and l, and a thread's first kPreloadSplits partials, are requested at
// once, before the reductions (at batch 1 x 7500 the kernel was a chain of dependent round trips:
// 9.7 us a layer under ncu on an H200, 60% of the split-KV kernel's own time).
constexpr int kCombineThreads = 512;
constexpr int kPreloadSplits = 16;  // a thread's partials loaded up front (64 splits at hd 128)

__global__ void __launch_bounds__(kCombineThreads)
    combine_kernel(PagedAttentionParams p, int num_splits, int skip_query_len) {
  wait_for_previous_kernel();
  // (num_splits) weights, (num_splits) sums l, then (groups, hd) partial sums
  extern __shared__ float weight[];
  __shared__ float scratch[32];
  const int t = blockIdx.x, head = blockIdx.y, hd = p.head_dim;
  if (p.max_query_len >= skip_query_len) {  // else no sequence of the batch is the flash kernel's
    const int seq = seq_of_row(p, t);
    if (p.query_start[seq + 1] - p.query_start[seq] >= skip_query_len) return;
  }
  const int64_t rows = int64_t(num_splits) * p.num_tokens * p.num_heads;
  const float* m = p.workspace + rows * hd;
  const float* l = m + rows;
  const int64_t split_stride = int64_t(p.num_tokens) * p.num_heads;  // rows from split to split
  const int64_t row0 = int64_t(t) * p.num_heads + head;              // this row in split 0
  const int groups = kCombineThreads / hd;  // hd divides kCombineThreads (validated sizes)
  const int d = threadIdx.x % hd, sg = threadIdx.x / hd;
  const float* o = p.workspace + row0 * hd + d;  // split s at o[s * split_stride * hd]
  float preloaded[kPreloadSplits];
#pragma unroll
  for (int k = 0; k < kPreloadSplits; ++k) {
    const int s = sg + k * groups;
    preloaded[k] = sg < groups && s < num_splits ? o[s * split_stride * hd] : 0.0f;
  }
  float* sums = weight + num_splits;
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < num_splits; s += blockDim.x) {
    weight[s] = m[s * split_stride + row0];
    sums[s] = l[s * split_stride + row0];
    mx = fmaxf(mx, weight[s]);
  }
  mx = block_max(mx, scratch);
  float den = 0.0f;
  for (int s = threadIdx.x; s < num_splits; s += blockDim.x) {
    const float w = weight[s] == -INFINITY ? 0.0f : __expf(weight[s] - mx);
    weight[s] = w;
    if (w > 0.0f) den = fmaf(w, sums[s], den);
  }
  den = block_sum(den, scratch);  // its barriers also publish weight[] to the whole block
  float* part = sums + num_splits;
  if (sg < groups) {
    float num = 0.0f;
#pragma unroll
    for (int k = 0; k < kPreloadSplits; ++k) {
      const int s = sg + k * groups;
      if (s < num_splits) {
        const float w = weight[s];
        if (w > 0.0f) num = fmaf(w, preloaded[k], num);
      }
    }
#pragma unroll 4
    for (int s = sg + kPreloadSplits * groups; s < num_splits; s += groups) {
      const float w = weight[s];
      if (w > 0.0f) num = fmaf(w, o[s * split_stride * hd], num);
    }
    part[sg * hd + d] = num;
  }
  __syncthreads();
  if (threadIdx.x < hd) {
    float num = 0.0f;
    for (int k = 0; k < groups; ++k) num += part[k * hd + d];
    p.out[row0 * hd + d] = to_bf16(den > 0.0f ? num / den : 0.0f);
  }
}

// The same merge with one warp per (token, head), no barriers, and every load of up to
// kWarpCombinePreload splits requested at once, for launches of that many splits (contexts up to
// 2K keys; at batch 32 x 2048 combine_kernel's barriers and dependent loads took 14 us a layer on
// an H200). It adds in exactly combine_kernel's order, so a row gets the same bits from either
// kernel and the choice may follow the launch's split count (the batch's longest context): the sum
// of the weighted l is combine_kernel's tree (split s plays thread s of kCombineThreads: splits s,
// s + kCombineThreads, ... in sequence, then a warp sum per 32 threads, then a warp sum over the
// warps' sums); a dimension's numerator keeps one running sum per combine_kernel group (splits g, g
// + groups, ... in order) and adds the groups' sums last, in group order. Lane l holds dimensions
// l, l + 32, ... of the row.
constexpr int kWarpCombineWarps = 4;     // rows per block
constexpr int kWarpCombinePreload = 16;  // splits whose loads go out at once (a multiple of groups)

template <int HD>
__global__ void __launch_bounds__(kWarpCombineWarps * 32)
    combine_warp_kernel(PagedAttentionParams p, int num_splits, int skip_query_len) {
  wait_for_previous_kernel();
  constexpr int kGroups = kCombineThreads / HD, kDims = HD / 32;
  constexpr int kWarps = kCombineThreads / 32;  // combine_kernel's warps
  const int lane = threadIdx.x % 32;
  const int64_t row0 = int64_t(blockIdx.x) * kWarpCombineWarps + threadIdx.x / 32;
  if (row0 >= int64_t(p.num_tokens) * p.num_heads) return;
  const int t = int(row0 / p.num_heads);
  if (p.max_query_len >= skip_query_len) {
    const int seq = seq_of_row(p, t);
    if (p.query_start[seq + 1] - p.query_start[seq] >= skip_query_len) return;
  }
  const int64_t rows = int64_t(num_splits) * p.num_tokens * p.num_heads;
  const float* m = p.workspace + rows * HD;
  const float* l = m + rows;
  const int64_t split_stride = int64_t(p.num_tokens) * p.num_heads;
  const float* o = p.workspace + row0 * HD + lane;

  // Every load of the first kPreload splits (partials, and m and l of the first 32) is requested
  // before any arithmetic waits on one: one round trip to memory for a 2K context, not one per
  // step of the reduction.
  constexpr int kPreload = kWarpCombinePreload;
  float pre[kPreload][kDims];
#pragma unroll
  for (int k = 0; k < kPreload; ++k) {
#pragma unroll
    for (int j = 0; j < kDims; ++j) {
      pre[k][j] = k < num_splits ? o[k * split_stride * HD + j * 32] : 0.0f;
    }
  }
  const float m_own = lane < num_splits ? m[lane * split_stride + row0] : -INFINITY;  // split lane
  const float l_own = lane < num_splits ? l[lane * split_stride + row0] : 0.0f;
  float mx = m_own;
  for (int s = lane + 32; s < num_splits; s += 32) mx = fmaxf(mx, m[s * split_stride + row0]);
  mx = warp_max(mx);
  auto weight_of = [&](float ms) { return ms == -INFINITY ? 0.0f : __expf(ms - mx); };
  const float w_own = weight_of(m_own);
  // The weight of split s (the same for every lane): lane s has it for s < 32.
  auto weight = [&](int s) {
    return s < 32 ? __shfl_sync(0xffffffffu, w_own, s) : weight_of(m[s * split_stride + row0]);
  };
  // The denominator: lane `w` ends up holding combine_kernel's warp w's sum.
  float warp_sums = 0.0f;
  for (int w = 0; w < kWarps && w * 32 < num_splits; ++w) {
    float den = 0.0f;
    for (int s = w * 32 + lane; s < num_splits; s += kCombineThreads) {
      const float ws = s < 32 ? w_own : weight_of(m[s * split_stride + row0]);
      const float ls = s < 32 ? l_own : l[s * split_stride + row0];
      if (ws > 0.0f) den = fmaf(ws, ls, den);
    }
    den = warp_sum(den);
    if (lane == w) warp_sums = den;
  }
  const float den = warp_sum(lane < kWarps ? warp_sums : 0.0f);

  float acc[kGroups][kDims];
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
#pragma unroll
    for (int j = 0; j < kDims; ++j) acc[g][j] = 0.0f;
  }
#pragma unroll
  for (int k = 0; k < kPreload; ++k) {
    if (k < num_splits) {
      const float ws = weight(k);
      if (ws > 0.0f) {
#pragma unroll
        for (int j = 0; j < kDims; ++j) {
          acc[k % kGroups][j] = fmaf(ws, pre[k][j], acc[k % kGroups][j]);
        }
      }
    }
  }
  // Past kPreload splits (launch_split_kv sends such launches to combine_kernel; tests force
  // them here): a round trip per kGroups splits.
  for (int s0 = kPreload; s0 < num_splits; s0 += kGroups) {
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const int s = s0 + g;
      if (s < num_splits) {
        const float ws = weight(s);
        float part[kDims];  // loaded whatever the weight, so the loads need not wait for it
#pragma unroll
        for (int j = 0; j < kDims; ++j) part[j] = o[s * split_stride * HD + j * 32];
        if (ws > 0.0f) {
#pragma unroll
          for (int j = 0; j < kDims; ++j) acc[g][j] = fmaf(ws, part[j], acc[g][j]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kDims; ++j) {
    float num = 0.0f;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) num += acc[g][j];
    p.out[row0 * HD + lane + j * 32] = to_bf16(den > 0.0f ? num / den : 0.0f);
  }
}

}  // namespace

cudaError_t launch_split_kv_merge(const PagedAttentionParams& p, int splits, int skip_query_len,
                                  SplitKvCombine combine, cudaStream_t stream) {
  const int64_t rows = int64_t(p.num_tokens) * p.num_heads;
  const bool warp_ok = p.head_dim == 64 || p.head_dim == 128;
  // The warp kernel wins while it loads every split at once (contexts up to 2K keys: at 32 x 2048
  // 7.30 ms a decode step against 7.60 on an H200); past that combine_kernel's 512 threads keep
  // more loads in flight per row (1 x 7500: 4.94 ms against 5.27).
  const bool use_warp =
      warp_ok && (combine == SplitKvCombine::kWarp ||
                  (combine == SplitKvCombine::kAuto && splits <= kWarpCombinePreload));
  if (combine == SplitKvCombine::kWarp && !warp_ok) return cudaErrorNotSupported;
  if (use_warp) {
    return dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
      constexpr int HD = decltype(hd)::value;
      const unsigned blocks = unsigned((rows + kWarpCombineWarps - 1) / kWarpCombineWarps);
      return launch_kernel(combine_warp_kernel<HD>, blocks, kWarpCombineWarps * 32, 0, stream, p,
                           splits, skip_query_len);
    });
  }
  {
    const size_t smem = (2 * size_t(splits) + kCombineThreads) * sizeof(float);
    if (smem > 48 * 1024) {  // past 5888 splits (contexts of 750K keys)
      const cudaError_t set = cudaFuncSetAttribute(
          combine_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
      if (set != cudaSuccess) return set;
    }
    return launch_kernel(combine_kernel, dim3(unsigned(p.num_tokens), unsigned(p.num_heads)),
                         kCombineThreads, smem, stream, p, splits, skip_query_len);
  }
}

}  // namespace tandem::cuda::attention
