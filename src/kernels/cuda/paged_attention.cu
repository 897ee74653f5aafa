// paged_attention: kernels, then launchers.
//  - split_kv_kernel: grid (token, kv head, split). A block loads the token's GQA group of queries,
//    walks its share of the visible keys in tiles of kTile (coalesced key and value rows, every
//    value read once for all heads of the group) with an online softmax, and writes either the
//    final output or an unnormalized partial (o, max, sum) that combine_kernel merges across
//    splits.
//  - tensor_core_kernel: grid (query tile of 128 rows of one sequence, q head). Flash-attention-2
//    style: each of 4 warps owns 32 query rows; per 64-key tile (cp.async double-buffered through
//    the block table), S = Q K^T with mma.sync in registers, an online softmax (the causal mask
//    only on diagonal tiles), and O = O * alpha + P V accumulated in registers.
#include <algorithm>

#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/paged_attention.cuh"

namespace tandem::cuda {
namespace {

constexpr int kMaxGroup = 8;         // query heads per KV head the split-KV kernel supports
constexpr int kTile = 128;           // keys per split-KV tile = threads per block
constexpr int kMaxSplitRows = 8192;  // num_splits * num_tokens bound (sizes the workspace)
// Keys per split: fixed, so a row's result never depends on what else is in the batch (the same
// greedy tokens batched as alone); one tile, so even a single short sequence fills the GPU
// (1K context: 8 splits per KV head; 8K: 64).
constexpr int kKeysPerSplit = kTile;
// Sequences with at least this many new tokens take the tensor-core kernel under kAuto; the choice
// depends only on the sequence itself, never on the rest of the batch.
constexpr int kTensorCoreMinQueryLen = 16;

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

__device__ __forceinline__ int64_t slot_of(const int32_t* table, int block_size, int key) {
  return int64_t(table[key / block_size]) * block_size + key % block_size;
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

// ---- split-KV kernel ---------------------------------------------------------------------------
// Memory access: for the scores, each thread reads one whole key row (16 bytes a load, all of the
// row's loads in flight at once) and dots it with every query of the group; for P.V, hd / 2
// threads read one value row 4 bytes each, 256 / hd key rows at a time, and the key-parallel
// partial sums are added through shared memory at the end.

// Rows of sequences with at least `skip_query_len` new tokens are left to the tensor-core kernel.
template <int HD>
__global__ void __launch_bounds__(kTile) split_kv_kernel(PagedAttentionParams p, int num_splits,
                                                         int keys_per_split, int skip_query_len) {
  constexpr int kMaxHd = HD > 0 ? HD : kMaxGenericHeadDim;
  const int hd = HD > 0 ? HD : p.head_dim;
  const int t = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int group = p.num_heads / p.num_kv_heads;
  const int seq = find_seq(p.query_start, p.num_seqs, t);
  const int q_end = p.query_start[seq + 1];
  if (q_end - p.query_start[seq] >= skip_query_len) return;
  const int len = p.context_lens[seq] - (q_end - t) + 1;  // visible keys [0, len)
  const int begin = split * keys_per_split, end = min(len, begin + keys_per_split);
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int64_t kv_stride = int64_t(p.num_kv_heads) * hd;
  const bf16* k_head = p.k_cache + int64_t(kvh) * hd;
  const bf16* v_head = p.v_cache + int64_t(kvh) * hd;

  __shared__ float q_s[kMaxGroup][kMaxHd];     // (group, hd) queries, pre-scaled
  __shared__ float score_s[kMaxGroup][kTile];  // (group, tile) scores, then probabilities
  __shared__ int64_t slot_s[kTile];            // (tile) cache slot of each key
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup], alpha_s[kMaxGroup];
  __shared__ float2 part_s[kTile][kMaxGroup];  // (thread, head) P.V partials, summed at the end

  for (int i = threadIdx.x; i < group * hd; i += kTile) {
    const int g = i / hd, d = i % hd;
    q_s[g][d] =
        to_float(p.q[int64_t(t) * p.q_stride + int64_t(kvh * group + g) * hd + d]) * p.scale;
  }
  if (threadIdx.x < kMaxGroup) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.0f;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // P.V: this thread's value dims (2 * pair, 2 * pair + 1) of keys kpar, kpar + key_step, ...
  const int pairs = hd / 2, pair = threadIdx.x % pairs, kpar = threadIdx.x / pairs;
  const int key_step = kTile / pairs;
  float2 acc[kMaxGroup];
  for (int g = 0; g < kMaxGroup; ++g) acc[g] = make_float2(0.0f, 0.0f);
  __syncthreads();

  for (int tile = begin; tile < end; tile += kTile) {
    const int count = min(kTile, end - tile);
    float s[kMaxGroup];
    for (int g = 0; g < kMaxGroup; ++g) s[g] = 0.0f;
    if (threadIdx.x < count) {
      const int64_t slot = slot_of(table, p.block_size, tile + threadIdx.x);
      slot_s[threadIdx.x] = slot;
      const bf16* k_row = k_head + slot * kv_stride;
      for (int d = 0; d < hd; d += 8) {
        float kf[8];
        load8(k_row + d, kf);
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < group) {
            for (int e = 0; e < 8; ++e) s[g] += q_s[g][d + e] * kf[e];
          }
        }
      }
    }
    for (int g = 0; g < group; ++g)
      score_s[g][threadIdx.x] = threadIdx.x < count ? s[g] : -INFINITY;
    __syncthreads();
    // Online softmax: warp w updates heads w, w + 4, ...
    for (int g = warp; g < group; g += kTile / 32) {
      float mx = -INFINITY;
      for (int j = lane; j < kTile; j += 32) mx = fmaxf(mx, score_s[g][j]);
      mx = warp_max(mx);
      const float m_new = fmaxf(m_s[g], mx);  // finite: the tile holds at least one key
      float sum = 0.0f;
      for (int j = lane; j < kTile; j += 32) {
        const float e = __expf(score_s[g][j] - m_new);
        score_s[g][j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float alpha = __expf(m_s[g] - m_new);
        alpha_s[g] = alpha;
        l_s[g] = l_s[g] * alpha + sum;
        m_s[g] = m_new;
      }
    }
    __syncthreads();
    // P.V: each value element is read once and used for every head of the group.
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < group) {
        acc[g].x *= alpha_s[g];
        acc[g].y *= alpha_s[g];
      }
    }
    if (kpar < key_step) {
      for (int j = kpar; j < count; j += key_step) {
        const float2 v = __bfloat1622float2(
            *reinterpret_cast<const __nv_bfloat162*>(v_head + slot_s[j] * kv_stride + 2 * pair));
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < group) {
            acc[g].x += score_s[g][j] * v.x;
            acc[g].y += score_s[g][j] * v.y;
          }
        }
      }
    }
    __syncthreads();
  }

  for (int g = 0; g < kMaxGroup; ++g) part_s[threadIdx.x][g] = acc[g];
  __syncthreads();
  // Thread i < pairs sums its dims' partials over the key_step key-parallel threads and writes.
  if (threadIdx.x >= pairs) return;
  for (int g = 0; g < group; ++g) {
    float2 o = make_float2(0.0f, 0.0f);
    for (int k = 0; k < key_step; ++k) {
      o.x += part_s[k * pairs + threadIdx.x][g].x;
      o.y += part_s[k * pairs + threadIdx.x][g].y;
    }
    const int head = kvh * group + g, d = 2 * threadIdx.x;
    if (num_splits == 1) {
      const float inv = l_s[g] > 0.0f ? 1.0f / l_s[g] : 0.0f;
      *reinterpret_cast<__nv_bfloat162*>(p.out + (int64_t(t) * p.num_heads + head) * hd + d) =
          __floats2bfloat162_rn(o.x * inv, o.y * inv);
    } else {
      // workspace: o (splits, tokens, heads, hd), then m and l (splits, tokens, heads) each.
      const int64_t row = (int64_t(split) * p.num_tokens + t) * p.num_heads + head;
      p.workspace[row * hd + d] = o.x;
      p.workspace[row * hd + d + 1] = o.y;
      if (d == 0) {
        const int64_t ml = int64_t(num_splits) * p.num_tokens * p.num_heads * hd;
        p.workspace[ml + row] = m_s[g];
        p.workspace[ml + int64_t(num_splits) * p.num_tokens * p.num_heads + row] = l_s[g];
      }
    }
  }
}

