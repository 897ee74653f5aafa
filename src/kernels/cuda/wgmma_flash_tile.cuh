// What the two head_dim-128 flash prefill kernels on wgmma (flash_prefill_wgmma.cu with cp.async
// loads, flash_prefill_tma_wgmma.cu with TMA loads) share, so that they compute the same bits: the
// shared-memory tile layout, the query load, the two MMAs of a key tile, the causal mask, the
// rescale of O and the normalized output. A block holds a 128-row query tile of one sequence and
// one head; a warpgroup holds 64 of its rows, a warp 16. Internal to paged attention.
#pragma once
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tandem::cuda::attention::wgmma_flash {

constexpr int kHd = 128;
constexpr int kBq = 128;                        // query rows per block: two warpgroups of 64
constexpr int kBk = 128;                        // keys per tile
constexpr uint32_t kTileBytes = 128 * 128 * 2;  // a 128 x 128 bf16 tile: 32 KB
constexpr uint32_t kBlockBytes = 128 * 128;     // one 64-column half of such a tile: 16 KB

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Where a block's 128-row query tile lies.
struct QueryTile {
  int seq, head, kvh;
  int q_begin;    // the sequence's first query row in the batch
  int row0;       // the tile's first row within the sequence
  int rows;       // its rows (<= kBq)
  int first_pos;  // the position of its first row
  int key_limit;  // keys [0, key_limit) are visible to some row of it
};

// The tile of query tile `qtile` (0 = the sequence's first rows) of sequence `seq` and head
// `head`; false when it has no rows (past its sequence's, or a sequence with fewer than
// min_query_len new tokens, which split-KV takes).
__device__ __forceinline__ bool locate_query_tile_at(const PagedAttentionParams& p, int seq,
                                                     int qtile, int head, int min_query_len,
                                                     QueryTile& t) {
  t.seq = seq;
  t.head = head;
  t.kvh = t.head / (p.num_heads / p.num_kv_heads);
  t.q_begin = p.query_start[t.seq];
  const int q_len = p.query_start[t.seq + 1] - t.q_begin;
  t.row0 = qtile * kBq;
  if (t.row0 >= q_len || q_len < min_query_len) return false;
  t.rows = min(kBq, q_len - t.row0);
  t.first_pos = p.context_lens[t.seq] - q_len + t.row0;
  t.key_limit = t.first_pos + t.rows;
  return true;
}

// The block's tile in a grid of (sequence x query tile, head), a sequence's longest tiles first.
__device__ __forceinline__ bool locate_query_tile(const PagedAttentionParams& p, int tiles_per_seq,
                                                  int min_query_len, QueryTile& t) {
  const int qtile = tiles_per_seq - 1 - int(blockIdx.x % tiles_per_seq);
  return locate_query_tile_at(p, int(blockIdx.x) / tiles_per_seq, qtile, int(blockIdx.y),
                              min_query_len, t);
}

// The dynamic shared memory, aligned to 1024 bytes (the 128-byte swizzle's period).
__device__ __forceinline__ unsigned char* aligned_shared_memory(unsigned char* raw) {
  return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw) + 1023) &
                                          ~uintptr_t(1023));
}

// Starts copying query rows [first, end) (step `step`) of the block's tile into the 128-byte
// swizzled tile at q_tile, as `thread` of the loading threads (16 per row; rows past `rows`,
// the sequence's last, are zeros).
__device__ __forceinline__ void load_queries(const PagedAttentionParams& p, unsigned char* q_tile,
                                             int q_begin, int row0, int rows, int head, int thread,
                                             int first, int end, int step) {
  const int ch = thread % 16;
  const uint32_t block = uint32_t(ch / 8) * kBlockBytes;
  for (int r = first + thread / 16; r < end; r += step) {
    const bool valid = r < rows;
    cp_async16(
        q_tile + block + wgmma::swizzled(r, ch % 8),
        valid ? p.q + int64_t(q_begin + row0 + r) * p.q_stride + int64_t(head) * kHd + ch * 8 : p.q,
        valid);
  }
}

