// few_rows_gemm: a block a slice of W's rows, about one block an SM. Warp w of a block owns 16
// output columns (W rows; with SiLU·mul 16 gate rows and the 16 up rows that pair with them) and
// runs one mma.sync chain over all of k for them, W's rows as the A operand and x's <= 16 rows
// (one or two tiles of 8) as B: no split of k, so a column's sum is the chain cuBLAS computes
// (see the header). A producer thread streams W and x through TMA into a ring of stages guarded
// by mbarriers: a stage is kBoxes blocks of 64 columns (128-byte rows, 128-byte swizzle), one 3-D
// box for W's rows (each chain's) and one for x's.
// Where its time goes (Llama-3.1-8B, batch 1, H200): launched alone it is about as fast as
// cuBLAS (q/k/v 16.8 us against 17.2, o_proj 13.3 against 12.3, down_proj 33.5 against 31.2,
// gate/up with SiLU·mul 60.2 against 66.2 for cuBLAS's GEMM and silu_mul); what it gains is that
// W depends on nothing, so launched while the kernel before it runs (launch_kernel_early, also
// inside CUDA graphs) it has its first stages of W in flight when that kernel ends: a decode step
// at 1 x 7500 took 4.61-4.67 ms against 4.80-4.91 with cuBLAS (two H200s). TMA's cost is per
// request, hence 3-D boxes: one bulk copy a W row and 64-256 columns moved only 4-12 GB/s an SM.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/few_rows_gemm.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "kernels/cuda/tma.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tandem::cuda {
namespace {

using attention::ldmatrix_x4;  // the mma.sync m16n8k16 helpers the split-KV kernel uses
using attention::mma_bf16;
using attention::smem_addr;
using wgmma::swizzled;  // the 128-byte swizzle atom, which TMA's SWIZZLE_128B boxes land in

constexpr int kMaxStages = 16;
constexpr int kMaxWarps = 16;  // consumer warps a block (plus the producer)
constexpr int kColsPerWarp = 16;                  // the mma's m
// x's rows go in tiles of the mma's n (8): a box of 8 or 16 rows (rows past m read zeros). Four
// tiles (32 rows) lost to cuBLAS: a 32 x 2048 decode step took 7.27 ms against 6.75.
constexpr int kXTileRows = 8;
constexpr int kBoxCols = 64;                      // a box row: 128 bytes
// Stages' shared memory: o_proj at batch 1 took 13.3 us with 120 KB against 14.8 with 200 (H200).
constexpr size_t kSmemBudget = 120 * 1024;

// A stage: W's box (kBoxes blocks of warps * 16 rows x 64 columns; with SiLU·mul the gate rows',
// then the up rows'), then x's (kBoxes blocks of kXTiles * 8 rows).
template <bool kSiluMul, int kBoxes, int kXTiles>
__global__ void __launch_bounds__((kMaxWarps + 1) * 32, 1)
    few_rows_gemm_kernel(const __grid_constant__ CUtensorMap w_map,
                         const __grid_constant__ CUtensorMap x_map, FewRowsGemmParams p,
                         int stages, int warps) {
  extern __shared__ unsigned char smem[];
  __shared__ __align__(8) uint64_t full[kMaxStages], empty[kMaxStages];
  constexpr int kChains = kSiluMul ? 2 : 1;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t cols = kSiluMul ? p.n / 2 : p.n;
  const int first_group = blockIdx.x * warps;
  const int groups = int(min(int64_t(warps), cols / kColsPerWarp - first_group));  // this block's
  const int half_rows = warps * kColsPerWarp;  // W rows of a chain's box
  const uint32_t w_block_bytes = uint32_t(half_rows * 128);
  constexpr uint32_t x_block_bytes = kXTiles * kXTileRows * 128;
  const uint32_t w_box_bytes = kBoxes * w_block_bytes;  // a chain's
  const uint32_t stage_bytes = kChains * w_box_bytes + kBoxes * x_block_bytes;
  const int m = int(p.m);
  const int chunks = int(p.k / (int64_t(kBoxes) * kBoxCols));
  const uint32_t stage0 = (smem_addr(smem) + 1023) & ~1023u;  // the swizzle's alignment
  auto full_at = [&](int s) { return smem_addr(&full[s]); };
  auto empty_at = [&](int s) { return smem_addr(&empty[s]); };

  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      tma::init_barrier(full_at(s), 1);
      tma::init_barrier(empty_at(s), uint32_t(warps));
    }
    tma::fence_barrier_init();
  }
  __syncthreads();
  let_next_kernel_start();  // (down_proj's few_rows_gemm after gate_up's)

  if (warp == warps) {  // the producer: one thread asks for every box
    if (lane != 0) return;
    tma::prefetch_map(&w_map);
    tma::prefetch_map(&x_map);
    auto load_w = [&](int c) {
      const uint32_t base = stage0 + uint32_t(c % stages) * stage_bytes;
      for (int h = 0; h < kChains; ++h) {
        tma::load_3d(base + uint32_t(h) * w_box_bytes, &w_map, 0,
                     int(h * cols) + first_group * kColsPerWarp, c * kBoxes, full_at(c % stages));
      }
    };
    auto load_x = [&](int c) {
      const uint32_t base = stage0 + uint32_t(c % stages) * stage_bytes;
      tma::load_3d(base + kChains * w_box_bytes, &x_map, 0, 0, c * kBoxes, full_at(c % stages));
    };
    // W does not depend on the kernel before; x does: the first stages' W is asked for before
    // waiting on it (under programmatic dependent launch that overlaps the previous kernel).
    const int prologue = min(stages, chunks);
    for (int c = 0; c < prologue; ++c) {
      tma::arrive_expect_bytes(full_at(c), stage_bytes);
      load_w(c);
    }
    wait_for_previous_kernel();
    for (int c = 0; c < prologue; ++c) load_x(c);
    for (int c = prologue; c < chunks; ++c) {
      const int s = c % stages;
      tma::wait(empty_at(s), uint32_t(((c / stages) & 1) ^ 1));  // stage s's last chunk consumed
      tma::arrive_expect_bytes(full_at(s), stage_bytes);
      load_w(c);
      load_x(c);
    }
    return;
  }

  wait_for_previous_kernel();  // y may still be read by the kernel before
  const bool active = warp < groups;
  // Offsets within a block of 64 columns, all per lane and fixed. A (W, 16 rows): for slice t,
  // matrices (rows 0-7 | 8-15) x (chunk 2t | 2t + 1); B (x, 8 rows): for slices 2p and 2p + 1,
  // matrices rows 0-7 x chunks 4p .. 4p + 3.
  const int a_row = warp * kColsPerWarp + lane % 8 + 8 * ((lane / 8) & 1);
  uint32_t a_off[4], b_off[kXTiles][2];
