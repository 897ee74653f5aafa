// What the paged-attention kernels (split_kv.cu, flash_prefill.cu) share: the batch layout
// helpers (which sequence a row belongs to, a key's cache slot), the cp.async / ldmatrix / mma.sync
// wrappers, and the launchers paged_attention.cu dispatches to. Internal to paged attention.
#pragma once
#include <cstdint>

#include "kernels/cuda/paged_attention.cuh"

namespace tandem::cuda::attention {

constexpr int kMaxGroup = 8;         // query heads per KV head the split-KV kernels support
constexpr int kTile = 128;           // keys per split-KV tile = threads per block
constexpr int kMaxSplitRows = 8192;  // num_splits * num_tokens bound (sizes the workspace)
// Keys per split: fixed, so a row's result never depends on what else is in the batch (the same
// greedy tokens batched as alone); one tile, so even a single short sequence fills the GPU
// (1K context: 8 splits per KV head; 8K: 64).
constexpr int kKeysPerSplit = kTile;
constexpr int kPad = 8;  // bf16 row padding: ldmatrix rows land in distinct banks

// Split-KV handles the rows of sequences with fewer than `skip_query_len` new tokens; the flash
// kernel the sequences with at least `min_query_len`.
// Which kernel merges the splits' partials: kAuto picks by the launch's row count; both give the
// same bits (tests force each).
enum class SplitKvCombine { kAuto, kBlock, kWarp };
cudaError_t launch_split_kv(const PagedAttentionParams& p, cudaStream_t stream, int skip_query_len,
                            SplitKvCombine combine = SplitKvCombine::kAuto);
// Merges the partials a split-KV launch of `splits` > 1 splits left in the workspace into p.out
// (split_kv_merge.cu).
cudaError_t launch_split_kv_merge(const PagedAttentionParams& p, int splits, int skip_query_len,
                                  SplitKvCombine combine, cudaStream_t stream);
// Which flash kernel runs at head_dim 128: kBest the TMA one (flash_prefill_tma_wgmma.cu) where
// the cache allows it, else the cp.async one on wgmma (flash_prefill_wgmma.cu); the others force
// one. Other head sizes always take mma.sync (flash_prefill.cu).
enum class FlashKernel { kBest, kWgmmaCpAsync, kMmaSync };
cudaError_t launch_flash_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                                 int min_query_len, FlashKernel kernel = FlashKernel::kBest);
cudaError_t launch_wgmma_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                                 int min_query_len);
// cudaErrorNotSupported where the cache's shape rules TMA out (see the kernel's file).
cudaError_t launch_tma_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                               int min_query_len);

#ifdef __CUDACC__
// The sequence that query row t belongs to: the last s with query_start[s] <= t.
__device__ __forceinline__ int find_seq(const int32_t* query_start, int num_seqs, int t) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// The sequence of query row t: in a decode-only batch (every sequence one new token, as the
// host-known maximum says) row t is sequence t, with no dependent loads on the way.
__device__ __forceinline__ int seq_of_row(const PagedAttentionParams& p, int t) {
  if (p.max_query_len == 1 && p.num_seqs == p.num_tokens) return t;
  return find_seq(p.query_start, p.num_seqs, t);
}

// The cache slot of `key` through a sequence's block table; a power-of-two block size (the usual)
// turns the division into a shift.
__device__ __forceinline__ int64_t slot_of(const int32_t* table, int block_size, int key) {
  if ((block_size & (block_size - 1)) == 0) {
    return int64_t(table[key >> (__ffs(block_size) - 1)]) * block_size + (key & (block_size - 1));
  }
  return int64_t(table[key / block_size]) * block_size + key % block_size;
}

// The cache slot of `key` if it is visible (below `end`), else -1. The table entry is read
// whenever it lies inside the table row, visible or not, so the read need not wait for `end`
// (a context length loaded just before).
__device__ __forceinline__ int32_t visible_slot(const PagedAttentionParams& p, const int32_t* table,
                                                int key, int end) {
  const bool pow2 = (p.block_size & (p.block_size - 1)) == 0;
  const int block = pow2 ? key >> (__ffs(p.block_size) - 1) : key / p.block_size;
  const int32_t entry = block < p.max_blocks_per_seq ? table[block] : 0;
  const int offset = pow2 ? key & (p.block_size - 1) : key % p.block_size;
  return key < end ? entry * p.block_size + offset : -1;
}

// One split-KV block's row: query row t (token), KV head kvh, keys [begin, end) of its split
// (of the row's visible keys [0, len)).
struct SplitKvRow {
  int t, kvh, split, group;
  int begin, end, len;
  const int32_t* table;  // the row's sequence's block table