// The largest `v` over a block of blockDim.x threads (a multiple of 32); every thread gets it.
// `scratch` holds 32 floats in shared memory.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Merges the splits' partials of one (token, head): out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M)
// l_s. The block first turns every split's max into its weight e^(m_s - M) in shared memory (0 for
// a split past the row's visible keys, whose partial is never read), then each thread sums its
// dimensions over the splits with independent loads: a chain of dependent loads per split made
// this merge a ninth of a long-context decode step.
__global__ void combine_kernel(PagedAttentionParams p, int num_splits, int skip_query_len) {
  extern __shared__ float weight[];  // (num_splits)
  __shared__ float scratch[32];
  const int t = blockIdx.x, head = blockIdx.y, hd = p.head_dim;
  const int seq = find_seq(p.query_start, p.num_seqs, t);
  if (p.query_start[seq + 1] - p.query_start[seq] >= skip_query_len) return;
  const int64_t rows = int64_t(num_splits) * p.num_tokens * p.num_heads;
  const float* m = p.workspace + rows * hd;
  const float* l = m + rows;
  const int64_t split_stride = int64_t(p.num_tokens) * p.num_heads;  // rows from split to split
  const int64_t row0 = int64_t(t) * p.num_heads + head;              // this row in split 0
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < num_splits; s += blockDim.x) {
    weight[s] = m[s * split_stride + row0];
    mx = fmaxf(mx, weight[s]);
  }
  mx = block_max(mx, scratch);
  float den = 0.0f;
  for (int s = threadIdx.x; s < num_splits; s += blockDim.x) {
    const float w = weight[s] == -INFINITY ? 0.0f : __expf(weight[s] - mx);
    weight[s] = w;
    if (w > 0.0f) den += w * l[s * split_stride + row0];
  }
  den = block_sum(den, scratch);  // its barriers also publish weight[] to the whole block
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    const float* o = p.workspace + row0 * hd + d;  // split s at o[s * split_stride * hd]
    float num = 0.0f;
