// The prefill attention kernel at head_dim 128 with its loads on TMA and its warps specialized
// (FlashAttention-3's plan). A block per SM walks work items (a 128-row query tile of one sequence
// and head), the longest first. Its producer warp copies each item's queries and each 128-key tile
// of K and V from the paged cache into shared memory (one TMA box per cache block and 64-column
// half), into two query buffers and two-stage K and V rings guarded by mbarriers, and runs ahead
// across items. Two consumer warpgroups of 64 query rows each run flash_prefill_wgmma.cu's math
// without a block-wide barrier between tiles: a consumer issues tile t's S = Q K^T and tile t-1's
// O += P V together (an item's first S with the previous item's last P V), runs tile t's softmax
// while they execute, and writes a finished item's output while the tensor cores run. The two
// warpgroups take turns issuing their MMAs (named barriers), so one's softmax runs while the
// other's MMAs keep the tensor cores busy.
// A 7500-token Llama-3.1-8B layer: 0.77 ms (~595 TFLOP/s) on an H200; a block per query tile (no
// walk across items) took 0.87-0.88, flash_prefill_wgmma.cu 1.24-1.27. At 2048 tokens, 0.082 ms
// against 0.102: each block's start and end (query load, first S, last P V, output) no longer
// leave the tensor cores idle.
// Needs the cache's slot count (the tensor maps' extent), a block size that is a multiple of 8
// dividing 128 (a box is one block, 1024-byte aligned for the swizzle) and 16-byte aligned query
// rows; launch_tma_prefill returns cudaErrorNotSupported otherwise and the caller takes the
// cp.async kernel.
#include <algorithm>
#include <atomic>
#include <climits>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tma.cuh"
#include "kernels/cuda/wgmma_flash_tile.cuh"

