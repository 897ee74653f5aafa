// The flash-attention-2 style prefill kernel on tensor cores (head_dim 64 and 128): grid (query
// tile of 128 rows of one sequence, q head); each of 4 warps owns 32 query rows; per 64-key tile
// (cp.async double-buffered through the block table), S = Q K^T with mma.sync in registers, an
// online softmax (the causal mask only on diagonal tiles), and O = O * alpha + P V accumulated in
// registers. Sequences with fewer new tokens than the launch's minimum are left to split-KV.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/launch.cuh"

namespace tandem::cuda::attention {
namespace {

// mma.sync with ldmatrix loads (fragment layouts: attention_common.cuh).
// S = Q K^T stays in registers, becomes P (bf16 A fragments) in place, and O accumulates in
// registers; K/V tiles stream through a two-stage cp.async pipeline. Each warp owns 32 query rows
// (two mma row tiles), so every K and V fragment read from shared memory serves two mma.

constexpr int kBq = 128;  // query rows per block
constexpr int kBk = 64;   // keys per tile
// 16-row mma tiles per warp: each K/V fragment read from shared memory feeds two mma. (One tile
// a warp, 8 warps, measured 1.86 ms against 1.76 for the 7500-token prefill on an H200.)
constexpr int kRowTiles = 2;
constexpr int kWarps = kBq / (16 * kRowTiles);

template <int HD>
struct FlashSmem {
  static constexpr int kLd = HD + kPad;
  bf16 q[kBq][kLd];     // (128 rows, hd) this block's queries
  bf16 k[2][kBk][kLd];  // (stage, 64 keys, hd)
  bf16 v[2][kBk][kLd];  // (stage, 64 keys, hd)
};

// Starts copying keys and values [row0, row0 + 64) of head kvh into `stage`; rows at or past
// `limit` become zeros. Lane (sub, chunk) of warp w moves its chunk of rows w R + sub + pass
// kWarps R (R = 32 / chunks a row); the warp's 16 rows' slots are looked up once, one a lane, and
// shuffled (a table read and 64-bit math per row and thread were ~20% of the wgmma kernel's
// instructions, see flash_prefill_wgmma.cu).
template <int HD>
__device__ void load_kv_tile(const PagedAttentionParams& p, const int32_t* table, int kvh, int row0,
                             int limit, FlashSmem<HD>& sm, int stage) {
  constexpr int kChunks = HD / 8, kRows = 32 / kChunks, kPasses = kBk / (kWarps * kRows);
  static_assert(kRows * kPasses <= 32, "a warp's rows fit its lanes");
  const int64_t kv_stride = int64_t(p.num_kv_heads) * HD;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int c = (lane % kChunks) * 8, sub = lane / kChunks;
  const int j = lane % (kRows * kPasses);  // the row this lane looks up: (j % kRows, j / kRows)
  const int32_t my_slot =
      visible_slot(p, table, row0 + warp * kRows + j % kRows + (j / kRows) * kWarps * kRows, limit);
  const bf16* k_head = p.k_cache + int64_t(kvh) * HD + c;
  const bf16* v_head = p.v_cache + int64_t(kvh) * HD + c;
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int r = warp * kRows + sub + pass * kWarps * kRows;
    const int32_t slot = __shfl_sync(0xffffffffu, my_slot, sub + pass * kRows);
    const int64_t off = int64_t(max(slot, 0)) * kv_stride;
    cp_async16(&sm.k[stage][r][c], k_head + off, slot >= 0);
    cp_async16(&sm.v[stage][r][c], v_head + off, slot >= 0);
  }
}

// Sequences with fewer than `min_query_len` new tokens are left to the split-KV kernel.
// Two blocks per SM (8 warps), up to 255 registers a thread: O (32 rows x hd) lives in registers;
// Q fragments are re-read from shared memory per tile.
template <int HD>
__global__ void __launch_bounds__(kWarps * 32, 2)
    tensor_core_kernel(PagedAttentionParams p, int tiles_per_seq, int min_query_len) {
  wait_for_previous_kernel();
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

    // Online softmax (attention_common.cuh), then O rescaled.
    uint32_t pf[kRowTiles][kNt / 2][4];  // P as A fragments, one per 16-key chunk
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
      float alpha[2];
      online_softmax_tile<kNt>(&s[mt][0][0], scale_log2, row_max[mt], row_sum[mt], pf[mt], alpha);
      const float alpha0 = alpha[0], alpha1 = alpha[1];
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

}  // namespace

cudaError_t launch_flash_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                                 int min_query_len, FlashKernel kernel) {
  if (p.head_dim == 128 && kernel == FlashKernel::kBest) {
    const cudaError_t e = launch_tma_prefill(p, stream, min_query_len);
    if (e != cudaErrorNotSupported) return e;
  }
  if (p.head_dim == 128 && kernel != FlashKernel::kMmaSync) {
    return launch_wgmma_prefill(p, stream, min_query_len);
  }
  return dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
    constexpr int HD = decltype(hd)::value;
    const size_t smem = sizeof(FlashSmem<HD>);
    cudaError_t e = cudaFuncSetAttribute(tensor_core_kernel<HD>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    const int tiles = (p.max_query_len + kBq - 1) / kBq;
    const dim3 grid(unsigned(int64_t(p.num_seqs) * tiles), unsigned(p.num_heads));
    return launch_kernel(tensor_core_kernel<HD>, grid, kWarps * 32, smem, stream, p, tiles,
                         min_query_len);
  });
}

}  // namespace tandem::cuda::attention