  // Moves to split `s` of the same row.
  __device__ __forceinline__ void go_to_split(int s, int keys_per_split) {
    split = s;
    begin = s * keys_per_split;
    end = min(len, begin + keys_per_split);
  }
};

// The row of this block (grid: token, KV head, block of `splits_per_block` splits) at the block's
// first split, or false when its sequence is left to the flash kernel (at least `skip_query_len`
// new tokens).
__device__ __forceinline__ bool split_kv_row(const PagedAttentionParams& p, int keys_per_split,
                                             int splits_per_block, int skip_query_len,
                                             SplitKvRow& row) {
  row.t = blockIdx.x;
  row.kvh = blockIdx.y;
  row.group = p.num_heads / p.num_kv_heads;
  int seq, len;  // visible keys [0, len)
  if (p.max_query_len == 1 && p.num_seqs == p.num_tokens) {
    // decode-only: row t is sequence t's one new token, with every key visible; one load
    if (skip_query_len <= 1) return false;
    seq = row.t;
    len = p.context_lens[seq];
  } else {
    seq = find_seq(p.query_start, p.num_seqs, row.t);
    const int q_end = p.query_start[seq + 1];
    if (q_end - p.query_start[seq] >= skip_query_len) return false;
    len = p.context_lens[seq] - (q_end - row.t) + 1;
  }
  row.len = len;
  row.go_to_split(int(blockIdx.z) * splits_per_block, keys_per_split);
  row.table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  return true;
}

// ---- The split tree ----
// A row's keys fall into splits (a 128-key tile each, unless the workspace ran short), and split
// s's partial result is (o, m, l): o unnormalized over the split's keys, m their max score, l the
// sum of their probabilities (m = -inf, l = 0, o = 0: no visible keys). The row's result is the
// root of a fixed binary tree over its splits — node (level k, j) merges nodes (k - 1, 2j) and
// (k - 1, 2j + 1), or is the first where the second holds no splits — divided o / l. Split-KV blocks
// walk 2^b splits each and write node (b, block) (write_split_result); the merge kernels fold those
// nodes into the root. Whichever b a launch takes, every node is merged in the same order with the
// same arithmetic, so a row's bits never depend on the launch (nor on its batch).
//
// Weights of merging partials a (earlier keys) and b: m = max(ma, mb), a scaled by e^(ma - m), b
// by e^(mb - m). Callers skip the merge where b holds no keys (mb = -inf) and take b where a does
// not; both are finite otherwise.
struct MergeWeights {
  float m, wa, wb;
};
__device__ __forceinline__ MergeWeights merge_weights(float ma, float mb) {
  const float m = fmaxf(ma, mb);
  return {m, __expf(ma - m), __expf(mb - m)};
}
// o or l of the merge (no contraction left to the compiler: every caller gets the same bits).
__device__ __forceinline__ float merged(float a, float wa, float b, float wb) {
  return __fmaf_rn(a, wa, __fmul_rn(b, wb));
}

// a = a merged with b (b holding the later keys), for kValues of a row's dimensions.
template <int kValues>
__device__ __forceinline__ void merge_into(float (&a_o)[kValues], float& a_m, float& a_l,
                                           const float (&b_o)[kValues], float b_m, float b_l) {
  if (b_m == -INFINITY) return;  // b holds no keys
  if (a_m == -INFINITY) {        // a holds none
#pragma unroll
    for (int v = 0; v < kValues; ++v) a_o[v] = b_o[v];
    a_m = b_m;
    a_l = b_l;
    return;
  }
  const MergeWeights w = merge_weights(a_m, b_m);
#pragma unroll
  for (int v = 0; v < kValues; ++v) a_o[v] = merged(a_o[v], w.wa, b_o[v], w.wb);
  a_l = merged(a_l, w.wa, b_l, w.wb);
  a_m = w.m;
}

// Folds kNodes consecutive nodes (an aligned run: kNodes a power of two; trailing ones may hold no
// keys) into node 0: the tree's levels over them, pairwise, every index a constant.
template <int kNodes, int kValues>
__device__ __forceinline__ void fold_pairwise(float (&o)[kNodes][kValues], float (&m)[kNodes],
                                              float (&l)[kNodes]) {
#pragma unroll
  for (int stride = 1; stride < kNodes; stride *= 2) {
#pragma unroll
    for (int j = 0; j + stride < kNodes; j += 2 * stride) {
      merge_into(o[j], m[j], l[j], o[j + stride], m[j + stride], l[j + stride]);
    }
  }
}