#pragma unroll 8
    for (int s = 0; s < num_splits; ++s) {
      const float w = weight[s];
      if (w > 0.0f) num += w * o[s * split_stride * hd];
    }
    p.out[row0 * hd + d] = to_bf16(den > 0.0f ? num / den : 0.0f);
  }
}

// ---- tensor-core (flash) kernel ----------------------------------------------------------------
// mma.sync m16n8k16 bf16 -> f32 with ldmatrix loads. Fragment layouts (PTX ISA, per lane l,
// g = l / 4, c = l % 4): A 16x16 row-major {(g, 2c..2c+1), (g+8, 2c..), (g, 2c+8..), (g+8,
// 2c+8..)}; B 16x8 {(k 2c..2c+1, n g), (k 2c+8.., n g)}; C 16x8 {(g, 2c..2c+1), (g+8, 2c..2c+1)}.
// S = Q K^T stays in registers, becomes P (bf16 A fragments) in place, and O accumulates in
// registers; K/V tiles stream through a two-stage cp.async pipeline. Each warp owns 32 query rows
// (two mma row tiles), so every K and V fragment read from shared memory serves two mma.

constexpr int kBq = 128;      // query rows per block
constexpr int kBk = 64;       // keys per tile
// 16-row mma tiles per warp: each K/V fragment read from shared memory feeds two mma. (One tile
// a warp, 8 warps, measured 1.86 ms against 1.76 for the 7500-token prefill on an H200.)
constexpr int kRowTiles = 2;
constexpr int kWarps = kBq / (16 * kRowTiles);
constexpr int kPad = 8;  // bf16 row padding: ldmatrix rows land in distinct banks

