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
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/wgmma_flash_tile.cuh"

namespace tandem::cuda::attention {
namespace {

using namespace wgmma_flash;  // NOLINT: the tile shapes and steps both wgmma kernels share

constexpr int kThreads = 256;

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
  unsigned char* smem = aligned_shared_memory(smem_raw);
  const uint32_t smem_addr = uint32_t(__cvta_generic_to_shared(smem));
  QueryTile tile;
  if (!locate_query_tile(p, tiles_per_seq, min_query_len, tile)) return;
  const int seq = tile.seq, head = tile.head, kvh = tile.kvh, q_begin = tile.q_begin;
  const int row0 = tile.row0, rows = tile.rows, first_pos = tile.first_pos;
  const int key_limit = tile.key_limit;
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int wg = warp / 4;                     // warpgroup
  const int wrow = wg * 64 + (warp % 4) * 16;  // this warp's first row in the block's tile

  load_queries(p, smem + kQ, q_begin, row0, rows, head, threadIdx.x, 0, kBq, kThreads / 16);
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
      wgmma::fence();
      issue_qk(s, smem_addr + kQ + uint32_t(wg * 64) * 128,
               smem_addr + kK + uint32_t(stage) * kTileBytes);
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(s);
      // a diagonal tile: mask keys after each row
      if (kt + kBk - 1 > wg_first_pos) mask_after(s, kt, c, pos0, pos1);
      uint32_t pf[kBk / 16][4];  // P as A fragments, one per 16-key step
      float alpha[2];
      online_softmax_tile<kBk / 8>(s, scale_log2, row_max, row_sum, pf, alpha);
      rescale(o, alpha[0], alpha[1]);
      wgmma::fence();
      issue_pv(o, pf, smem_addr + kV + uint32_t(stage) * kTileBytes);
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(o);
    }
    __syncthreads();  // this stage is refilled two tiles on
  }
  write_output(p, o, row_sum, q_begin, row0, rows, head, wrow, g, c);
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