// Folds nodes given one at a time, in key order, into the root of the tree over them (a binary
// counter: slot k holds a finished left subtree of 2^k nodes awaiting its right sibling), for
// kValues of a row's dimensions. kLevels bounds the nodes folded: below 2^kLevels. Call push from
// a loop, not an unrolled one: each call is kLevels merges of code.
template <int kValues, int kLevels>
struct TreeFold {
  float o[kLevels][kValues];
  float m[kLevels], l[kLevels];
  int count = 0;

  // Adds the next node (consumed: it becomes the merged subtree).
  __device__ __forceinline__ void push(float (&node_o)[kValues], float node_m, float node_l) {
    bool parked = false;  // (no break: every slot index stays a constant, the slots registers)
#pragma unroll
    for (int k = 0; k < kLevels; ++k) {
      if (parked) continue;
      if (((count >> k) & 1) == 0) {  // no left sibling waits at level k: park the node there
#pragma unroll
        for (int v = 0; v < kValues; ++v) o[k][v] = node_o[v];
        m[k] = node_m;
        l[k] = node_l;
        parked = true;
      } else {  // slot k is the left sibling: node = slot k merged with node
        merge_into(o[k], m[k], l[k], node_o, node_m, node_l);
#pragma unroll
        for (int v = 0; v < kValues; ++v) node_o[v] = o[k][v];
        node_m = m[k];
        node_l = l[k];
      }
    }
    ++count;
  }
  // The root of every node pushed: the waiting subtrees merged from the smallest (the last keys)
  // up. Zero nodes: no keys.
  __device__ __forceinline__ void root(float (&out_o)[kValues], float& out_m, float& out_l) {
    out_m = -INFINITY;
    out_l = 0.0f;
#pragma unroll
    for (int v = 0; v < kValues; ++v) out_o[v] = 0.0f;
#pragma unroll
    for (int k = 0; k < kLevels; ++k) {
      if ((count >> k) & 1) {
        merge_into(o[k], m[k], l[k], out_o, out_m, out_l);
#pragma unroll
        for (int v = 0; v < kValues; ++v) out_o[v] = o[k][v];
        out_m = m[k];
        out_l = l[k];
      }
    }
  }
};

// Writes dimension d of head `head` for a split-KV block's node: where the launch has one node
// (a row's whole tree) the result o / l (as the merge kernels end), else the unnormalized o and
// (once a head) its m and l into the workspace at the node's index row.split:
// o (nodes, tokens, heads, hd), then m and l (nodes, tokens, heads) each.
__device__ __forceinline__ void write_split_result(const PagedAttentionParams& p,
                                                   const SplitKvRow& row, int num_splits, int head,
                                                   int d, float o, float m, float l) {
  const int hd = p.head_dim;
  if (num_splits == 1) {
    p.out[(int64_t(row.t) * p.num_heads + head) * hd + d] = to_bf16(l > 0.0f ? o / l : 0.0f);
    return;
  }
  const int64_t r = (int64_t(row.split) * p.num_tokens + row.t) * p.num_heads + head;
  p.workspace[r * hd + d] = o;
  if (d == 0) {
    const int64_t ml = int64_t(num_splits) * p.num_tokens * p.num_heads * hd;
    p.workspace[ml + r] = m;
    p.workspace[ml + int64_t(num_splits) * p.num_tokens * p.num_heads + r] = l;
  }
}

// Loads 8 bf16 at p (16-byte aligned) as floats.
__device__ __forceinline__ void load8(const bf16* p, float* out) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared, zero-filled when !valid.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Where chunk `chunk` of tile row `row` lives among the row's `chunks` 16-byte chunks.
__device__ __forceinline__ int swizzle(int row, int chunk, int chunks) {
  return chunk ^ (row & (min(chunks, 8) - 1));
}