template <int HD>
struct FlashSmem {
  static constexpr int kLd = HD + kPad;
  bf16 q[kBq][kLd];     // (128 rows, hd) this block's queries
  bf16 k[2][kBk][kLd];  // (stage, 64 keys, hd)
  bf16 v[2][kBk][kLd];  // (stage, 64 keys, hd)
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
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
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Starts copying keys and values [row0, row0 + 64) of head kvh into `stage`; rows at or past
// `limit` become zeros.
template <int HD>
__device__ void load_kv_tile(const PagedAttentionParams& p, const int32_t* table, int kvh, int row0,
                             int limit, FlashSmem<HD>& sm, int stage) {
  constexpr int kChunks = HD / 8;
  static_assert(kWarps * 32 % kChunks == 0, "a thread keeps its chunk column across rows");
  const int64_t kv_stride = int64_t(p.num_kv_heads) * HD;
  const int c = (threadIdx.x % kChunks) * 8;
  // A power-of-two block size (the usual) turns the slot's division into a shift.
  const int bs = p.block_size, shift = __ffs(bs) - 1;
  const bool pow2 = (bs & (bs - 1)) == 0;
  for (int r = threadIdx.x / kChunks; r < kBk; r += kWarps * 32 / kChunks) {
    const int key = row0 + r;
    const bool valid = key < limit;
    const int64_t slot = pow2 ? int64_t(table[key >> shift]) * bs + (key & (bs - 1))
                              : slot_of(table, bs, key);
    const int64_t off = valid ? slot * kv_stride + int64_t(kvh) * HD + c : 0;
    cp_async16(&sm.k[stage][r][c], p.k_cache + off, valid);
    cp_async16(&sm.v[stage][r][c], p.v_cache + off, valid);
  }
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Sequences with fewer than `min_query_len` new tokens are left to the split-KV kernel.
// Two blocks per SM (8 warps), up to 255 registers a thread: O (32 rows x hd) lives in registers;
// Q fragments are re-read from shared memory per tile.
template <int HD>
__global__ void __launch_bounds__(kWarps * 32, 2)
    tensor_core_kernel(PagedAttentionParams p, int tiles_per_seq, int min_query_len) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  FlashSmem<HD>& sm = *reinterpret_cast<FlashSmem<HD>*>(smem_raw);
  constexpr int kNt = kBk / 8;  // 8-key column tiles of S
  constexpr int kDt = HD / 8;   // 8-dim column tiles of O
  constexpr int kKc = HD / 16;  // 16-dim chunks of Q
  // Longest query tiles (most keys) first, so the causal tail of short tiles fills the end.
  const int seq = blockIdx.x / tiles_per_seq;
  const int qtile = tiles_per_seq - 1 - int(blockIdx.x % tiles_per_seq);
  const int head = blockIdx.y, kvh = head / (p.num_heads / p.num_kv_heads);
  const int q_begin = p.query_start[seq], q_len = p.query_start[seq + 1] - q_begin;
  const int row0 = qtile * kBq;
  if (row0 >= q_len || q_len < min_query_len) return;
  const int rows = min(kBq, q_len - row0);
  const int first_pos = p.context_lens[seq] - q_len + row0;  // position of this tile's row 0
  const int key_limit = first_pos + rows;  // keys [0, key_limit) are visible to some row
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int lm = lane / 8, lr = lane % 8;  // ldmatrix: which 8x8 matrix, which of its rows
  const int wrow = warp * 16 * kRowTiles;  // the warp's first row in the block's tile

  for (int i = threadIdx.x; i < kBq * (HD / 8); i += kWarps * 32) {
    const int r = i / (HD / 8), col = (i % (HD / 8)) * 8;
    const bool valid = r < rows;
    cp_async16(
        &sm.q[r][col],
        valid ? p.q + int64_t(q_begin + row0 + r) * p.q_stride + int64_t(head) * HD + col : p.q,
        valid);
  }
  load_kv_tile<HD>(p, table, kvh, 0, key_limit, sm, 0);
  cp_async_commit();

  // Positions of this lane's rows g and g + 8 of each row tile; padding rows mirror the last.
  int pos[kRowTiles][2];
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
    pos[mt][0] = first_pos + min(wrow + mt * 16 + g, rows - 1);
    pos[mt][1] = first_pos + min(wrow + mt * 16 + g + 8, rows - 1);
  }
  const int warp_first_pos = first_pos + min(wrow, rows - 1);
  const int warp_last_pos = first_pos + min(wrow + 16 * kRowTiles - 1, rows - 1);
  const float scale_log2 = p.scale * 1.4426950408889634f;  // softmax in base 2
  // Running max (of scaled scores, base 2) and sum per row; [mt][0] row g, [mt][1] row g + 8.
  float row_max[kRowTiles][2], row_sum[kRowTiles][2];
  float o[kRowTiles][kDt][4];
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.0f;
#pragma unroll
    for (int d = 0; d < kDt; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.0f;
  }

