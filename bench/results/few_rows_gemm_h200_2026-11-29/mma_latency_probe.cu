// Probe: cycles per step of a dependent mma.sync m16n8k16 bf16 chain (one accumulator), and of the
// same chain fed by ldmatrix from shared memory (loads one pair ahead), per warp, 1..8 warps a block.
#include <cstdio>
#include <cstdint>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__global__ void chain(int steps, int mode, long long* cycles, float* sink) {
  __shared__ __align__(128) unsigned char sm[16384];
  for (int i = threadIdx.x; i < 4096; i += blockDim.x) reinterpret_cast<uint32_t*>(sm)[i] = 0x3f803f80u * (i & 1);
  __syncthreads();
  uint32_t a[4] = {0x3f803f80u, 0, 0x3f803f80u, 0}, b0 = 0x3f803f80u, b1 = 0x3f803f80u;
  float d[4] = {0, 0, 0, 0};
  const int lane = threadIdx.x % 32;
  const uint32_t base = uint32_t(__cvta_generic_to_shared(sm)) + (threadIdx.x / 32) * 2048;
  long long t0 = clock64();
  if (mode == 0) {
    for (int s = 0; s < steps; ++s) mma(d, a, b0, b1);
  } else {
    uint32_t x[2][4], w[2][4];
    ldsm4(x[0], base + (lane % 8) * 144 + (lane / 8) * 16);
    ldsm4(w[0], base + 1024 + (lane % 8) * 144 + (lane / 8) * 16);
    for (int s = 0; s < steps; s += 4) {
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        if (q == 0) { ldsm4(x[1], base + ((s + 2) % 8) * 16 + (lane % 8) * 144); ldsm4(w[1], base + 1024 + (lane % 8) * 144); }
        else { ldsm4(x[0], base + ((s + 4) % 8) * 16 + (lane % 8) * 144); ldsm4(w[0], base + 1024 + (lane % 8) * 144 + 32); }
        const uint32_t a0[4] = {x[q][0], 0, x[q][1], 0}, a1[4] = {x[q][2], 0, x[q][3], 0};
        mma(d, a0, w[q][0], w[q][1]);
        mma(d, a1, w[q][2], w[q][3]);
      }
    }
  }
  long long t1 = clock64();
  if (lane == 0) cycles[blockIdx.x * 32 + threadIdx.x / 32] = t1 - t0;
  sink[blockIdx.x * blockDim.x + threadIdx.x] = d[0] + d[1] + d[2] + d[3];
}
int main() {
  long long* c; float* s;
  cudaMalloc(&c, 132 * 32 * 8); cudaMalloc(&s, 132 * 1024 * 4);
  for (int mode = 0; mode < 2; ++mode)
    for (int warps : {1, 2, 4, 8}) {
      const int steps = 4096;
      chain<<<132, warps * 32>>>(steps, mode, c, s);
      chain<<<132, warps * 32>>>(steps, mode, c, s);
      cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
      cudaEventRecord(e0);
      chain<<<132, warps * 32>>>(steps, mode, c, s);
      cudaEventRecord(e1); cudaEventSynchronize(e1);
      float ms; cudaEventElapsedTime(&ms, e0, e1);
      long long h[1]; cudaMemcpy(h, c, 8, cudaMemcpyDeviceToHost);
      printf("%s warps/block %d: %.1f cycles/step (warp 0), %.2f ns/step wall\n", mode ? "ldmatrix+mma" : "mma chain   ", warps,
             double(h[0]) / steps, ms * 1e6 / steps);
    }
  return 0;
}
