// Folding the nodes a split-KV launch left in the workspace into each (token, head) row's result,
// along the split tree of attention_common.cuh: combine_kernel (a block a row, for any number of
// nodes) and combine_warp_kernel (a warp a row, no barriers, up to kRunNodes nodes). Both
// merge the nodes in the tree's order with the same arithmetic, so a row gets the same bits from
// either, and the same as from a launch whose blocks folded more of the tree themselves.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/launch.cuh"

namespace tandem::cuda::attention {
namespace {

// Where a launch's nodes are: o (nodes, tokens, heads, hd), then m and l (nodes, tokens, heads).
struct NodeLayout {
  const float* o;  // of node 0 for this row's dimension 0
  const float* m;  // of node 0 for this row
  const float* l;
  int64_t o_stride, ml_stride;  // from node to node
};
__device__ __forceinline__ NodeLayout node_layout(const PagedAttentionParams& p, int nodes,
                                                  int64_t row, int hd) {
  const int64_t rows = int64_t(p.num_tokens) * p.num_heads;
  const float* m = p.workspace + int64_t(nodes) * rows * hd;
  return {p.workspace + row * hd, m + row, m + int64_t(nodes) * rows + row, rows * hd, rows};
}

// Whether row t's sequence is the flash kernel's (at least skip_query_len new tokens).
__device__ __forceinline__ bool left_to_flash(const PagedAttentionParams& p, int t,
                                              int skip_query_len) {
  if (p.max_query_len < skip_query_len) return false;  // no sequence of the batch is
  const int seq = seq_of_row(p, t);
  return p.query_start[seq + 1] - p.query_start[seq] >= skip_query_len;
}

// A run of kRunNodes consecutive nodes (aligned: a subtree) is loaded at once, every load in flight
// before the fold waits on one (merging in dependent round trips took 60% of the split-KV kernel's
// own time at batch 1 x 7500), and folded pairwise; longer rows fold their runs' roots in turn.
constexpr int kRunNodes = 16;
constexpr int kRunLevels = 10;  // runs' roots a fold takes: below 1024 runs (kMaxSplitRows nodes)

// Loads the run of nodes [first, first + kRunNodes) ∩ [first, end) for kValues dimensions of a row,
// dimension v at `dim(v)`; nodes past `end` hold no keys.
template <int kValues, typename Dim>
__device__ __forceinline__ void load_run(const NodeLayout& at, int first, int end, Dim dim,
                                         float (&o)[kRunNodes][kValues], float (&m)[kRunNodes],
                                         float (&l)[kRunNodes]) {
#pragma unroll
  for (int k = 0; k < kRunNodes; ++k) {
    const int s = first + k;
    const bool in = s < end;
#pragma unroll
    for (int v = 0; v < kValues; ++v) o[k][v] = in ? at.o[s * at.o_stride + dim(v)] : 0.0f;
    m[k] = in ? at.m[s * at.ml_stride] : -INFINITY;
    l[k] = in ? at.l[s * at.ml_stride] : 0.0f;
  }
}

// A block of kCombineThreads a (token, head): kCombineThreads / hd groups of hd threads, group g
// folding the aligned run of `chunk` nodes [g chunk, (g + 1) chunk) (a subtree: chunk is a power of
// two) one dimension a thread, then group 0 folding the groups' roots.
constexpr int kCombineThreads = 512;
// The common rows take straight-line pairwise folds instead of the binary counter's code (the
// tree's kernel was 2.6x the flat sum's in PTX, and a 1 x 7500 step's 59-node merge 9.5 us a
// layer against 6.3; 8.0 us with these folds; the same tree, so the same bits: empty nodes merge
// as the identity).
constexpr int kFewGroups = kCombineThreads / 64;

__global__ void __launch_bounds__(kCombineThreads)
    combine_kernel(PagedAttentionParams p, int nodes, int skip_query_len) {
  wait_for_previous_kernel();
  let_next_kernel_start();  // a few_rows_gemm after it may start streaming weights
  extern __shared__ float part[];  // (groups, hd) roots' o, then (groups) m, then (groups) l
  const int t = blockIdx.x, head = blockIdx.y, hd = p.head_dim;
  if (left_to_flash(p, t, skip_query_len)) return;
  const int64_t row = int64_t(t) * p.num_heads + head;
  const NodeLayout at = node_layout(p, nodes, row, hd);
  const int groups = kCombineThreads / hd;  // hd divides kCombineThreads (validated sizes)
  int chunk = 1;
  while (chunk * groups < nodes) chunk *= 2;
  const int d = threadIdx.x % hd, sg = threadIdx.x / hd;
  float* part_m = part + groups * hd;
  float* part_l = part_m + groups;
  if (sg < groups) {
    const int begin = sg * chunk, end = min(nodes, begin + chunk);
    float root[1], m, l;
    if (chunk <= kRunNodes) {  // one run (rows up to 16 groups of nodes): no binary counter
      float o[kRunNodes][1], rm[kRunNodes], rl[kRunNodes];
      load_run(
          at, begin, end, [&](int) { return d; }, o, rm, rl);
      fold_pairwise(o, rm, rl);
      root[0] = o[0][0], m = rm[0], l = rl[0];
    } else {
      TreeFold<1, kRunLevels> runs;
      for (int first = begin; first < end; first += kRunNodes) {
        float o[kRunNodes][1], rm[kRunNodes], rl[kRunNodes];
        load_run(
            at, first, end, [&](int) { return d; }, o, rm, rl);
        fold_pairwise(o, rm, rl);
        runs.push(o[0], rm[0], rl[0]);
      }
      runs.root(root, m, l);
    }
    part[sg * hd + d] = root[0];
    if (d == 0) {
      part_m[sg] = m;
      part_l[sg] = l;
    }
  }
  __syncthreads();
  if (threadIdx.x < hd) {
    const int used = (nodes + chunk - 1) / chunk;
    float root[1], m, l;
    if (groups <= kFewGroups) {  // head_dim >= 64: the groups' tree pairwise, padded with empties
      float o[kFewGroups][1], gm[kFewGroups], gl[kFewGroups];
#pragma unroll
      for (int g = 0; g < kFewGroups; ++g) {
        const bool in = g < used;
        o[g][0] = in ? part[g * hd + d] : 0.0f;
        gm[g] = in ? part_m[g] : -INFINITY;
        gl[g] = in ? part_l[g] : 0.0f;
      }
      fold_pairwise(o, gm, gl);
      root[0] = o[0][0], m = gm[0], l = gl[0];
    } else {
      TreeFold<1, 8> fold;  // up to 128 groups (head_dim 4)
      for (int g = 0; g < used; ++g) {
        float o[1] = {part[g * hd + d]};
        fold.push(o, part_m[g], part_l[g]);
      }
      fold.root(root, m, l);
    }
    p.out[row * hd + d] = to_bf16(l > 0.0f ? root[0] / l : 0.0f);
  }
}

// The same fold with one warp a (token, head) and no barriers, for launches of up to kRunNodes
// nodes: one run, loaded at once, lane l folding dimensions l, l + 32, ... (at batch 32 x 2048
// combine_kernel's barriers and dependent loads took 14 us a layer on an H200). kLongRows: tests
// force it on more nodes, whose runs' roots it then folds in turn.
constexpr int kWarpCombineWarps = 4;  // rows per block

template <int HD, bool kLongRows>
__global__ void __launch_bounds__(kWarpCombineWarps * 32)
    combine_warp_kernel(PagedAttentionParams p, int nodes, int skip_query_len) {
  wait_for_previous_kernel();
  let_next_kernel_start();  // a few_rows_gemm after it may start streaming weights
  constexpr int kDims = HD / 32;
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarpCombineWarps + threadIdx.x / 32;
  if (row >= int64_t(p.num_tokens) * p.num_heads) return;
  if (left_to_flash(p, int(row / p.num_heads), skip_query_len)) return;
  const NodeLayout at = node_layout(p, nodes, row, HD);
  auto dim = [&](int v) { return lane + v * 32; };
  float o[kRunNodes][kDims], m[kRunNodes], l[kRunNodes];
  load_run(at, 0, nodes, dim, o, m, l);
  fold_pairwise(o, m, l);
  if constexpr (kLongRows) {
    TreeFold<kDims, kRunLevels> runs;
    runs.push(o[0], m[0], l[0]);
    for (int first = kRunNodes; first < nodes; first += kRunNodes) {
      load_run(at, first, nodes, dim, o, m, l);
      fold_pairwise(o, m, l);
      runs.push(o[0], m[0], l[0]);
    }
    runs.root(o[0], m[0], l[0]);
  }
#pragma unroll
  for (int v = 0; v < kDims; ++v) {
    p.out[row * HD + dim(v)] = to_bf16(l[0] > 0.0f ? o[0][v] / l[0] : 0.0f);
  }
}

}  // namespace

cudaError_t launch_split_kv_merge(const PagedAttentionParams& p, int nodes, int skip_query_len,
                                  SplitKvCombine combine, cudaStream_t stream) {
  const int64_t rows = int64_t(p.num_tokens) * p.num_heads;
  const bool warp_ok = p.head_dim == 64 || p.head_dim == 128;
  if (combine == SplitKvCombine::kWarp && !warp_ok) return cudaErrorNotSupported;
  // The warp kernel wins while it loads every node at once (at 32 x 2048, 16 nodes: 7.30 ms a
  // decode step against 7.60 on an H200); past that combine_kernel's 512 threads keep more loads
  // in flight per row (1 x 7500, 59 nodes: 4.94 ms against 5.27).
  const bool use_warp = warp_ok && (combine == SplitKvCombine::kWarp ||
                                    (combine == SplitKvCombine::kAuto && nodes <= kRunNodes));
  if (use_warp) {
    return dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
      constexpr int HD = decltype(hd)::value;
      const unsigned blocks = unsigned((rows + kWarpCombineWarps - 1) / kWarpCombineWarps);
      if (nodes <= kRunNodes) {
        return launch_kernel(combine_warp_kernel<HD, false>, blocks, kWarpCombineWarps * 32, 0,
                             stream, p, nodes, skip_query_len);
      }
      return launch_kernel(combine_warp_kernel<HD, true>, blocks, kWarpCombineWarps * 32, 0, stream,
                           p, nodes, skip_query_len);
    });
  }
  const int groups = kCombineThreads / p.head_dim;
  const size_t smem = size_t(groups) * (p.head_dim + 2) * sizeof(float);
  return launch_kernel(combine_kernel, dim3(unsigned(p.num_tokens), unsigned(p.num_heads)),
                       kCombineThreads, smem, stream, p, nodes, skip_query_len);
}

}  // namespace tandem::cuda::attention