  const int num_tiles = (key_limit + kBk - 1) / kBk;
  for (int t = 0; t < num_tiles; ++t) {
    const int stage = t & 1, kt = t * kBk;
    if (t + 1 < num_tiles) {
      load_kv_tile<HD>(p, table, kvh, kt + kBk, key_limit, sm, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    if (kt > warp_last_pos) {  // every key of this tile lies after this warp's rows
      __syncthreads();
      continue;
    }
    // S (32 x 64) = Q_w K^T
    float s[kRowTiles][kNt][4];
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
      for (int n = 0; n < kNt; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
    }
#pragma unroll
    for (int kc = 0; kc < kKc; kc += 2) {
      uint32_t qa[kRowTiles][4], qb[kRowTiles][4];  // Q_w fragments, dim chunks kc and kc + 1
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
        const int r = wrow + mt * 16 + (lm % 2) * 8 + lr;
        ldmatrix_x4(qa[mt], &sm.q[r][kc * 16 + (lm / 2) * 8]);
        ldmatrix_x4(qb[mt], &sm.q[r][(kc + 1) * 16 + (lm / 2) * 8]);
      }
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        uint32_t b[4];  // B fragments of dim chunks kc and kc + 1 for keys 8n..8n+7
        ldmatrix_x4(b, &sm.k[stage][n * 8 + lr][kc * 16 + lm * 8]);
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          mma_bf16(s[mt][n], qa[mt], b[0], b[1]);
          mma_bf16(s[mt][n], qb[mt], b[2], b[3]);
        }
      }
    }
    if (kt + kBk - 1 > warp_first_pos) {  // a diagonal tile: mask keys after each row
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
        for (int n = 0; n < kNt; ++n) {
          const int key = kt + n * 8 + 2 * c;
          if (key > pos[mt][0]) s[mt][n][0] = -INFINITY;
          if (key + 1 > pos[mt][0]) s[mt][n][1] = -INFINITY;
          if (key > pos[mt][1]) s[mt][n][2] = -INFINITY;
          if (key + 1 > pos[mt][1]) s[mt][n][3] = -INFINITY;
        }
      }
    }

    // Online softmax in base 2 with the scale folded into one FMA: P = 2^(s * scale - max).
    uint32_t pf[kRowTiles][kNt / 2][4];  // P as A fragments, one per 16-key chunk
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
      float mx0 = -INFINITY, mx1 = -INFINITY;  // of the unscaled scores
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        mx0 = fmaxf(mx0, fmaxf(s[mt][n][0], s[mt][n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[mt][n][2], s[mt][n][3]));
      }
