// Split-KV paged attention for decode (and the few-token rows of any batch): grid (token, KV
// head, node). A block loads the token's GQA group of queries, walks its split of the visible
// keys in tiles of kTile with an online softmax, every key and value read once for all heads of
// the group, and writes either the final output or an unnormalized partial (o, max, sum) that
// split_kv_merge.cu merges across splits (the split tree of attention_common.cuh). Two kernels:
// split_kv_tc_kernel on mma.sync for head_dim 64 and 128 (the real models), whose blocks may walk
// 2 or 4 splits and fold them into one node of the tree, and split_kv_kernel on CUDA cores, a
// split a block, for every other supported head_dim.
#include <algorithm>
#include <atomic>
#include <cstddef>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/launch.cuh"

namespace tandem::cuda::attention {
namespace {

// ---- CUDA-core split-KV kernel ------------------------------------------------------------------
// Memory access: a tile's value rows go global -> shared with cp.async (16-byte chunks, consecutive
// threads along a row: coalesced, the whole tile in flight at once) and keep arriving while the
// scores are computed: thread j reads key row j straight from global memory and dots it with every
// query of the group. For P.V, thread (key group, chunk) accumulates 8 value dims over keys kg,
// kg + key_groups, ... for every head, reading value rows whose chunks are XOR-swizzled by the row
// index (no bank conflicts), and the key groups' partial sums meet in shared memory at the end.

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
  wait_for_previous_kernel();
  SplitKvRow row;
  if (!split_kv_row(p, keys_per_split, /*splits_per_block=*/1, skip_query_len, row)) return;
  const int hd = p.head_dim;
  const int chunks = hd / 8;  // a power of two (validated)
  const int t = row.t, kvh = row.kvh, group = row.group;
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
  __syncthreads();  // queries visible

