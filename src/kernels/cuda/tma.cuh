// Hopper's tensor memory accelerator (TMA, sm_90) and the barriers around it: shared-memory
// mbarriers that count arrivals and bytes (a TMA copy completes its bytes on one), named barriers
// for a subset of a block's warps, and the host side that encodes a 2-D tensor map. A producer warp
// asks for a tile with one instruction per box; consumers wait on the barrier's phase.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums (the driver is reached through the runtime)
#include <cuda_runtime.h>

#include <cstdint>

namespace tandem::cuda::tma {

// A tensor map over a row-major 2-D bf16 array of `rows` x `cols` elements, rows `row_stride`
// elements apart, read in boxes of `box_rows` x 64 columns (128 bytes: each box row lands as one
// 128-byte row of a 128-byte-swizzled tile, wgmma.cuh's layout). Boxes reaching past the array
// read zeros. Fails with cudaErrorInvalidValue for shapes a tensor map cannot describe.
cudaError_t encode_bf16_rows(CUtensorMap* map, const void* base, uint64_t rows, uint64_t cols,
                             uint64_t row_stride, uint32_t box_rows);

// A 3-D tensor map over the same array seen as (column blocks of 64, rows, 64 columns): a box of
// `box_rows` x `box_blocks` x 64 is `box_blocks` consecutive 64-column boxes of encode_bf16_rows
// (each 128-byte swizzled, box_rows * 128 bytes) asked for with one instruction.
cudaError_t encode_bf16_row_blocks(CUtensorMap* map, const void* base, uint64_t rows,
                                   uint64_t cols, uint64_t row_stride, uint32_t box_rows,
                                   uint32_t box_blocks);

#ifdef __CUDACC__
__device__ __forceinline__ void init_barrier(uint32_t bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals));
}
// Makes initialized barriers visible to the other threads (and to the TMA unit) before use.
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives and tells the barrier to wait for `bytes` more bytes of TMA copies in this phase.
__device__ __forceinline__ void arrive_expect_bytes(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
// Waits until the barrier's phase of parity `parity` has completed (a fresh barrier counts its
// phase before the first, parity 1, as completed).
__device__ __forceinline__ void wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  }
}
// Copies the box at (column x, row y) of `map` into shared memory at `dst`, completing its bytes
// on barrier `bar`.
__device__ __forceinline__ void load_2d(uint32_t dst, const CUtensorMap* map, int x, int y,
                                        uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}
// Copies the box at (column x, row y, column block z) of a 3-D `map` into shared memory at `dst`.
__device__ __forceinline__ void load_3d(uint32_t dst, const CUtensorMap* map, int x, int y, int z,
                                        uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(z), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads: sync waits for all of
// them, arrive counts this warp without waiting.
__device__ __forceinline__ void named_sync(uint32_t id, uint32_t threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(uint32_t id, uint32_t threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
#endif

}  // namespace tandem::cuda::tma