#pragma unroll
      for (int o2 = 1; o2 <= 2; o2 <<= 1) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o2));
      }
      const float new0 = fmaxf(row_max[mt][0], mx0 * scale_log2);
      const float new1 = fmaxf(row_max[mt][1], mx1 * scale_log2);
      // Row 0 of every tile sees key 0, so the max is finite after the first tile; guard anyway.
      const float base0 = new0 == -INFINITY ? 0.0f : new0;
      const float base1 = new1 == -INFINITY ? 0.0f : new1;
      const float alpha0 = fast_exp2(row_max[mt][0] - base0);
      const float alpha1 = fast_exp2(row_max[mt][1] - base1);
      row_max[mt][0] = new0;
      row_max[mt][1] = new1;
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        const float p0 = fast_exp2(fmaf(s[mt][n][0], scale_log2, -base0));
        const float p1 = fast_exp2(fmaf(s[mt][n][1], scale_log2, -base0));
        const float p2 = fast_exp2(fmaf(s[mt][n][2], scale_log2, -base1));
        const float p3 = fast_exp2(fmaf(s[mt][n][3], scale_log2, -base1));
        sum0 += p0 + p1;
        sum1 += p2 + p3;
        pf[mt][n / 2][(n % 2) * 2] = pack_bf16(p0, p1);
        pf[mt][n / 2][(n % 2) * 2 + 1] = pack_bf16(p2, p3);
      }
      row_sum[mt][0] = row_sum[mt][0] * alpha0 + sum0;
      row_sum[mt][1] = row_sum[mt][1] * alpha1 + sum1;
      // Once the rows' maxima settle (most tiles of a long prompt), alpha is 1: skip the rescale.
      if (__any_sync(0xffffffffu, alpha0 != 1.0f || alpha1 != 1.0f)) {
#pragma unroll
        for (int d = 0; d < kDt; ++d) {
          o[mt][d][0] *= alpha0;
          o[mt][d][1] *= alpha0;
          o[mt][d][2] *= alpha1;
          o[mt][d][3] *= alpha1;
        }
      }
    }

    // O (32 x hd) += P (32 x 64) V (64 x hd)
#pragma unroll
    for (int kc = 0; kc < kBk / 16; ++kc) {
#pragma unroll
      for (int d = 0; d < kDt; d += 2) {
        uint32_t b[4];  // B fragments of dim tiles d and d + 1 for keys 16kc..16kc+15
        ldmatrix_x4_trans(b, &sm.v[stage][kc * 16 + (lm % 2) * 8 + lr][d * 8 + (lm / 2) * 8]);
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          mma_bf16(o[mt][d], pf[mt][kc], b[0], b[1]);
          mma_bf16(o[mt][d + 1], pf[mt][kc], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // this stage is refilled two tiles on
  }

#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
    float l0 = row_sum[mt][0], l1 = row_sum[mt][1];
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
      l0 += __shfl_xor_sync(0xffffffffu, l0, o2);
      l1 += __shfl_xor_sync(0xffffffffu, l1, o2);
    }
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    const int r0 = wrow + mt * 16 + g, r1 = r0 + 8;
#pragma unroll
    for (int d = 0; d < kDt; ++d) {
      const int col = d * 8 + 2 * c;
      if (r0 < rows) {
        *reinterpret_cast<uint32_t*>(
            p.out + (int64_t(q_begin + row0 + r0) * p.num_heads + head) * HD + col) =
            pack_bf16(o[mt][d][0] * inv0, o[mt][d][1] * inv0);
      }
      if (r1 < rows) {
        *reinterpret_cast<uint32_t*>(
            p.out + (int64_t(q_begin + row0 + r1) * p.num_heads + head) * HD + col) =
            pack_bf16(o[mt][d][2] * inv1, o[mt][d][3] * inv1);
      }
    }
  }
}

// ---- launchers ---------------------------------------------------------------------------------

bool valid(const PagedAttentionParams& p) {
  return p.num_heads > 0 && p.num_kv_heads > 0 && p.num_heads % p.num_kv_heads == 0 &&
         p.num_heads / p.num_kv_heads <= kMaxGroup && p.head_dim > 0 && p.head_dim % 8 == 0 &&
         p.head_dim <= kMaxGenericHeadDim && ((p.head_dim / 8) & (p.head_dim / 8 - 1)) == 0 &&
         p.block_size > 0 && p.num_seqs > 0 && p.q_stride >= int64_t(p.num_heads) * p.head_dim &&
         p.max_query_len > 0 && p.max_context_len >= p.max_query_len && p.q && p.k_cache &&
         p.v_cache && p.out && p.query_start && p.context_lens && p.block_tables;
}

