// The prefill attention kernel on Hopper's warpgroup MMA (head_dim 128; built for sm_90a only, see
// CMakeLists.txt) with its loads on cp.async: where the cache's shape rules out TMA, the fallback
// of flash_prefill_tma_wgmma.cu, which runs the same math in the same order. Grid (query tile of 128 rows of one sequence, q head) as flash_prefill.cu, two
// warpgroups of 64 query rows a block, 128-key tiles cp.async double-buffered through the block
// table into 128-byte-swizzled shared memory. Per tile and warpgroup: S (64 x 128) = Q K^T with
// both operands in shared memory (wgmma.mma_async m64n128k16, 8 steps over the head), the online
// softmax in registers (the causal mask only on diagonal tiles), then O (64 x 128) += P V with P
// from registers as bf16 (the accumulator's layout is the A fragment's) and V read transposed.
// One block an SM (160 KB of shared memory); a warp's rows are 16 rows of its warpgroup's 64.
// A 7500-token Llama-3.1-8B layer: 1.24-1.26 ms (~370 TFLOP/s) on an H200, against 1.84-1.86
// on mma.sync. The kernel is bound by instruction issue (two warps a scheduler, one instruction
// every ~5.8 cycles a warp), so its time follows its instruction count. Tried and no faster:
// FlashAttention-3's ping-pong of the two warpgroups' GEMMs through a named barrier (1.63 ms;
// 229 registers against 192), skipping the O rescale when alpha is 1, three stages with the
// next tile's S issued before this tile's softmax (1.52 against 1.53 ms before the slot change).
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tandem::cuda::attention {
namespace {

constexpr int kHd = 128;
constexpr int kBq = 128;  // query rows per block: two warpgroups of 64
constexpr int kBk = 128;  // keys per tile
constexpr int kThreads = 256;
constexpr uint32_t kTileBytes = 128 * 128 * 2;  // a 128 x 128 bf16 tile: 32 KB
constexpr uint32_t kBlockBytes = 128 * 128;     // one 64-column block of such a tile: 16 KB

// Shared memory, 1024-byte aligned: q, then (stage) k, v; each tile is two 64-column blocks.
constexpr uint32_t kQ = 0, kK = kTileBytes, kV = 3 * kTileBytes;
constexpr size_t kSmemBytes = 5 * kTileBytes + 1024;  // + alignment slack

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Starts copying keys and values [key0, key0 + 128) of head kvh into stage `stage`; keys at or
// past `limit` become zeros. Thread (sub, ch) of warp w moves 16-byte chunk ch of rows
// 2w + sub + 16 i (i < 8); the warp's 16 rows' slots are looked up once, one a lane, and shuffled
// (a table read and 64-bit math per row and thread cost ~10% of the kernel's instructions).
__device__ __forceinline__ void load_kv(const PagedAttentionParams& p, const int32_t* table,
                                        int kvh, int key0, int limit, unsigned char* smem,
                                        int stage) {
  const int64_t kv_stride = int64_t(p.num_kv_heads) * kHd;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int ch = lane % 16, sub = lane / 16;
  const int32_t my_slot =
      visible_slot(p, table, key0 + 2 * warp + (lane & 1) + 16 * ((lane & 15) >> 1), limit);
  const bf16* k_head = p.k_cache + int64_t(kvh) * kHd + ch * 8;
  const bf16* v_head = p.v_cache + int64_t(kvh) * kHd + ch * 8;
  const uint32_t block = uint32_t(ch / 8) * kBlockBytes;
#pragma unroll
  for (int i = 0; i < kBk / 16; ++i) {
    const int r = 2 * warp + sub + 16 * i;
    const int32_t slot = __shfl_sync(0xffffffffu, my_slot, sub + 2 * i);
    const int64_t off = int64_t(max(slot, 0)) * kv_stride;
    const uint32_t dst = block + wgmma::swizzled(r, ch % 8);
    cp_async16(smem + kK + stage * kTileBytes + dst, k_head + off, slot >= 0);
    cp_async16(smem + kV + stage * kTileBytes + dst, v_head + off, slot >= 0);
  }
}
#endif

__global__ void __launch_bounds__(kThreads, 1)
    wgmma_prefill_kernel(PagedAttentionParams p, int tiles_per_seq, int min_query_len) {
  wait_for_previous_kernel();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  const uint32_t smem_addr = uint32_t(__cvta_generic_to_shared(smem));
  const int seq = blockIdx.x / tiles_per_seq;
  const int qtile = tiles_per_seq - 1 - int(blockIdx.x % tiles_per_seq);  // longest first
  const int head = blockIdx.y, kvh = head / (p.num_heads / p.num_kv_heads);
  const int q_begin = p.query_start[seq], q_len = p.query_start[seq + 1] - q_begin;
  const int row0 = qtile * kBq;
  if (row0 >= q_len || q_len < min_query_len) return;
  const int rows = min(kBq, q_len - row0);
  const int first_pos = p.context_lens[seq] - q_len + row0;
  const int key_limit = first_pos + rows;
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int wg = warp / 4;                     // warpgroup
  const int wrow = wg * 64 + (warp % 4) * 16;  // this warp's first row in the block's tile

  {  // queries: rows past `rows` are zeros
    const int ch = threadIdx.x % 16;
    const uint32_t block = uint32_t(ch / 8) * kBlockBytes;
    for (int r = threadIdx.x / 16; r < kBq; r += kThreads / 16) {
      const bool valid = r < rows;
      cp_async16(smem + kQ + block + wgmma::swizzled(r, ch % 8),
                 valid
                     ? p.q + int64_t(q_begin + row0 + r) * p.q_stride + int64_t(head) * kHd + ch * 8
                     : p.q,
                 valid);
    }
  }
  load_kv(p, table, kvh, 0, key_limit, smem, 0);
  cp_async_commit();

  // Positions of this lane's rows g and g + 8; padding rows mirror the last.
  const int pos0 = first_pos + min(wrow + g, rows - 1);
  const int pos1 = first_pos + min(wrow + g + 8, rows - 1);
  const int wg_first_pos = first_pos + min(wg * 64, rows - 1);
  const int wg_last_pos = first_pos + min(wg * 64 + 63, rows - 1);
  const float scale_log2 = p.scale * 1.4426950408889634f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // rows g, g + 8
  float o[64], s[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;

  const int num_tiles = (key_limit + kBk - 1) / kBk;
  for (int t = 0; t < num_tiles; ++t) {
    const int stage = t & 1, kt = t * kBk;
    if (t + 1 < num_tiles) {
      load_kv(p, table, kvh, kt + kBk, key_limit, smem, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    wgmma::fence_shared_for_async();
    __syncthreads();
    if (kt <= wg_last_pos) {  // else every key of the tile lies after this warpgroup's rows
      // S = Q K^T over the head's two 64-column blocks, 16 columns a step.
      const uint32_t q_addr = smem_addr + kQ + uint32_t(wg * 64) * 128;
      const uint32_t k_addr = smem_addr + kK + uint32_t(stage) * kTileBytes;
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kHd / 16; ++kk) {
        const uint32_t off = uint32_t(kk / 4) * kBlockBytes + uint32_t(kk % 4) * 32;
        wgmma::mma_ss(s, wgmma::descriptor(q_addr + off, 16, 1024),
                      wgmma::descriptor(k_addr + off, 16, 1024), kk > 0);
      }
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(s);

      if (kt + kBk - 1 > wg_first_pos) {  // a diagonal tile: mask keys after each row
#pragma unroll
        for (int n = 0; n < kBk / 8; ++n) {
          const int key = kt + n * 8 + 2 * c;
          if (key > pos0) s[4 * n] = -INFINITY;
          if (key + 1 > pos0) s[4 * n + 1] = -INFINITY;
          if (key > pos1) s[4 * n + 2] = -INFINITY;
          if (key + 1 > pos1) s[4 * n + 3] = -INFINITY;
        }
      }
      uint32_t pf[kBk / 16][4];  // P as A fragments, one per 16-key step
      float alpha[2];
      online_softmax_tile<kBk / 8>(s, scale_log2, row_max, row_sum, pf, alpha);
      const float alpha0 = alpha[0], alpha1 = alpha[1];
#pragma unroll
      for (int d = 0; d < kHd / 8; ++d) {
        o[4 * d] *= alpha0;
        o[4 * d + 1] *= alpha0;
        o[4 * d + 2] *= alpha1;
        o[4 * d + 3] *= alpha1;
      }
      // O += P V: V's rows are keys, its 64-column blocks kBlockBytes apart.
      const uint32_t v_addr = smem_addr + kV + uint32_t(stage) * kTileBytes;
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kBk / 16; ++kk) {
        wgmma::mma_rs(o, pf[kk],
                      wgmma::descriptor(v_addr + uint32_t(kk) * 16 * 128, kBlockBytes, 1024));
      }
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(o);
    }
    __syncthreads();  // this stage is refilled two tiles on
  }

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
#else
  __trap();  // built for sm_90a only
#endif
}

}  // namespace

cudaError_t launch_wgmma_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                                 int min_query_len) {
  if (p.head_dim != kHd) return cudaErrorNotSupported;
  const cudaError_t e = cudaFuncSetAttribute(
      wgmma_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmemBytes));
  if (e != cudaSuccess) return e;
  const int tiles = (p.max_query_len + kBq - 1) / kBq;
  const dim3 grid(unsigned(int64_t(p.num_seqs) * tiles), unsigned(p.num_heads));
  return launch_kernel(wgmma_prefill_kernel, grid, kThreads, kSmemBytes, stream, p, tiles,
                       min_query_len);
}

}  // namespace tandem::cuda::attention