#pragma unroll
  for (int t = 0; t < 4; ++t) a_off[t] = swizzled(a_row, 2 * t + lane / 16);
#pragma unroll
  for (int j = 0; j < kXTiles; ++j) {
#pragma unroll
    for (int q = 0; q < 2; ++q) b_off[j][q] = swizzled(kXTileRows * j + lane % 8, 4 * q + lane / 8);
  }
  // A box's fragments: its four slices' A (per chain) and its two pairs' B.
  struct Box {
    uint32_t a[kChains][4][4], b[kXTiles][2][4];
  };
  auto load_box = [&](uint32_t stage, int box, Box& f) {
    const uint32_t w = stage + uint32_t(box) * w_block_bytes;
    const uint32_t x = stage + kChains * w_box_bytes + uint32_t(box) * x_block_bytes;
#pragma unroll
    for (int j = 0; j < kXTiles; ++j) {
#pragma unroll
      for (int q = 0; q < 2; ++q) ldmatrix_x4(f.b[j][q], x + b_off[j][q]);
    }
#pragma unroll
    for (int h = 0; h < kChains; ++h) {
#pragma unroll
      for (int t = 0; t < 4; ++t) ldmatrix_x4(f.a[h][t], w + h * w_box_bytes + a_off[t]);
    }
  };
  float acc[kChains][kXTiles][4] = {};
  for (int c = 0; c < chunks; ++c) {
    const int s = c % stages;
    tma::wait(full_at(s), uint32_t((c / stages) & 1));
    if (active) {
      // The next box's fragments are asked for before this box's mma (ptxas still places each
      // ldmatrix a few instructions before its mma: cuobjdump of an earlier version).
      const uint32_t stage = stage0 + uint32_t(s) * stage_bytes;
      Box f[2];
      load_box(stage, 0, f[0]);
#pragma unroll
      for (int box = 0; box < kBoxes; ++box) {
        if (box + 1 < kBoxes) load_box(stage, box + 1, f[(box + 1) % 2]);
        const Box& g = f[box % 2];
#pragma unroll
        for (int t = 0; t < 4; ++t) {
#pragma unroll
          for (int j = 0; j < kXTiles; ++j) {
            const uint32_t b0 = g.b[j][t / 2][2 * (t % 2)], b1 = g.b[j][t / 2][2 * (t % 2) + 1];
#pragma unroll
            for (int h = 0; h < kChains; ++h) mma_bf16(acc[h][j], g.a[h][t], b0, b1);
          }
        }
      }
    }
    __syncwarp();
    if (lane == 0) tma::arrive(empty_at(s));
  }
  if (!active) return;
  // C fragment (16 W rows x 8 x rows) of x tile j: lane holds W rows lane / 4 and lane / 4 + 8,
  // x rows 8j + 2 (lane % 4) and the next.
  const int64_t col0 = (int64_t(first_group) + warp) * kColsPerWarp + lane / 4;
#pragma unroll
  for (int j = 0; j < kXTiles; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = kXTileRows * j + 2 * (lane % 4) + i % 2;
      if (row >= m) continue;
      float v = acc[0][j][i];
      if constexpr (kSiluMul) {  // gate and up as the GEMM would have stored them, then silu_mul
        v = silu_times(to_float(to_bf16(v)), to_float(to_bf16(acc[1][j][i])));
      }
      p.y[row * cols + col0 + 8 * (i / 2)] = to_bf16(v);
    }
  }
}

