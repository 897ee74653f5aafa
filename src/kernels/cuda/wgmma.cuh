// Hopper warpgroup MMA (wgmma.mma_async, sm_90a) for bf16 with f32 accumulators: the shared
// memory matrix descriptor for 128-byte-swizzled tiles, the fences around the asynchronous MMA,
// and the two m64n128k16 forms the prefill attention kernel uses (A from shared memory, and A from
// registers with B transposed). A warpgroup is 4 consecutive warps; each thread holds 64
// accumulators: for 8-column tile t, d[4t..4t+3] = (row g, cols 2c, 2c+1), (row g + 8, the same),
// g = lane / 4, c = lane % 4, rows offset by 16 per warp: mma.sync's C fragment, tiled.
#pragma once
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace tandem::cuda::wgmma {

#ifdef __CUDACC__
// A tile stored as rows of 128 bytes (64 bf16), 16-byte chunk j of row r at chunk j ^ (r % 8),
// 8-row groups 1024 bytes apart, from a 1024-byte-aligned base (CUTLASS's 128-byte swizzle atom).
// `lbo` / `sbo`: the leading / stride byte offsets (K-major: 16 / 1024; MN-major: the distance
// between 64-column blocks / 1024).
__device__ __forceinline__ uint64_t descriptor(uint32_t smem_address, uint32_t lbo, uint32_t sbo) {
  return uint64_t((smem_address & 0x3FFFF) >> 4) | uint64_t(lbo >> 4) << 16 |
         uint64_t(sbo >> 4) << 32 | uint64_t(1) << 62;
}

// Byte offset of 16-byte chunk j (0..7) of row r inside such a tile.
__device__ __forceinline__ uint32_t swizzled(int r, int j) {
  return uint32_t(r) * 128 + (uint32_t(j ^ (r & 7)) << 4);
}

__device__ __forceinline__ void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accesses of `d` across an asynchronous MMA.
__device__ __forceinline__ void fence_operands(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// Makes this thread's generic-proxy shared memory writes (st.shared, cp.async) visible to wgmma.
__device__ __forceinline__ void fence_shared_for_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// The 64 accumulators of an m64n128 wgmma: their place-holders in the PTX, and their read-write
// operands (an array named d).
#define TANDEM_WGMMA_D_REGS                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "          \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define TANDEM_WGMMA_D_OPERANDS                                                                   \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),  \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),  \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),  \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),  \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d (64 x 128) (+)= A (64 x 16, K-major in shared memory) B (16 x 128, K-major in shared memory).
__device__ __forceinline__ void mma_ss(float (&d)[64], uint64_t a, uint64_t b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " TANDEM_WGMMA_D_REGS
      ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : TANDEM_WGMMA_D_OPERANDS
      : "l"(a), "l"(b), "r"(int(accumulate)));
}

// d (64 x 128) += A (64 x 16, registers: mma.sync's A fragment per warp) B (16 x 128, N-major in
// shared memory: rows of K, 64-column blocks `lbo` bytes apart).
__device__ __forceinline__ void mma_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " TANDEM_WGMMA_D_REGS
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : TANDEM_WGMMA_D_OPERANDS
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}
#undef TANDEM_WGMMA_D_REGS
#undef TANDEM_WGMMA_D_OPERANDS
#endif

}  // namespace tandem::cuda::wgmma
