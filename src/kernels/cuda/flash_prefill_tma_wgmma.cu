// The prefill attention kernel at head_dim 128 with its loads on TMA and its warps specialized
// (FlashAttention-3's plan): a producer warp copies each 128-key tile of K and V from the paged
// cache into shared memory, one TMA box per cache block and 64-column half, through a ring of
// three stages guarded by mbarriers; two consumer warpgroups of 64 query rows each run
// flash_prefill_wgmma.cu's math without a block-wide barrier between tiles. The loads cost the
// consumers no instructions, and a consumer overlaps its own work: it issues tile t's S = Q K^T
// and tile t-1's O += P V together, then runs tile t's softmax while they execute. The two
// warpgroups take turns issuing their MMAs (named barriers), so one's softmax runs while the
// other's MMAs keep the tensor cores busy. A 7500-token Llama-3.1-8B layer: 0.88-0.89 ms (~520
// TFLOP/s) on an H200, against 1.24-1.27 ms (~370) for flash_prefill_wgmma.cu in the same run.
// Needs the cache's slot count (the tensor maps' extent) and a block size that is a multiple of 8
// dividing 128 (a box is one block, 1024-byte aligned for the swizzle); launch_tma_prefill returns
// cudaErrorNotSupported otherwise and the caller takes the cp.async kernel.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tma.cuh"
#include "kernels/cuda/wgmma_flash_tile.cuh"

namespace tandem::cuda::attention {
namespace {

using namespace wgmma_flash;  // NOLINT: the tile shapes and steps both wgmma kernels share

constexpr int kStages = 3;
constexpr int kConsumers = 256;
// Warpgroup 0 produces (one warp asks for the tiles, on few registers), 1 and 2 consume on many:
// setmaxnreg moves registers between them (a block of 384 threads starts with 168 each).
constexpr int kThreads = 128 + kConsumers;
constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;

// Shared memory, 1024-byte aligned: q, the stages' k tiles, their v tiles, then the barriers: a
// "full" barrier per stage for K and for V (the producer's arrival plus the TMA bytes) and an
// "empty" one (every consumer thread, once done with the stage's K and V).
constexpr uint32_t kQ = 0, kK = kTileBytes, kV = kK + kStages * kTileBytes;
constexpr uint32_t kBarriers = kV + kStages * kTileBytes;
constexpr size_t kSmemBytes = kBarriers + 3 * kStages * 8 + 1024;  // + alignment slack
// Named barriers: 1 and 2 order the warpgroups' MMA issue, 3 and 4 each warpgroup's query load.
constexpr uint32_t kTurnBarrier = 1, kQueryBarrier = 3;

__global__ void __launch_bounds__(kThreads, 1)
    tma_prefill_kernel(const __grid_constant__ CUtensorMap k_map,
                       const __grid_constant__ CUtensorMap v_map, PagedAttentionParams p,
                       int tiles_per_seq, int min_query_len) {
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
  const int num_tiles = (key_limit + kBk - 1) / kBk;
  // The warp index through a shuffle, so the compiler knows it is the same in every lane (else the
  // warpgroup branches below look divergent and it serializes the MMAs).
  const int warp = __shfl_sync(0xffffffffu, int(threadIdx.x / 32), 0), lane = threadIdx.x % 32;
  auto full_k = [&](int stage) { return smem_addr + kBarriers + 8 * uint32_t(stage); };
  auto full_v = [&](int stage) { return smem_addr + kBarriers + 8 * uint32_t(kStages + stage); };
  auto empty = [&](int stage) { return smem_addr + kBarriers + 8 * uint32_t(2 * kStages + stage); };
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      tma::init_barrier(full_k(s), 1);
      tma::init_barrier(full_v(s), 1);
      tma::init_barrier(empty(s), kConsumers);
    }
    tma::fence_barrier_init();
  }
  __syncthreads();