struct Plan {
  int boxes = 0, stages = 0, warps = 0, blocks = 0, x_tiles = 0;
  size_t smem = 0;
};

// About one block an SM; stages of up to 4 boxes of 64 columns (fewer barrier waits), as many as
// still leave 4 stages (or all of k) in the budget.
bool plan_for(const FewRowsGemmParams& p, Plan& plan) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    return false;
  }
  const int chains = p.silu_mul ? 2 : 1;
  const int64_t groups = (p.silu_mul ? p.n / 2 : p.n) / kColsPerWarp;
  plan.warps = int(std::clamp<int64_t>((groups + sms - 1) / sms, 1, kMaxWarps));
  plan.blocks = int((groups + plan.warps - 1) / plan.warps);
  plan.x_tiles = p.m <= kXTileRows ? 1 : 2;
  const size_t group_bytes =  // a block's
      size_t(plan.warps * kColsPerWarp * chains + plan.x_tiles * kXTileRows) * 128;
  for (int boxes : {4, 2, 1}) {
    if (p.k % (int64_t(boxes) * kBoxCols) != 0) continue;
    const int64_t chunks = p.k / (int64_t(boxes) * kBoxCols);
    const size_t stage_bytes = size_t(boxes) * group_bytes;
    const int stages =
        int(std::min<int64_t>({kMaxStages, int64_t(kSmemBudget / stage_bytes), chunks}));
    if (stages >= 4 || stages == chunks || (boxes == 1 && stages >= 2)) {
      plan.boxes = boxes;
      plan.stages = stages;
      plan.smem = size_t(stages) * stage_bytes + 1024;  // + the 1024-byte alignment
      return true;
    }
  }
  return false;
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// few_rows_gemm_supported, and the plan when it is.
bool supported(const FewRowsGemmParams& p, Plan& plan) {
  const int64_t cols = p.silu_mul ? p.n / 2 : p.n;
  if (!p.x || !p.w || !p.y || p.m < 1 || p.m > kFewRowsGemmMaxRows || p.k <= 0 ||
      p.k % 64 != 0 || p.k > (int64_t(1) << 30) || p.n <= 0 || p.n > (int64_t(1) << 30)) {
    return false;
  }
  if ((p.silu_mul && p.n % 2 != 0) || cols % kColsPerWarp != 0) return false;
  if (!aligned16(p.x) || !aligned16(p.w) || !aligned16(p.y)) return false;
  return plan_for(p, plan);
}

}  // namespace

bool few_rows_gemm_supported(const FewRowsGemmParams& p) {
  Plan plan;
  return supported(p, plan);
}

cudaError_t few_rows_gemm(const FewRowsGemmParams& p, cudaStream_t stream) {
  Plan plan;
  if (!supported(p, plan)) return cudaErrorInvalidValue;
  // W in boxes of warps * 16 rows (rows past n read zeros), x in boxes of 8 or 16 rows (rows past
  // m: zeros).
  CUtensorMap w_map, x_map;
  if (const cudaError_t e =
          tma::encode_bf16_row_blocks(&w_map, p.w, uint64_t(p.n), uint64_t(p.k), uint64_t(p.k),
                                      uint32_t(plan.warps * kColsPerWarp), uint32_t(plan.boxes));
      e != cudaSuccess) {
    return e;
  }
  if (const cudaError_t e =
          tma::encode_bf16_row_blocks(&x_map, p.x, uint64_t(p.m), uint64_t(p.k), uint64_t(p.k),
                                      uint32_t(plan.x_tiles * kXTileRows), uint32_t(plan.boxes));
      e != cudaSuccess) {
    return e;
  }
  auto run = [&](auto kernel) {
    if (const cudaError_t e = cudaFuncSetAttribute(
            kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.smem));
        e != cudaSuccess) {
      return e;
    }
    return launch_kernel_early(kernel, unsigned(plan.blocks), unsigned((plan.warps + 1) * 32),
                               plan.smem, stream, w_map, x_map, p, plan.stages, plan.warps);
  };
  auto with_tiles = [&](auto silu_mul, auto boxes) {
    constexpr bool kSiluMul = decltype(silu_mul)::value;
    constexpr int kBoxes = decltype(boxes)::value;
    return plan.x_tiles == 2 ? run(few_rows_gemm_kernel<kSiluMul, kBoxes, 2>)
                             : run(few_rows_gemm_kernel<kSiluMul, kBoxes, 1>);
  };
  auto with_boxes = [&](auto silu_mul) {
    switch (plan.boxes) {
      case 4: return with_tiles(silu_mul, std::integral_constant<int, 4>{});
      case 2: return with_tiles(silu_mul, std::integral_constant<int, 2>{});
      default: return with_tiles(silu_mul, std::integral_constant<int, 1>{});
    }
  };
  return p.silu_mul ? with_boxes(std::true_type{}) : with_boxes(std::false_type{});
}

bool few_rows_gemm_enabled() {
  static const bool enabled = !switched_off_in_env("TANDEM_FEW_ROWS_GEMM");
  return enabled;
}

}  // namespace tandem::cuda