  for (int tile = row.begin; tile < row.end; tile += kTile) {
    const int count = min(kTile, row.end - tile);
    // Values global -> shared in the background while the scores are computed.
    for (int i = threadIdx.x; i < kTile * chunks; i += kTile) {
      const int r = i / chunks, ch = i % chunks;
      const bool valid = r < count;
      const int64_t slot = valid ? slot_of(row.table, p.block_size, tile + r) : 0;
      cp_async16(v_s + r * hd + swizzle(r, ch, chunks) * 8, v_head + slot * kv_stride + ch * 8,
                 valid);
    }
    cp_async_commit();

    // Scores: thread j reads key row j straight from global memory (16-byte loads, 4 in flight).
    float s[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) s[g] = 0.0f;
    if (threadIdx.x < count) {
      const bf16* k_row = k_head + slot_of(row.table, p.block_size, tile + threadIdx.x) * kv_stride;
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
    write_split_result(p, row, num_splits, kvh * group + g, d, o, m_s[g], l_s[g]);
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
// 16-byte chunks XOR-swizzled by the row so ldmatrix reads hit distinct banks: 36-40 KB of shared
// memory, five or six blocks an SM. (K and V side by side, 72 KB and three blocks an SM, were 2-5%
// slower at every decode shape measured on an H200: batch 1 x 7500 5.37 ms against 5.12; again
// slower after the copies got cheap: 32 x 2048 7.12-7.16 ms against 6.92-6.98.) A warp copies the
// rows of its own keys, so its values start loading right after its own S, with no block barrier.

template <int HD>
struct SplitKvTcSmem {
  bf16 kv[kTile][HD];               // the tile's keys, then its values: swizzled chunks
  bf16 p[kMaxGroup][kTile + kPad];  // probabilities (heads past the group stay 0)
  bf16 q[kMaxGroup][HD + kPad];     // queries (heads past the group are 0)
  float m[kMaxGroup], l[kMaxGroup], alpha[kMaxGroup];
  float s[kMaxGroup][kTile];  // scaled scores; last, so a launch that keeps them over q omits it
};

// Whether a group's scores fit where the queries were (dead once in registers): the block then
// needs 36.3 KB instead of 40.3 KB at head_dim 128 and group 4 (Llama-3-8B), and six blocks fit an
// SM instead of five.
template <int HD>
constexpr bool scores_over_queries(int group) {
  return size_t(group) * kTile * sizeof(float) <= sizeof(bf16) * kMaxGroup * (HD + kPad);
}
template <int HD>
constexpr size_t split_kv_tc_smem_bytes(int group) {
  return scores_over_queries<HD>(group) ? offsetof(SplitKvTcSmem<HD>, s)
                                        : sizeof(SplitKvTcSmem<HD>);
}

template <int HD>
__device__ __forceinline__ const bf16* tc_row_chunk(const bf16 (*rows)[HD], int row, int dim) {
  return &rows[row][((dim / 8) ^ (row & 7)) * 8];
}

// kLevels: 1 for blocks of one split (a node is a split), else the fold of a block's splits into
// its node keeps up to kLevels waiting subtrees (blocks of up to 2^(kLevels - 1) splits) in
// registers, which four blocks an SM leave room for (at six, the registers' budget, it spilled).
template <int HD, int kLevels>
__global__ void __launch_bounds__(kTile, kLevels == 1 ? 6 : 4)
    split_kv_tc_kernel(PagedAttentionParams p, int num_splits, int keys_per_split,
                       int splits_per_block, int skip_query_len) {
  wait_for_previous_kernel();
  constexpr int kChunks = HD / 8, kKc = HD / 16, kDimTiles = HD / 16 / 4;  // per warp
  extern __shared__ __align__(128) unsigned char smem_raw[];
  SplitKvTcSmem<HD>& sm = *reinterpret_cast<SplitKvTcSmem<HD>*>(smem_raw);
  SplitKvRow row;
  if (!split_kv_row(p, keys_per_split, splits_per_block, skip_query_len, row)) return;
  const int first_split = row.split;
  const int end_split = min(num_splits, first_split + splits_per_block);
  const int t = row.t, kvh = row.kvh, group = row.group;
  const int64_t kv_stride = int64_t(p.num_kv_heads) * HD;
  const bf16* k_head = p.k_cache + int64_t(kvh) * HD;
  const bf16* v_head = p.v_cache + int64_t(kvh) * HD;
  // over the queries once they are in registers (the first tile's barrier comes after)
  float(*scores)[kTile] =
      scores_over_queries<HD>(group) ? reinterpret_cast<float(*)[kTile]>(&sm.q[0][0]) : sm.s;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int lm = lane / 8, lr = lane % 8;  // ldmatrix: which 8x8 matrix, which of its rows
  // Warp w moves the cache rows of its own 32 keys [32w, 32w + 32) of a tile, the ones its S
  // reads, so its keys need no block barrier and its values start loading as soon as its own S
  // is done. Lane (sub, ch) moves 16-byte chunk ch of rows 32w + sub, 32w + sub + kRowStep, ...;
  // the slot of key 32w + j is lane j's, looked up once for keys and values.
  constexpr int kRowStep = 32 / kChunks, kPasses = kChunks;
  const int sub = lane / kChunks, ch = lane % kChunks;
  auto own_slot = [&](int tile) {
    return visible_slot(p, row.table, tile + int(threadIdx.x), row.end);
  };
  int32_t my_slot = own_slot(row.begin);  // its table read overlaps the context length's
  // Starts copying keys (or values) of this warp's rows into `dst`: one group.
  auto load_rows = [&](const bf16* src, bf16(*dst)[HD]) {
#pragma unroll
    for (int pass = 0; pass < kPasses; ++pass) {
      const int j = sub + pass * kRowStep, r = warp * 32 + j;
      const int32_t slot = __shfl_sync(0xffffffffu, my_slot, j);
      cp_async16(&dst[r][(ch ^ (j & 7)) * 8], src + int64_t(max(slot, 0)) * kv_stride + ch * 8,
                 slot >= 0);
    }
    cp_async_commit();
  };
  // The first tile's keys are on their way while the queries load.
  if (row.begin < row.end) load_rows(k_head, sm.kv);

  // 16-byte moves (the launcher checked the alignment); heads past the group are zeros.
  for (int i = threadIdx.x; i < kMaxGroup * kChunks; i += kTile) {
    const int h = i / kChunks, c8 = (i % kChunks) * 8;
    *reinterpret_cast<uint4*>(&sm.q[h][c8]) =
        h < group ? *reinterpret_cast<const uint4*>(p.q + int64_t(t) * p.q_stride +
                                                    int64_t(kvh * group + h) * HD + c8)
                  : make_uint4(0, 0, 0, 0);
  }
  static_assert(sizeof(sm.p) % 16 == 0 && offsetof(SplitKvTcSmem<HD>, p) % 16 == 0);
  for (int i = threadIdx.x; i < int(sizeof(sm.p) / 16); i += kTile) {
    reinterpret_cast<uint4*>(&sm.p[0][0])[i] = make_uint4(0, 0, 0, 0);
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
  // Every warp holds its query fragments before any warp's scores overwrite sm.q (no block
  // barrier comes between a warp's keys landing and its scores).
  __syncthreads();
  // The block's splits one after another, each from a fresh softmax state (exactly what a block
  // per split computes), folded along the split tree into the block's node: o for heads 2c and
  // 2c + 1 in fold[0] and fold[1].
  TreeFold<2 * kDimTiles, kLevels> fold[2];
  for (;;) {
    float o[kDimTiles][4];  // O^T: (dim g, heads 2c, 2c+1), (dim g + 8, heads 2c, 2c+1)
#pragma unroll
    for (int mt = 0; mt < kDimTiles; ++mt) o[mt][0] = o[mt][1] = o[mt][2] = o[mt][3] = 0.0f;

    for (int tile = row.begin; tile < row.end; tile += kTile) {
      const int count = min(kTile, row.end - tile);
      if (tile != row.begin || row.split != first_split) {
        my_slot = own_slot(tile);
        load_rows(k_head, sm.kv);
      }
      cp_async_wait<0>();
      __syncwarp();  // this warp's keys landed

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
        if (2 * c < group) {  // heads past the group score 0 and are never read
          scores[2 * c][key0 + g] = acc[0] * p.scale;
          scores[2 * c][key0 + g + 8] = acc[2] * p.scale;
        }
        if (2 * c + 1 < group) {
          scores[2 * c + 1][key0 + g] = acc[1] * p.scale;
          scores[2 * c + 1][key0 + g + 8] = acc[3] * p.scale;
        }
      }
      __syncwarp();  // this warp is done with its keys: its values arrive during the softmax
      load_rows(v_head, sm.kv);
      __syncthreads();  // scores visible
      // Online softmax: warp w updates heads w, w + 4, ...; keys past `count` get probability 0.
      for (int h = warp; h < group; h += kTile / 32) {
        float mx = -INFINITY;
        for (int j = lane; j < count; j += 32) mx = fmaxf(mx, scores[h][j]);
        mx = warp_max(mx);
        const float m_new = fmaxf(sm.m[h], mx);  // finite: the tile holds at least one key
        float sum = 0.0f;
        for (int j = lane; j < kTile; j += 32) {
          const float e = j < count ? __expf(scores[h][j] - m_new) : 0.0f;
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
            ldmatrix_x4_trans(
                a, tc_row_chunk<HD>(sm.kv, key0 + (lm / 2) * 8 + lr, dim0 + (lm % 2) * 8));
            mma_bf16(o[mt], a, b[2 * half], b[2 * half + 1]);
          }
        }
      }
      __syncthreads();  // the next tile overwrites k, v, s and p
    }

    if constexpr (kLevels == 1) {  // the split is the node
#pragma unroll
      for (int mt = 0; mt < kDimTiles; ++mt) {
        const int dim0 = (warp * kDimTiles + mt) * 16;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int h = 2 * c + (i % 2), d = dim0 + g + (i / 2) * 8;
          if (h < group)
            write_split_result(p, row, num_splits, kvh * group + h, d, o[mt][i], sm.m[h], sm.l[h]);
        }
      }
    } else {
      float head_o[2][2 * kDimTiles];  // o[mt][i] is head 2c + i % 2's
#pragma unroll
      for (int mt = 0; mt < kDimTiles; ++mt) {
#pragma unroll
        for (int i = 0; i < 4; ++i) head_o[i % 2][2 * mt + i / 2] = o[mt][i];
      }
      fold[0].push(head_o[0], sm.m[2 * c], sm.l[2 * c]);
      fold[1].push(head_o[1], sm.m[2 * c + 1], sm.l[2 * c + 1]);
    }
    if (row.split + 1 >= end_split) break;
    row.go_to_split(row.split + 1, keys_per_split);
    __syncthreads();  // every thread has read the finished split's m and l
    if (threadIdx.x < kMaxGroup) {
      sm.m[threadIdx.x] = -INFINITY;
      sm.l[threadIdx.x] = 0.0f;
      sm.alpha[threadIdx.x] = 1.0f;
    }
  }
  if constexpr (kLevels > 1) {
    float root_o[2][2 * kDimTiles], root_m[2], root_l[2];
    fold[0].root(root_o[0], root_m[0], root_l[0]);
    fold[1].root(root_o[1], root_m[1], root_l[1]);
    row.split = blockIdx.z;  // the node's index among the launch's gridDim.z
#pragma unroll
    for (int mt = 0; mt < kDimTiles; ++mt) {
      const int dim0 = (warp * kDimTiles + mt) * 16;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int h = 2 * c + (i % 2), d = dim0 + g + (i / 2) * 8;
        if (h < group) {
          write_split_result(p, row, int(gridDim.z), kvh * group + h, d,
                             root_o[i % 2][2 * mt + i / 2], root_m[i % 2], root_l[i % 2]);
        }
      }
    }
  }
}

// Blocks of split_kv_tc_kernel with `smem` bytes the current GPU holds at once (SMs x blocks an
// SM), or 0 if CUDA cannot say; asked once per device and size.
template <int HD>
int resident_split_kv_tc_blocks(size_t smem) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices][2] = {};  // by device, smem == the full struct
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0) return 0;
  const int variant = smem == sizeof(SplitKvTcSmem<HD>) ? 1 : 0;
  if (device < kMaxDevices) {
    if (const int known = cached[device][variant].load(std::memory_order_relaxed)) return known;
  }
  int sms = 0, per_sm = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, split_kv_tc_kernel<HD, 1>, kTile,
                                                    smem) != cudaSuccess) {
    return 0;
  }
  const int resident = sms * per_sm;
  if (device < kMaxDevices) cached[device][variant].store(resident, std::memory_order_relaxed);
  return resident;
}