namespace tandem::cuda::attention {
namespace {

using namespace wgmma_flash;  // NOLINT: the tile shapes and steps both wgmma kernels share

constexpr int kConsumers = 256;
// Warpgroup 0 produces (one warp asks for the tiles, on few registers), 1 and 2 consume on many:
// setmaxnreg moves registers between them (a block of 384 threads starts with 168 each).
constexpr int kThreads = 128 + kConsumers;
constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;

// Shared memory, 1024-byte aligned: the query buffers, the K stages, the V stages, then the
// barriers: a "full" one per buffer or stage (the producer's arrival plus the TMA bytes) and an
// "empty" one (every consumer thread: a query buffer once its item's last S has finished, a K
// stage once its S has, a V stage once its P V has). Three stages each measured no faster.
constexpr int kQBuffers = 2, kKStages = 2, kVStages = 2;
constexpr uint32_t kQ = 0, kK = kQBuffers * kTileBytes, kV = kK + kKStages * kTileBytes;
constexpr uint32_t kBarriers = kV + kVStages * kTileBytes;
constexpr size_t kSmemBytes = kBarriers + 8 * 2 * (kQBuffers + kKStages + kVStages) + 1024;
// Named barriers 1 and 2 order the warpgroups' MMA issue.
constexpr uint32_t kTurnBarrier = 1;

struct WorkItems {
  int total;          // items: query tiles x sequences x heads
  int tiles_per_seq;  // query tiles of the longest sequence
  int min_query_len;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The item block b (of G) takes in round r, or -1 past the end.
__device__ __forceinline__ int item_of_round(const WorkItems& w, int r) {
  const int G = int(gridDim.x), b = int(blockIdx.x);
  const int i = r * G + ((r & 1) ? G - 1 - b : b);
  return i < w.total ? i : -1;
}

// Item i: rank i / (sequences x heads) counts query tiles from each sequence's last (longest)
// one; within a rank, the heads sharing a KV head are neighbours.
__device__ __forceinline__ bool locate_item(const PagedAttentionParams& p, const WorkItems& w,
                                            int i, QueryTile& t) {
  const int per_rank = p.num_seqs * p.num_heads;
  const int rank = i / per_rank, rest = i % per_rank;
  return locate_query_tile_at(p, rest / p.num_heads, w.tiles_per_seq - 1 - rank, rest % p.num_heads,
                              w.min_query_len, t);
}
#endif

__global__ void __launch_bounds__(kThreads, 1)
    tma_prefill_kernel(const __grid_constant__ CUtensorMap q_map,
                       const __grid_constant__ CUtensorMap k_map,
                       const __grid_constant__ CUtensorMap v_map, PagedAttentionParams p,
                       WorkItems w) {
  wait_for_previous_kernel();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = aligned_shared_memory(smem_raw);
  const uint32_t smem_addr = uint32_t(__cvta_generic_to_shared(smem));
  const int warp = __shfl_sync(0xffffffffu, int(threadIdx.x / 32), 0), lane = threadIdx.x % 32;
  auto barrier = [&](int i) { return smem_addr + kBarriers + 8 * uint32_t(i); };
  auto full_q = [&](int b) { return barrier(b); };
  auto empty_q = [&](int b) { return barrier(kQBuffers + b); };
  auto full_k = [&](int s) { return barrier(2 * kQBuffers + s); };
  auto empty_k = [&](int s) { return barrier(2 * kQBuffers + kKStages + s); };
  auto full_v = [&](int s) { return barrier(2 * (kQBuffers + kKStages) + s); };
  auto empty_v = [&](int s) { return barrier(2 * (kQBuffers + kKStages) + kVStages + s); };
  auto q_tile = [&](int b) { return smem_addr + kQ + uint32_t(b) * kTileBytes; };
  auto k_tile = [&](int s) { return smem_addr + kK + uint32_t(s) * kTileBytes; };
  auto v_tile = [&](int s) { return smem_addr + kV + uint32_t(s) * kTileBytes; };
  if (threadIdx.x == 0) {
    for (int b = 0; b < kQBuffers; ++b) {
      tma::init_barrier(full_q(b), 1);
      tma::init_barrier(empty_q(b), kConsumers);
    }
    for (int s = 0; s < kKStages; ++s) {
      tma::init_barrier(full_k(s), 1);
      tma::init_barrier(empty_k(s), kConsumers);
    }
    for (int s = 0; s < kVStages; ++s) {
      tma::init_barrier(full_v(s), 1);
      tma::init_barrier(empty_v(s), kConsumers);
    }
    tma::fence_barrier_init();
  }
  __syncthreads();

  if (warp < 4) {  // the producer warpgroup: lane b of warp 0 asks for block b of each tile
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
    if (warp != 0) return;
    if (lane == 0) {
      tma::prefetch_map(&q_map);
      tma::prefetch_map(&k_map);
      tma::prefetch_map(&v_map);
    }
    const int blocks_per_tile = kBk / p.block_size;
    int items = 0, kt = 0, vt = 0;  // loaded so far
    for (int r = 0; r * int(gridDim.x) < w.total; ++r) {
      const int i = item_of_round(w, r);
      QueryTile tile;
      if (i < 0 || !locate_item(p, w, i, tile)) continue;
      const int qb = items % kQBuffers;
      if (items >= kQBuffers) tma::wait(empty_q(qb), uint32_t(items / kQBuffers - 1) & 1);
      if (lane == 0) {
        tma::arrive_expect_bytes(full_q(qb), kTileBytes);
        const int row = tile.q_begin + tile.row0;
        tma::load_2d(q_tile(qb), &q_map, tile.head * kHd, row, full_q(qb));
        tma::load_2d(q_tile(qb) + kBlockBytes, &q_map, tile.head * kHd + 64, row, full_q(qb));
      }
      ++items;
      const int32_t* table = p.block_tables + int64_t(tile.seq) * p.max_blocks_per_seq;
      const int num_tiles = (tile.key_limit + kBk - 1) / kBk;
      for (int t = 0; t < num_tiles; ++t, ++kt, ++vt) {
        // Blocks past the visible keys (or the table) read rows past the cache: zeros.
        int row = int(p.num_cache_slots);
        const int block = t * blocks_per_tile + lane;
        if (lane < blocks_per_tile && block * p.block_size < tile.key_limit &&
            block < p.max_blocks_per_seq) {
          row = table[block] * p.block_size;
        }
        const uint32_t off = uint32_t(lane * p.block_size) * 128;
        // Waits until tile n's stage (of `stages`) is free, then asks for its blocks of `map`.
        // One body for K and V: with the two written out, the same loads in the same order, the
        // kernel was ~10% slower (a 7500-token layer 0.86 against 0.78 ms on an H200).
        auto load = [&](const CUtensorMap* map, uint32_t stage_tile, uint32_t full, uint32_t empty,
                        int n, int stages) {
          if (n >= stages) tma::wait(empty, uint32_t(n / stages - 1) & 1);
          if (lane == 0) tma::arrive_expect_bytes(full, kTileBytes);
          __syncwarp();
          if (lane < blocks_per_tile) {
            tma::load_2d(stage_tile + off, map, tile.kvh * kHd, row, full);
            tma::load_2d(stage_tile + off + kBlockBytes, map, tile.kvh * kHd + 64, row, full);
          }
        };
        const int ks = kt % kKStages, vs = vt % kVStages;
        load(&k_map, k_tile(ks), full_k(ks), empty_k(ks), kt, kKStages);
        load(&v_map, v_tile(vs), full_v(vs), empty_v(vs), vt, kVStages);
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
  const int g = lane / 4, c = lane % 4;
  const int wg = warp / 4 - 1;
  const int wrow = wg * 64 + (warp % 4) * 16;
  const uint32_t my_turn = kTurnBarrier + wg, other_turn = kTurnBarrier + (1 - wg);
  const float scale_log2 = p.scale * 1.4426950408889634f;
  float row_max[2], row_sum[2];
  float o[64], s[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  uint32_t pf[kBk / 16][4];
  float alpha[2];
  // The consumers' walk: the item being computed, its next key tile, and the queue counters.
  QueryTile tile{}, last{};
  int round = 0, items = 0, kt = 0, vt = 0;
  int qb = 0, t = 0, num_tiles = 0, pos0 = 0, pos1 = 0, wg_first_pos = 0;
  uint32_t q_addr = 0;
  // Moves to this block's next item with rows and waits for its queries; false when none is left.
  auto next_item = [&]() {
    for (; round * int(gridDim.x) < w.total; ++round) {
      const int i = item_of_round(w, round);
      if (i < 0 || !locate_item(p, w, i, tile)) continue;
      ++round;
      qb = items % kQBuffers;
      tma::wait(full_q(qb), uint32_t(items / kQBuffers) & 1);
      ++items;
      q_addr = q_tile(qb) + uint32_t(wg * 64) * 128;
      // Positions of this lane's rows g and g + 8; padding rows mirror the last.
      pos0 = tile.first_pos + min(wrow + g, tile.rows - 1);
      pos1 = tile.first_pos + min(wrow + g + 8, tile.rows - 1);
      wg_first_pos = tile.first_pos + min(wg * 64, tile.rows - 1);
      num_tiles = (tile.key_limit + kBk - 1) / kBk;
      t = 0;
      return true;
    }
    return false;
  };
  // What follows an S: frees its K stage (and the queries after an item's last tile), then the
  // softmax (a fresh row at an item's first tile).
  auto after_s = [&](int ks) {
    tma::arrive(empty_k(ks));
    if (t == num_tiles - 1) tma::arrive(empty_q(qb));
    if (t == 0) {
      row_max[0] = row_max[1] = -INFINITY;
      row_sum[0] = row_sum[1] = 0.0f;
    }
    if (t * kBk + kBk - 1 > wg_first_pos) mask_after(s, t * kBk, c, pos0, pos1);  // diagonal
    online_softmax_in_place<kBk / 8>(s, scale_log2, row_max, row_sum, alpha);
  };

  if (!next_item()) return;
  if (wg == 1) tma::named_arrive(other_turn, kConsumers);  // warpgroup 0 issues first
  {                                                        // the first tile: S alone
    const int ks = kt % kKStages;
    tma::wait(full_k(ks), uint32_t(kt / kKStages) & 1);
    tma::named_sync(my_turn, kConsumers);
    wgmma::fence();
    issue_qk(s, q_addr, k_tile(ks));
    wgmma::commit();
    tma::named_arrive(other_turn, kConsumers);
    wgmma::wait<0>();
    wgmma::fence_operands(s);
    after_s(ks);
    pack_probabilities<kBk / 8>(s, pf);
    ++kt;
    ++t;
  }
  while (true) {
    float finished_sum[2] = {row_sum[0], row_sum[1]};
    if (t == num_tiles) {  // the item's last P V goes with the next item's first S
      last = tile;
      if (!next_item()) break;
    }
    const int ks = kt % kKStages, vs = vt % kVStages;
    tma::wait(full_k(ks), uint32_t(kt / kKStages) & 1);
    // O is rescaled before any MMA is issued (no MMA is writing it: the last P V has finished):
    // between the two MMAs it would need a compiler-inserted fence, ~2% slower on an H200.
    rescale(o, alpha[0], alpha[1]);
    wgmma::fence_operands(o);
    tma::wait(full_v(vs), uint32_t(vt / kVStages) & 1);
    tma::named_sync(my_turn, kConsumers);
    wgmma::fence();
    issue_qk(s, q_addr, k_tile(ks));
    wgmma::commit();
    issue_pv(o, pf, v_tile(vs));
    wgmma::commit();
    tma::named_arrive(other_turn, kConsumers);
    wgmma::wait<1>();  // S is ready; P V may still run
    wgmma::fence_operands(s);
    after_s(ks);
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    tma::arrive(empty_v(vs));
    // A finished item is written; the new one's O starts from it times this tile's alpha, 0 (a
    // fresh row's max), before its first P V.
    if (t == 0) {
      write_output(p, o, finished_sum, last.q_begin, last.row0, last.rows, last.head, wrow, g, c);
    }
    pack_probabilities<kBk / 8>(s, pf);
    ++kt;
    ++vt;
    ++t;
  }
  {  // the last item's last P V
    const int vs = vt % kVStages;
    rescale(o, alpha[0], alpha[1]);
    wgmma::fence_operands(o);
    tma::wait(full_v(vs), uint32_t(vt / kVStages) & 1);
    tma::named_sync(my_turn, kConsumers);
    wgmma::fence();
    issue_pv(o, pf, v_tile(vs));
    wgmma::commit();
    if (wg == 0) tma::named_arrive(other_turn, kConsumers);  // warpgroup 1 issues last
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    write_output(p, o, row_sum, last.q_begin, last.row0, last.rows, last.head, wrow, g, c);
  }
#else
  __trap();  // built for sm_90a only
#endif
}

}  // namespace

cudaError_t launch_tma_prefill(const PagedAttentionParams& p, cudaStream_t stream,
                               int min_query_len) {
  if (p.head_dim != kHd || p.num_cache_slots <= 0 || p.num_cache_slots >= (int64_t(1) << 31) ||
      p.block_size % 8 != 0 || kBk % p.block_size != 0 || p.q_stride % 8 != 0 ||
      p.num_tokens <= 0) {
    return cudaErrorNotSupported;
  }
  const int tiles = (p.max_query_len + kBq - 1) / kBq;
  const int64_t total = int64_t(tiles) * p.num_seqs * p.num_heads;
  if (total > INT32_MAX / 2) return cudaErrorNotSupported;  // the walk adds a round to an index
  if (total <= 0) return cudaSuccess;
  CUtensorMap q_map, k_map, v_map;
  // Queries a tensor map cannot describe (an unaligned row) take the cp.async kernel.
  if (tma::encode_bf16_rows(&q_map, p.q, uint64_t(p.num_tokens), uint64_t(p.num_heads) * kHd,
                            uint64_t(p.q_stride), uint32_t(kBq)) != cudaSuccess) {
    return cudaErrorNotSupported;
  }
  const uint64_t row_elems = uint64_t(p.num_kv_heads) * kHd;
  cudaError_t e = tma::encode_bf16_rows(&k_map, p.k_cache, uint64_t(p.num_cache_slots), row_elems,
                                        row_elems, uint32_t(p.block_size));
  if (e != cudaSuccess) return e;
  e = tma::encode_bf16_rows(&v_map, p.v_cache, uint64_t(p.num_cache_slots), row_elems, row_elems,
                            uint32_t(p.block_size));
  if (e != cudaSuccess) return e;
  int device = 0;
  if ((e = cudaGetDevice(&device)) != cudaSuccess) return e;
  // The SM count per device, asked once (a prefill launches this for every layer).
  static std::atomic<int> sm_counts[64];
  int sms = device >= 0 && device < 64 ? sm_counts[device].load(std::memory_order_relaxed) : 0;
  if (sms == 0) {
    e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (e != cudaSuccess) return e;
    if (device >= 0 && device < 64) sm_counts[device].store(sms, std::memory_order_relaxed);
  }
  e = cudaFuncSetAttribute(tma_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           int(kSmemBytes));
  if (e != cudaSuccess) return e;
  const WorkItems items{int(total), tiles, min_query_len};
  return launch_kernel(tma_prefill_kernel, unsigned(std::min<int64_t>(total, sms)), kThreads,
                       kSmemBytes, stream, q_map, k_map, v_map, p, items);
}

}  // namespace tandem::cuda::attention