// Issues S (64 x 128) = Q K^T for a warpgroup: its 64 query rows at q_addr, a key tile at k_addr
// (shared-memory addresses), over the head's two 64-column halves; not committed.
__device__ __forceinline__ void issue_qk(float (&s)[64], uint32_t q_addr, uint32_t k_addr) {
#pragma unroll
  for (int kk = 0; kk < kHd / 16; ++kk) {
    const uint32_t off = uint32_t(kk / 4) * kBlockBytes + uint32_t(kk % 4) * 32;
    wgmma::mma_ss(s, wgmma::descriptor(q_addr + off, 16, 1024),
                  wgmma::descriptor(k_addr + off, 16, 1024), kk > 0);
  }
}

// Issues O (64 x 128) += P V with P as A fragments (one per 16 keys) and the value tile at v_addr
// (rows are keys, its 64-column halves kBlockBytes apart); not committed.
__device__ __forceinline__ void issue_pv(float (&o)[64], const uint32_t (&pf)[kBk / 16][4],
                                         uint32_t v_addr) {
#pragma unroll
  for (int kk = 0; kk < kBk / 16; ++kk) {
    wgmma::mma_rs(o, pf[kk],
                  wgmma::descriptor(v_addr + uint32_t(kk) * 16 * 128, kBlockBytes, 1024));
  }
}

// Sets to -inf the scores of keys after this lane's rows (positions pos0, pos1) in the key tile
// starting at key kt; c = lane % 4.
__device__ __forceinline__ void mask_after(float (&s)[64], int kt, int c, int pos0, int pos1) {
#pragma unroll
  for (int n = 0; n < kBk / 8; ++n) {
    const int key = kt + n * 8 + 2 * c;
    if (key > pos0) s[4 * n] = -INFINITY;
    if (key + 1 > pos0) s[4 * n + 1] = -INFINITY;
    if (key > pos1) s[4 * n + 2] = -INFINITY;
    if (key + 1 > pos1) s[4 * n + 3] = -INFINITY;
  }
}

__device__ __forceinline__ void rescale(float (&o)[64], float alpha0, float alpha1) {
#pragma unroll
  for (int d = 0; d < kHd / 8; ++d) {
    o[4 * d] *= alpha0;
    o[4 * d + 1] *= alpha0;
    o[4 * d + 2] *= alpha1;
    o[4 * d + 3] *= alpha1;
  }
}

// Writes O / the row sums for this lane's rows r0 = wrow + g and r0 + 8 of the block's tile (those
// below `rows`) to the output.
__device__ __forceinline__ void write_output(const PagedAttentionParams& p, const float (&o)[64],
                                             const float (&row_sum)[2], int q_begin, int row0,
                                             int rows, int head, int wrow, int g, int c) {
  float l0 = row_sum[0], l1 = row_sum[1];
#pragma unroll
  for (int o2 = 1; o2 <= 2; o2 <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, o2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, o2);
  }
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  const int r0 = wrow + g, r1 = r0 + 8;
#pragma unroll
  for (int d = 0; d < kHd / 8; ++d) {
    const int col = d * 8 + 2 * c;
    if (r0 < rows) {
      *reinterpret_cast<uint32_t*>(
          p.out + (int64_t(q_begin + row0 + r0) * p.num_heads + head) * kHd + col) =
          pack_bf16(o[4 * d] * inv0, o[4 * d + 1] * inv0);
    }
    if (r1 < rows) {
      *reinterpret_cast<uint32_t*>(
          p.out + (int64_t(q_begin + row0 + r1) * p.num_heads + head) * kHd + col) =
          pack_bf16(o[4 * d + 2] * inv1, o[4 * d + 3] * inv1);
    }
  }
}
#endif

}  // namespace tandem::cuda::attention::wgmma_flash