constexpr int kMaxSplitsPerBlock = 4;  // split_kv_tc_kernel<HD, 3>'s fold

// Splits a split-KV block walks when the params do not say:
// one while one-split blocks fit on the GPU at once (a lone sequence needs every block it can get:
// 4 splits a block made 1 x 7500 2.3% and 1 x 1024 6.5% slower on an H200), else 4, which leaves a
// quarter of the nodes to write and merge (4 x 7500 3.7%, 16 x 2048 2.2%, 32 x 2048 1.7%,
// 64 x 2048 2.3% faster than one split a block; 2 a block gained less). A row's bits do not
// depend on it, only the time does.
int auto_splits_per_block(int64_t row_heads, int splits, int resident) {
  if (splits <= 1 || resident <= 0 || row_heads * splits <= resident) return 1;
  return kMaxSplitsPerBlock;
}

}  // namespace

cudaError_t launch_split_kv(const PagedAttentionParams& p, cudaStream_t stream, int skip_query_len,
                            SplitKvCombine combine) {
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
  int nodes = splits;  // what the split-KV blocks leave for the merge
  if (p.head_dim == 64 || p.head_dim == 128) {
    const cudaError_t e =
        dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
          constexpr int HD = decltype(hd)::value;
          const size_t smem = split_kv_tc_smem_bytes<HD>(p.num_heads / p.num_kv_heads);
          int per_block = p.split_kv_splits_per_block;
          if (per_block <= 0) {
            per_block = auto_splits_per_block(int64_t(p.num_tokens) * p.num_kv_heads, splits,
                                              resident_split_kv_tc_blocks<HD>(smem));
          }
          per_block = std::min(per_block, kMaxSplitsPerBlock);
          while (per_block & (per_block - 1)) per_block &= per_block - 1;  // a power of two
          nodes = (splits + per_block - 1) / per_block;
          const dim3 grid(unsigned(p.num_tokens), unsigned(p.num_kv_heads), unsigned(nodes));
          auto launch = [&](auto kernel) {
            const cudaError_t set =
                cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(sizeof(SplitKvTcSmem<HD>)));
            if (set != cudaSuccess) return set;
            return launch_kernel(kernel, grid, kTile, smem, stream, p, splits, keys_per_split,
                                 per_block, skip_query_len);
          };
          return per_block == 1 ? launch(split_kv_tc_kernel<HD, 1>)
                                : launch(split_kv_tc_kernel<HD, 3>);
        });
    if (e != cudaSuccess) return e;
  } else {
    const dim3 grid(unsigned(p.num_tokens), unsigned(p.num_kv_heads), unsigned(splits));
    const size_t smem = split_kv_smem_bytes(p.head_dim);
    const cudaError_t set = cudaFuncSetAttribute(
        split_kv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (set != cudaSuccess) return set;
    const cudaError_t e = launch_kernel(split_kv_kernel, grid, kTile, smem, stream, p, splits,
                                        keys_per_split, skip_query_len);
    if (e != cudaSuccess) return e;
  }
  if (nodes == 1) return cudaSuccess;
  return launch_split_kv_merge(p, nodes, skip_query_len, combine, stream);
}

}  // namespace tandem::cuda::attention