  if (warp < 4) {  // the producer warpgroup: lane b of warp 0 asks for block b of each tile
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
    if (warp != 0) return;
    const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
    const int blocks_per_tile = kBk / p.block_size;
    if (lane == 0) {
      tma::prefetch_map(&k_map);
      tma::prefetch_map(&v_map);
    }
    for (int t = 0; t < num_tiles; ++t) {
      const int stage = t % kStages;
      // Blocks past the visible keys (or the table) read rows past the cache: zeros.
      int row = int(p.num_cache_slots);
      const int block = t * (kBk / p.block_size) + lane;
      if (lane < blocks_per_tile && block * p.block_size < key_limit &&
          block < p.max_blocks_per_seq) {
        row = table[block] * p.block_size;
      }
      if (t >= kStages) tma::wait(empty(stage), uint32_t(t / kStages - 1) & 1);
      if (lane == 0) {
        tma::arrive_expect_bytes(full_k(stage), kTileBytes);
        tma::arrive_expect_bytes(full_v(stage), kTileBytes);
      }
      __syncwarp();
      if (lane < blocks_per_tile) {
        const uint32_t off = uint32_t(lane * p.block_size) * 128;
        const uint32_t k_dst = smem_addr + kK + uint32_t(stage) * kTileBytes + off;
        const uint32_t v_dst = smem_addr + kV + uint32_t(stage) * kTileBytes + off;
        tma::load_2d(k_dst, &k_map, kvh * kHd, row, full_k(stage));
        tma::load_2d(k_dst + kBlockBytes, &k_map, kvh * kHd + 64, row, full_k(stage));
        tma::load_2d(v_dst, &v_map, kvh * kHd, row, full_v(stage));
        tma::load_2d(v_dst + kBlockBytes, &v_map, kvh * kHd + 64, row, full_v(stage));
      }
    }
    return;
  }

  // A consumer: warpgroup wg (1 + wg of the block) holds rows [64 wg, 64 wg + 64) of the query
  // tile.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
  const int g = lane / 4, c = lane % 4;
  const int wg = warp / 4 - 1;
  const int wrow = wg * 64 + (warp % 4) * 16;  // this warp's first row in the block's tile
  {  // this warpgroup's queries
    load_queries(p, smem + kQ, q_begin, row0, rows, head, threadIdx.x % 128, wg * 64, wg * 64 + 64,
                 8);
    cp_async_commit();
    cp_async_wait<0>();
    wgmma::fence_shared_for_async();
    tma::named_sync(kQueryBarrier + wg, 128);
  }
  // Turns: warpgroup 0 issues first; each then lets the other go once its MMAs are issued.
  const uint32_t my_turn = kTurnBarrier + wg, other_turn = kTurnBarrier + (1 - wg);
  if (wg == 1) tma::named_arrive(other_turn, kConsumers);

