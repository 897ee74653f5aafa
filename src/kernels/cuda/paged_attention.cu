// paged_attention: kernels, then launchers.
//  - split_kv_kernel: grid (token, kv head, split). A block loads the token's GQA group of queries,
//    walks its share of the visible keys in tiles of kTile (value rows staged through shared
//    memory by cp.async while each thread dots one key row, every key and value read once for all
//    heads of the group) with an online softmax, and writes either the final output or an
//    unnormalized partial (o, max, sum) that combine_kernel merges across splits. CUDA cores, any
//    supported head_dim.
//  - split_kv_tc_kernel: the same blocks, splits and outputs on mma.sync for head_dim 64 and 128
//    (decode of the real models): the group's queries are the 8-wide side of each mma.
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
// Memory access: a tile's value rows go global -> shared with cp.async (16-byte chunks, consecutive
// threads along a row: coalesced, the whole tile in flight at once) and keep arriving while the
// scores are computed: thread j reads key row j straight from global memory and dots it with every
// query of the group. For P.V, thread (key group, chunk) accumulates 8 value dims over keys kg,
// kg + key_groups, ... for every head, reading value rows whose chunks are XOR-swizzled by the row
// index (no bank conflicts), and the key groups' partial sums meet in shared memory at the end.

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

// Shared memory of split_kv_kernel for head size hd: the V tile (kTile rows of hd bf16) or,
// reusing it after the last tile, the P.V partials (key groups, group, hd) f32; the queries
// (kMaxGroup, hd) f32; the probabilities (kMaxGroup, kTile) f32: 40 KB at hd 128, so registers,
// not shared memory, cap the blocks an SM (measured at hd 128 before split_kv_tc_kernel took it:
// K and V both staged, 72 KB and three blocks an SM, was slower from 16 long sequences up).
__host__ __device__ constexpr size_t split_kv_tiles_bytes(int hd) {
  return size_t(kTile) * hd * 2 > size_t(kTile) * 8 * kMaxGroup * 4
             ? size_t(kTile) * hd * 2
             : size_t(kTile) * 8 * kMaxGroup * 4;
}
__host__ __device__ constexpr size_t split_kv_smem_bytes(int hd) {
  return split_kv_tiles_bytes(hd) + size_t(kMaxGroup) * hd * 4 + size_t(kMaxGroup) * kTile * 4;
}