// mma.sync m16n8k16 bf16 -> f32 with ldmatrix loads. Fragment layouts (PTX ISA, per lane l,
// g = l / 4, c = l % 4): A 16x16 row-major {(g, 2c..2c+1), (g+8, 2c..), (g, 2c+8..), (g+8,
// 2c+8..)}; B 16x8 {(k 2c..2c+1, n g), (k 2c+8.., n g)}; C 16x8 {(g, 2c..2c+1), (g+8, 2c..2c+1)}.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  ldmatrix_x4(r, smem_addr(p));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// d (16x8 f32) += a (16x16 bf16) b (16x8 bf16)
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The flash kernels' online softmax runs in base 2 with the scale folded into one FMA
// (P = 2^(s * scale - max)), for a lane's two rows: g and g + 8 of a 16-row mma tile, over a key
// tile whose scores `s` hold kTiles 8-key column tiles in mma's C layout (s[4n], s[4n + 1]: row g,
// keys 2c, 2c + 1 of tile n; s[4n + 2], s[4n + 3]: row g + 8).
// Its first half: updates the rows' running max (scaled), returns in alpha the factors O and the
// sums must be rescaled by and in base the max each row's exponent subtracts.
template <int kTiles>
__device__ __forceinline__ void online_softmax_max(const float* s, float scale_log2,
                                                   float (&row_max)[2], float (&alpha)[2],
                                                   float (&base)[2]) {
  float mx0 = -INFINITY, mx1 = -INFINITY;  // of the unscaled scores
#pragma unroll
  for (int n = 0; n < kTiles; ++n) {
    mx0 = fmaxf(mx0, fmaxf(s[4 * n], s[4 * n + 1]));
    mx1 = fmaxf(mx1, fmaxf(s[4 * n + 2], s[4 * n + 3]));
  }
#pragma unroll
  for (int o2 = 1; o2 <= 2; o2 <<= 1) {
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o2));
  }
  const float new0 = fmaxf(row_max[0], mx0 * scale_log2);
  const float new1 = fmaxf(row_max[1], mx1 * scale_log2);
  // Row 0 of every tile sees key 0, so the max is finite after the first tile; guard anyway.
  base[0] = new0 == -INFINITY ? 0.0f : new0;
  base[1] = new1 == -INFINITY ? 0.0f : new1;
  alpha[0] = fast_exp2(row_max[0] - base[0]);
  alpha[1] = fast_exp2(row_max[1] - base[1]);
  row_max[0] = new0;
  row_max[1] = new1;
}

// One key tile of the online softmax: updates the rows' running max and sum, writes P as bf16 A
// fragments (one per 16 keys) and returns in alpha the factors O must be rescaled by.
template <int kTiles>
__device__ __forceinline__ void online_softmax_tile(const float* s, float scale_log2,
                                                    float (&row_max)[2], float (&row_sum)[2],
                                                    uint32_t (*p)[4], float (&alpha)[2]) {
  float base[2];
  online_softmax_max<kTiles>(s, scale_log2, row_max, alpha, base);
  float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
  for (int n = 0; n < kTiles; ++n) {
    const float p0 = fast_exp2(fmaf(s[4 * n], scale_log2, -base[0]));
    const float p1 = fast_exp2(fmaf(s[4 * n + 1], scale_log2, -base[0]));
    const float p2 = fast_exp2(fmaf(s[4 * n + 2], scale_log2, -base[1]));
    const float p3 = fast_exp2(fmaf(s[4 * n + 3], scale_log2, -base[1]));
    sum0 += p0 + p1;
    sum1 += p2 + p3;
    p[n / 2][(n % 2) * 2] = pack_bf16(p0, p1);
    p[n / 2][(n % 2) * 2 + 1] = pack_bf16(p2, p3);
  }
  row_sum[0] = row_sum[0] * alpha[0] + sum0;
  row_sum[1] = row_sum[1] * alpha[1] + sum1;
}

// The same with P left in `s` as f32 (the TMA kernel packs it later, once the MMA reading the
// previous tile's P has finished).
template <int kTiles>
__device__ __forceinline__ void online_softmax_in_place(float* s, float scale_log2,
                                                        float (&row_max)[2], float (&row_sum)[2],
                                                        float (&alpha)[2]) {
  float base[2];
  online_softmax_max<kTiles>(s, scale_log2, row_max, alpha, base);
  float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
  for (int n = 0; n < kTiles; ++n) {
    s[4 * n] = fast_exp2(fmaf(s[4 * n], scale_log2, -base[0]));
    s[4 * n + 1] = fast_exp2(fmaf(s[4 * n + 1], scale_log2, -base[0]));
    s[4 * n + 2] = fast_exp2(fmaf(s[4 * n + 2], scale_log2, -base[1]));
    s[4 * n + 3] = fast_exp2(fmaf(s[4 * n + 3], scale_log2, -base[1]));
    sum0 += s[4 * n] + s[4 * n + 1];
    sum1 += s[4 * n + 2] + s[4 * n + 3];
  }
  row_sum[0] = row_sum[0] * alpha[0] + sum0;
  row_sum[1] = row_sum[1] * alpha[1] + sum1;
}

// P (f32, in online_softmax_in_place's layout) as bf16 A fragments, one per 16 keys.
template <int kTiles>
__device__ __forceinline__ void pack_probabilities(const float* s, uint32_t (*p)[4]) {
#pragma unroll
  for (int n = 0; n < kTiles; ++n) {
    p[n / 2][(n % 2) * 2] = pack_bf16(s[4 * n], s[4 * n + 1]);
    p[n / 2][(n % 2) * 2 + 1] = pack_bf16(s[4 * n + 2], s[4 * n + 3]);
  }
}

#endif  // __CUDACC__

}  // namespace tandem::cuda::attention