cudaError_t launch_split_kv(const PagedAttentionParams& p, cudaStream_t stream,
                            int skip_query_len) {
  int splits = (p.max_context_len + kKeysPerSplit - 1) / kKeysPerSplit;
  // Past the workspace (huge mixed batches), splits get longer: still exact, batch-dependent.
  const int max_splits = std::max(1, kMaxSplitRows / std::max(1, p.num_tokens));
  const size_t row_bytes = size_t(p.num_tokens) * p.num_heads * (p.head_dim + 2) * sizeof(float);
  if (splits > max_splits) splits = max_splits;
  if (splits > 1 && (!p.workspace || p.workspace_bytes < size_t(splits) * row_bytes)) {
    return cudaErrorInvalidValue;  // the caller sized the workspace with the function below
  }
  const int keys_per_split = ((p.max_context_len + splits - 1) / splits + kKeysPerSplit - 1) /
                             kKeysPerSplit * kKeysPerSplit;
  const dim3 grid(unsigned(p.num_tokens), unsigned(p.num_kv_heads), unsigned(splits));
  dispatch_head_dim(p.head_dim, [&](auto hd) {
    split_kv_kernel<decltype(hd)::value>
        <<<grid, kTile, 0, stream>>>(p, splits, keys_per_split, skip_query_len);
  });
  if (splits > 1) {
    combine_kernel<<<dim3(unsigned(p.num_tokens), unsigned(p.num_heads)), 128,
                     size_t(splits) * sizeof(float), stream>>>(p, splits, skip_query_len);
  }
  return last_launch_error();
}

cudaError_t launch_tensor_core(const PagedAttentionParams& p, cudaStream_t stream,
                               int min_query_len) {
  return dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
    constexpr int HD = decltype(hd)::value;
    const size_t smem = sizeof(FlashSmem<HD>);
    cudaError_t e = cudaFuncSetAttribute(tensor_core_kernel<HD>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    const int tiles = (p.max_query_len + kBq - 1) / kBq;
    const dim3 grid(unsigned(int64_t(p.num_seqs) * tiles), unsigned(p.num_heads));
    tensor_core_kernel<HD><<<grid, kWarps * 32, smem, stream>>>(p, tiles, min_query_len);
    return last_launch_error();
  });
}

}  // namespace

size_t paged_attention_workspace_bytes(int32_t num_heads, int32_t head_dim) {
  return size_t(kMaxSplitRows) * size_t(num_heads) * size_t(head_dim + 2) * sizeof(float);
}

cudaError_t paged_attention(const PagedAttentionParams& p, cudaStream_t stream,
                            AttentionKernel kernel) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (!valid(p)) return cudaErrorInvalidValue;
  const bool tensor_core_ok = p.head_dim == 64 || p.head_dim == 128;
  constexpr int kNone = 1 << 30;
  switch (kernel) {
    case AttentionKernel::kTensorCore:
      return launch_tensor_core(p, stream, /*min_query_len=*/0);
    case AttentionKernel::kSplitKv:
      return launch_split_kv(p, stream, /*skip_query_len=*/kNone);
    case AttentionKernel::kAuto:
      break;
  }
  // Each sequence goes to one kernel by its own query length.
  if (!tensor_core_ok || p.max_query_len < kTensorCoreMinQueryLen) {
    return launch_split_kv(p, stream, kNone);
  }
  const cudaError_t e = launch_tensor_core(p, stream, kTensorCoreMinQueryLen);
  if (e != cudaSuccess) return e;
  return launch_split_kv(p, stream, kTensorCoreMinQueryLen);
}

}  // namespace tandem::cuda