// Rows of sequences with at least `skip_query_len` new tokens are left to the tensor-core kernel.
// Head sizes other than 64 and 128 (split_kv_tc_kernel's); hd known only at run time.
// Four blocks an SM (a 128-register budget): five (96 registers) spilled and measured slower.
__global__ void __launch_bounds__(kTile, 4)
    split_kv_kernel(PagedAttentionParams p, int num_splits, int keys_per_split,
                    int skip_query_len) {
  const int hd = p.head_dim;
  const int chunks = hd / 8;  // a power of two (validated)
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

  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* v_s = reinterpret_cast<bf16*>(smem_raw);       // (kTile, hd) swizzled chunks
  float* part_s = reinterpret_cast<float*>(smem_raw);  // after the last tile
  float* q_s = reinterpret_cast<float*>(smem_raw + split_kv_tiles_bytes(hd));  // (group, hd)
  float* p_s = q_s + kMaxGroup * hd;  // (group, kTile) scores, then probabilities
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup], alpha_s[kMaxGroup];

  for (int i = threadIdx.x; i < group * hd; i += kTile) {
    q_s[i] = to_float(p.q[int64_t(t) * p.q_stride + int64_t(kvh) * group * hd + i]) * p.scale;
  }
  if (threadIdx.x < kMaxGroup) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.0f;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // P.V: this thread's 8 value dims (chunk c) for keys kg, kg + key_groups, ...
  const int c = threadIdx.x % chunks, kg = threadIdx.x / chunks, key_groups = kTile / chunks;
  float acc[kMaxGroup][8];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.0f;
  }
  const bool pow2 = (p.block_size & (p.block_size - 1)) == 0;
  const int shift = __ffs(p.block_size) - 1;
  auto slot_in = [&](const int32_t* tbl, int key) -> int64_t {
    return pow2 ? int64_t(tbl[key >> shift]) * p.block_size + (key & (p.block_size - 1))
                : slot_of(tbl, p.block_size, key);
  };
  __syncthreads();  // queries visible

  for (int tile = begin; tile < end; tile += kTile) {
    const int count = min(kTile, end - tile);
    // Values global -> shared in the background while the scores are computed.
    for (int i = threadIdx.x; i < kTile * chunks; i += kTile) {
      const int r = i / chunks, ch = i % chunks;
      const bool valid = r < count;
      const int64_t slot = valid ? slot_in(table, tile + r) : 0;
      cp_async16(v_s + r * hd + swizzle(r, ch, chunks) * 8, v_head + slot * kv_stride + ch * 8,
                 valid);
    }
    cp_async_commit();

    // Scores: thread j reads key row j straight from global memory (16-byte loads, 4 in flight).
    float s[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) s[g] = 0.0f;
    if (threadIdx.x < count) {
      const bf16* k_row = k_head + slot_in(table, tile + threadIdx.x) * kv_stride;
#pragma unroll 4
      for (int ch = 0; ch < chunks; ++ch) {
        float kf[8];
        load8(k_row + ch * 8, kf);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < group) {
            const float* q = q_s + g * hd + ch * 8;
#pragma unroll
            for (int e = 0; e < 8; ++e) s[g] += q[e] * kf[e];
          }
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < group) p_s[g * kTile + threadIdx.x] = threadIdx.x < count ? s[g] : -INFINITY;
    }
    __syncthreads();
    // Online softmax: warp w updates heads w, w + 4, ...
    for (int g = warp; g < group; g += kTile / 32) {
      float mx = -INFINITY;
      for (int j = lane; j < kTile; j += 32) mx = fmaxf(mx, p_s[g * kTile + j]);
      mx = warp_max(mx);
      const float m_new = fmaxf(m_s[g], mx);  // finite: the tile holds at least one key
      float sum = 0.0f;
      for (int j = lane; j < kTile; j += 32) {
        const float e = __expf(p_s[g * kTile + j] - m_new);
        p_s[g * kTile + j] = e;
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
    cp_async_wait<0>();
    __syncthreads();  // values landed; probabilities visible

    // P.V: each value element is read once and used for every head of the group.
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < group) {
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] *= alpha_s[g];
      }
    }
    for (int j = kg; j < count; j += key_groups) {
      float vf[8];
      load8(v_s + j * hd + swizzle(j, c, chunks) * 8, vf);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < group) {
          const float pj = p_s[g * kTile + j];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[g][e] += pj * vf[e];
        }
      }
    }
    __syncthreads();  // the next tile overwrites v_s and p_s
  }

  // part_s (key_groups, group, hd): this thread's dims of every head
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < group) {
      float4* dst = reinterpret_cast<float4*>(part_s + (kg * group + g) * hd + c * 8);
      dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
      dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < group * hd; i += kTile) {
    const int g = i / hd, d = i % hd;
    float o = 0.0f;
    for (int k = 0; k < key_groups; ++k) o += part_s[(k * group + g) * hd + d];
    const int head = kvh * group + g;
    if (num_splits == 1) {
      // o / l, as combine_kernel ends for a row whose keys fit one split: the same bits whether
      // or not a longer sequence in the batch makes this launch split.
      p.out[(int64_t(t) * p.num_heads + head) * hd + d] =
          to_bf16(l_s[g] > 0.0f ? o / l_s[g] : 0.0f);
    } else {
      // workspace: o (splits, tokens, heads, hd), then m and l (splits, tokens, heads) each.
      const int64_t row = (int64_t(split) * p.num_tokens + t) * p.num_heads + head;
      p.workspace[row * hd + d] = o;
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
// a split past the row's visible keys, whose partial is never read); then kCombineThreads / hd
// groups of hd threads each sum every groups-th split for one dimension apiece, so a thread's chain
// of dependent adds is num_splits / groups long (one group of 128 threads took 20 us a layer for
// one 7500-token sequence), and the groups' sums meet in shared memory. Which split goes to which
// thread does not depend on num_splits, so neither does a row's result.
constexpr int kCombineThreads = 512;

__global__ void __launch_bounds__(kCombineThreads)
    combine_kernel(PagedAttentionParams p, int num_splits, int skip_query_len) {
  extern __shared__ float weight[];  // (num_splits) weights, then (groups, hd) partial sums
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
  den = block_sum(den, scratch);            // its barriers also publish weight[] to the whole block
  const int groups = kCombineThreads / hd;  // hd divides kCombineThreads (validated sizes)
  const int d = threadIdx.x % hd, sg = threadIdx.x / hd;
  float* part = weight + num_splits;
  if (sg < groups) {
    const float* o = p.workspace + row0 * hd + d;  // split s at o[s * split_stride * hd]
    float num = 0.0f;
#pragma unroll 4
    for (int s = sg; s < num_splits; s += groups) {
      const float w = weight[s];
      if (w > 0.0f) num += w * o[s * split_stride * hd];
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

// ---- tensor-core (flash) kernel ----------------------------------------------------------------
// mma.sync m16n8k16 bf16 -> f32 with ldmatrix loads. Fragment layouts (PTX ISA, per lane l,
// g = l / 4, c = l % 4): A 16x16 row-major {(g, 2c..2c+1), (g+8, 2c..), (g, 2c+8..), (g+8,
// 2c+8..)}; B 16x8 {(k 2c..2c+1, n g), (k 2c+8.., n g)}; C 16x8 {(g, 2c..2c+1), (g+8, 2c..2c+1)}.
// S = Q K^T stays in registers, becomes P (bf16 A fragments) in place, and O accumulates in
// registers; K/V tiles stream through a two-stage cp.async pipeline. Each warp owns 32 query rows
// (two mma row tiles), so every K and V fragment read from shared memory serves two mma.

constexpr int kBq = 128;  // query rows per block
constexpr int kBk = 64;   // keys per tile
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
    const int64_t slot =
        pow2 ? int64_t(table[key >> shift]) * bs + (key & (bs - 1)) : slot_of(table, bs, key);
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

// ---- tensor-core split-KV kernel (head_dim 64 and 128) ------------------------------------------
// The same blocks and splits as split_kv_kernel, with the math on mma.sync so the block is bound by
// memory rather than by instruction issue (the CUDA-core kernel issues ~0.45 warp instructions a
// cycle per scheduler at 32 x 2048). The group's queries are the N = 8 side of each mma (heads past
// the group are zero): S^T (keys x heads) = K Q^T with K tiles from shared memory as A fragments
// and Q^T preloaded as B fragments; P goes through shared memory as bf16 (softmax one warp per
// head); O^T (dims x heads) = V^T P^T with V^T fragments from ldmatrix.trans. Warp w computes S for
// keys [32w, 32w + 32) and O for dims [HD/4 w, HD/4 (w + 1)). A tile's keys and then its values
// take turns in one buffer (the values load while the softmax runs), rows unpadded with their
// 16-byte chunks XOR-swizzled by the row so ldmatrix reads hit distinct banks: 40 KB of shared
// memory, five blocks an SM. (K and V side by side, 72 KB and three blocks an SM, were 2-5%
// slower at every decode shape measured on an H200: batch 1 x 7500 5.37 ms against 5.12.)

template <int HD>
struct SplitKvTcSmem {
  bf16 kv[kTile][HD];               // the tile's keys, then its values: swizzled chunks
  float s[kMaxGroup][kTile];        // scaled scores
  bf16 p[kMaxGroup][kTile + kPad];  // probabilities (heads past the group stay 0)
  bf16 q[kMaxGroup][HD + kPad];     // queries (heads past the group are 0)
  float m[kMaxGroup], l[kMaxGroup], alpha[kMaxGroup];
};

template <int HD>
__device__ __forceinline__ const bf16* tc_row_chunk(const bf16 (*rows)[HD], int row, int dim) {
  return &rows[row][((dim / 8) ^ (row & 7)) * 8];
}

template <int HD>
__global__ void __launch_bounds__(kTile, 5)
    split_kv_tc_kernel(PagedAttentionParams p, int num_splits, int keys_per_split,
                       int skip_query_len) {
  constexpr int kChunks = HD / 8, kKc = HD / 16, kDimTiles = HD / 16 / 4;  // per warp
  extern __shared__ __align__(128) unsigned char smem_raw[];
  SplitKvTcSmem<HD>& sm = *reinterpret_cast<SplitKvTcSmem<HD>*>(smem_raw);
  const int t = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int group = p.num_heads / p.num_kv_heads;
  const int seq = find_seq(p.query_start, p.num_seqs, t);
  const int q_end = p.query_start[seq + 1];
  if (q_end - p.query_start[seq] >= skip_query_len) return;
  const int len = p.context_lens[seq] - (q_end - t) + 1;  // visible keys [0, len)
  const int begin = split * keys_per_split, end = min(len, begin + keys_per_split);
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int64_t kv_stride = int64_t(p.num_kv_heads) * HD;
  const bf16* k_head = p.k_cache + int64_t(kvh) * HD;
  const bf16* v_head = p.v_cache + int64_t(kvh) * HD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int lm = lane / 8, lr = lane % 8;  // ldmatrix: which 8x8 matrix, which of its rows

  for (int i = threadIdx.x; i < kMaxGroup * HD; i += kTile) {
    const int h = i / HD, d = i % HD;
    sm.q[h][d] = h < group ? p.q[int64_t(t) * p.q_stride + int64_t(kvh * group + h) * HD + d]
                           : __float2bfloat16(0.0f);
  }
  for (int i = threadIdx.x; i < kMaxGroup * (kTile + kPad); i += kTile) {
    sm.p[i / (kTile + kPad)][i % (kTile + kPad)] = __float2bfloat16(0.0f);
  }
  if (threadIdx.x < kMaxGroup) {
    sm.m[threadIdx.x] = -INFINITY;
    sm.l[threadIdx.x] = 0.0f;
    sm.alpha[threadIdx.x] = 1.0f;
  }
  __syncthreads();
  uint32_t qf[kKc][2];  // Q^T B fragments, dim chunk kc
#pragma unroll
  for (int kc = 0; kc < kKc; kc += 2) {
    uint32_t b[4];
    ldmatrix_x4(b, &sm.q[lr][kc * 16 + lm * 8]);
    qf[kc][0] = b[0];
    qf[kc][1] = b[1];
    qf[kc + 1][0] = b[2];
    qf[kc + 1][1] = b[3];
  }
  float o[kDimTiles][4];  // O^T: (dim g, heads 2c, 2c+1), (dim g + 8, heads 2c, 2c+1)
#pragma unroll
  for (int mt = 0; mt < kDimTiles; ++mt) o[mt][0] = o[mt][1] = o[mt][2] = o[mt][3] = 0.0f;
  const bool pow2 = (p.block_size & (p.block_size - 1)) == 0;
  const int shift = __ffs(p.block_size) - 1;

  for (int tile = begin; tile < end; tile += kTile) {
    const int count = min(kTile, end - tile);
    auto load_tile = [&](const bf16* src, bf16(*dst)[HD]) {
      for (int i = threadIdx.x; i < kTile * kChunks; i += kTile) {
        const int r = i / kChunks, ch = i % kChunks, key = tile + r;
        const bool valid = r < count;
        int64_t slot = 0;
        if (valid) {
          slot = pow2 ? int64_t(table[key >> shift]) * p.block_size + (key & (p.block_size - 1))
                      : slot_of(table, p.block_size, key);
        }
        cp_async16(&dst[r][(ch ^ (r & 7)) * 8], src + slot * kv_stride + ch * 8, valid);
      }
      cp_async_commit();
    };
    load_tile(k_head, sm.kv);
    cp_async_wait<0>();
    __syncthreads();  // keys landed

    // S^T for this warp's 32 keys: two 16-key tiles.
#pragma unroll
    for (int kt = 0; kt < 2; ++kt) {
      const int key0 = warp * 32 + kt * 16;
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int kc = 0; kc < kKc; ++kc) {
        uint32_t a[4];
        ldmatrix_x4(a, tc_row_chunk<HD>(sm.kv, key0 + (lm % 2) * 8 + lr, kc * 16 + (lm / 2) * 8));
        mma_bf16(acc, a, qf[kc][0], qf[kc][1]);
      }
      sm.s[2 * c][key0 + g] = acc[0] * p.scale;
      sm.s[2 * c + 1][key0 + g] = acc[1] * p.scale;
      sm.s[2 * c][key0 + g + 8] = acc[2] * p.scale;
      sm.s[2 * c + 1][key0 + g + 8] = acc[3] * p.scale;
    }
    __syncthreads();
    load_tile(v_head, sm.kv);  // every warp is done with the keys: values arrive during the softmax
    // Online softmax: warp w updates heads w, w + 4, ...; keys past `count` get probability 0.
    for (int h = warp; h < group; h += kTile / 32) {
      float mx = -INFINITY;
      for (int j = lane; j < count; j += 32) mx = fmaxf(mx, sm.s[h][j]);
      mx = warp_max(mx);
      const float m_new = fmaxf(sm.m[h], mx);  // finite: the tile holds at least one key
      float sum = 0.0f;
      for (int j = lane; j < kTile; j += 32) {
        const float e = j < count ? __expf(sm.s[h][j] - m_new) : 0.0f;
        const bf16 eb = __float2bfloat16(e);
        sm.p[h][j] = eb;
        sum += __bfloat162float(eb);  // normalize by exactly what P.V sums
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float alpha = __expf(sm.m[h] - m_new);
        sm.alpha[h] = alpha;
        sm.l[h] = sm.l[h] * alpha + sum;
        sm.m[h] = m_new;
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // values landed; probabilities visible

    const float alpha0 = sm.alpha[2 * c], alpha1 = sm.alpha[2 * c + 1];
#pragma unroll
    for (int mt = 0; mt < kDimTiles; ++mt) {
      o[mt][0] *= alpha0;
      o[mt][1] *= alpha1;
      o[mt][2] *= alpha0;
      o[mt][3] *= alpha1;
    }
#pragma unroll
    for (int kc = 0; kc < kTile / 16; kc += 2) {
      uint32_t b[4];  // P^T B fragments, key chunks kc and kc + 1
      ldmatrix_x4(b, &sm.p[lr][kc * 16 + lm * 8]);
#pragma unroll
      for (int mt = 0; mt < kDimTiles; ++mt) {
        const int dim0 = (warp * kDimTiles + mt) * 16;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int key0 = (kc + half) * 16;
          uint32_t a[4];  // V^T A fragments: (dims dim0.., keys key0..)
          ldmatrix_x4_trans(a,
                            tc_row_chunk<HD>(sm.kv, key0 + (lm / 2) * 8 + lr, dim0 + (lm % 2) * 8));
          mma_bf16(o[mt], a, b[2 * half], b[2 * half + 1]);
        }
      }
    }
    __syncthreads();  // the next tile overwrites k, v, s and p
  }

#pragma unroll
  for (int mt = 0; mt < kDimTiles; ++mt) {
    const int dim0 = (warp * kDimTiles + mt) * 16;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int h = 2 * c + (i % 2), d = dim0 + g + (i / 2) * 8;
      if (h >= group) continue;
      const int head = kvh * group + h;
      if (num_splits == 1) {
        // o / l, as combine_kernel ends (see split_kv_kernel)
        p.out[(int64_t(t) * p.num_heads + head) * HD + d] =
            to_bf16(sm.l[h] > 0.0f ? o[mt][i] / sm.l[h] : 0.0f);
      } else {
        // workspace: o (splits, tokens, heads, hd), then m and l (splits, tokens, heads) each.
        const int64_t row = (int64_t(split) * p.num_tokens + t) * p.num_heads + head;
        p.workspace[row * HD + d] = o[mt][i];
        if (d == 0) {
          const int64_t ml = int64_t(num_splits) * p.num_tokens * p.num_heads * HD;
          p.workspace[ml + row] = sm.m[h];
          p.workspace[ml + int64_t(num_splits) * p.num_tokens * p.num_heads + row] = sm.l[h];
        }
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
  if (p.head_dim == 64 || p.head_dim == 128) {
    const cudaError_t e =
        dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
          constexpr int HD = decltype(hd)::value;
          const size_t smem = sizeof(SplitKvTcSmem<HD>);
          const cudaError_t set = cudaFuncSetAttribute(
              split_kv_tc_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
          if (set != cudaSuccess) return set;
          split_kv_tc_kernel<HD>
              <<<grid, kTile, smem, stream>>>(p, splits, keys_per_split, skip_query_len);
          return last_launch_error();
        });
    if (e != cudaSuccess) return e;
  } else {
    const size_t smem = split_kv_smem_bytes(p.head_dim);
    const cudaError_t set = cudaFuncSetAttribute(
        split_kv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (set != cudaSuccess) return set;
    split_kv_kernel<<<grid, kTile, smem, stream>>>(p, splits, keys_per_split, skip_query_len);
    const cudaError_t e = last_launch_error();
    if (e != cudaSuccess) return e;
  }
  if (splits > 1) {
    combine_kernel<<<dim3(unsigned(p.num_tokens), unsigned(p.num_heads)), kCombineThreads,
                     (size_t(splits) + kCombineThreads) * sizeof(float), stream>>>(p, splits,
                                                                                   skip_query_len);
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
  if (e != cudaSuccess || p.num_seqs == 1) return e;  // one sequence: the tensor-core kernel's
  return launch_split_kv(p, stream, kTensorCoreMinQueryLen);
}

}  // namespace tandem::cuda