  // Positions of this lane's rows g and g + 8; padding rows mirror the last.
  const int pos0 = first_pos + min(wrow + g, rows - 1);
  const int pos1 = first_pos + min(wrow + g + 8, rows - 1);
  const int wg_first_pos = first_pos + min(wg * 64, rows - 1);
  const float scale_log2 = p.scale * 1.4426950408889634f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // rows g, g + 8
  float o[64], s[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  uint32_t pf[kBk / 16][4];  // the previous tile's P as A fragments, one per 16-key step
  float alpha[2];            // what O is to be rescaled by before that P V

  const uint32_t q_addr = smem_addr + kQ + uint32_t(wg * 64) * 128;
  auto k_tile = [&](int stage) { return smem_addr + kK + uint32_t(stage) * kTileBytes; };
  auto v_tile = [&](int stage) { return smem_addr + kV + uint32_t(stage) * kTileBytes; };
  // Masks and exponentiates S in place; P is packed into pf only once the P V MMA reading the
  // previous tile's pf has finished (writing an MMA's register operands while MMAs run makes the
  // compiler serialize them).
  auto softmax = [&](int kt) {
    if (kt + kBk - 1 > wg_first_pos) mask_after(s, kt, c, pos0, pos1);  // a diagonal tile
    online_softmax_in_place<kBk / 8>(s, scale_log2, row_max, row_sum, alpha);
  };

  // Both warpgroups walk every tile (a tile past all of a warpgroup's rows is fully masked, and
  // equal walks keep the turns paired).
  tma::wait(full_k(0), 0);
  tma::named_sync(my_turn, kConsumers);
  wgmma::fence();
  issue_qk(s, q_addr, k_tile(0));
  wgmma::commit();
  tma::named_arrive(other_turn, kConsumers);
  wgmma::wait<0>();
  wgmma::fence_operands(s);
  softmax(0);
  pack_probabilities<kBk / 8>(s, pf);
  for (int t = 1; t < num_tiles; ++t) {
    const int stage = t % kStages, prev = (t - 1) % kStages;
    tma::wait(full_k(stage), uint32_t(t / kStages) & 1);
    // O is rescaled before any MMA is issued (no MMA is writing it: the last P V has finished):
    // between the two MMAs it would need a compiler-inserted fence, ~2% slower on an H200.
    rescale(o, alpha[0], alpha[1]);
    wgmma::fence_operands(o);
    tma::wait(full_v(prev), uint32_t((t - 1) / kStages) & 1);
    tma::named_sync(my_turn, kConsumers);
    wgmma::fence();
    issue_qk(s, q_addr, k_tile(stage));
    wgmma::commit();
    issue_pv(o, pf, v_tile(prev));
    wgmma::commit();
    tma::named_arrive(other_turn, kConsumers);
    wgmma::wait<1>();  // S is ready; P V may still run
    wgmma::fence_operands(s);
    softmax(t * kBk);
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    tma::arrive(empty(prev));
    pack_probabilities<kBk / 8>(s, pf);
  }
  {  // the last tile's P V
    const int last = num_tiles - 1, stage = last % kStages;
    rescale(o, alpha[0], alpha[1]);
    tma::wait(full_v(stage), uint32_t(last / kStages) & 1);
    tma::named_sync(my_turn, kConsumers);
    wgmma::fence();
    issue_pv(o, pf, v_tile(stage));
    wgmma::commit();
    if (wg == 0) tma::named_arrive(other_turn, kConsumers);  // warpgroup 1 issues last
    wgmma::wait<0>();
    wgmma::fence_operands(o);
  }

  write_output(p, o, row_sum, q_begin, row0, rows, head, wrow, g, c);
#else
  __trap();  // built for sm_90a only
#endif
}

}  // namespace

cudaError_t launch_tma_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                               int min_query_len) {
  if (p.head_dim != kHd || p.num_cache_slots <= 0 || p.num_cache_slots >= (int64_t(1) << 31) ||
      p.block_size % 8 != 0 || kBk % p.block_size != 0) {
    return cudaErrorNotSupported;
  }
  const uint64_t row_elems = uint64_t(p.num_kv_heads) * kHd;
  CUtensorMap k_map, v_map;
  cudaError_t e = tma::encode_bf16_rows(&k_map, p.k_cache, uint64_t(p.num_cache_slots), row_elems,
                                        row_elems, uint32_t(p.block_size));
  if (e != cudaSuccess) return e;
  e = tma::encode_bf16_rows(&v_map, p.v_cache, uint64_t(p.num_cache_slots), row_elems, row_elems,
                            uint32_t(p.block_size));
  if (e != cudaSuccess) return e;
  e = cudaFuncSetAttribute(tma_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           int(kSmemBytes));
  if (e != cudaSuccess) return e;
  const int tiles = (p.max_query_len + kBq - 1) / kBq;
  const dim3 grid(unsigned(int64_t(p.num_seqs) * tiles), unsigned(p.num_heads));
  return launch_kernel(tma_prefill_kernel, grid, kThreads, kSmemBytes, stream, k_map, v_map, p,
                       tiles, min_query_len);
}

}  // namespace tandem::cuda::attention
