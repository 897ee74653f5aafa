// gemm_bench: the Llama-3.1-8B projections at decode row counts (y = x W^T, bf16 in, f32
// accumulate, bf16 out as the engine writes them; lm_head f32), timed as tandem::cuda::gemm with
// no cuBLAS workspace (what the engine ran before few_rows_gemm), few_rows_gemm (what it runs for
// up to 16 rows; gate_up fused with SiLU·mul, against cuBLAS's gate_up followed by silu_mul),
// cublasGemmEx with a 32 MiB workspace, and every algorithm cuBLASLt's heuristic offers (up to 16,
// no workspace and 32 MiB; skipped with --quick). The weights cycle through copies filling 2 GiB
// so each launch reads them from HBM, not L2. Prints one JSON object: per shape and m the
// microseconds of each and the best algorithm's rank in the heuristic's list. The data are zeros,
// or with --random uniform values (a GEMM's power, and so its clock under a power cap, depends on
// them: prefill-sized GEMMs want --random).
// Usage: gemm_bench [--quick] [--random] [--only SHAPE] [m...]   (default 1 4 16 32)
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/utc_time.h"
#include "kernels/cuda/few_rows_gemm.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace {

using tandem::cuda::bf16;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "gemm_bench: %s failed\n", what);
    std::exit(1);
  }
}

struct Shape {
  const char* name;
  int64_t n, k;
  bool logits;    // f32 output
  bool silu_mul;  // few_rows_gemm fuses SiLU·mul (cuBLAS's time then includes silu_mul)
};

constexpr Shape kShapes[] = {{"qkv_proj", 6144, 4096, false, false},
                             {"o_proj", 4096, 4096, false, false},
                             {"gate_up_proj", 28672, 4096, false, true},
                             {"down_proj", 4096, 14336, false, false},
                             {"lm_head", 128256, 4096, true, false}};
constexpr size_t kPoolBytes = size_t(2) << 30;
constexpr size_t kWorkspaceBytes = size_t(32) << 20;
constexpr int kLaunches = 30;

// Mean microseconds of one launch over kLaunches, each on the next weight copy (after a warm-up).
double time_us(const std::function<bool(int)>& launch, int copies) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess, "event");
  for (int i = 0; i < 3; ++i) check(launch(i % copies), "warm-up launch");
  check(cudaEventRecord(start) == cudaSuccess, "record");
  for (int i = 0; i < kLaunches; ++i) {
    if (!launch(i % copies)) return -1.0;
  }
  check(cudaEventRecord(stop) == cudaSuccess, "record");
  check(cudaEventSynchronize(stop) == cudaSuccess, "sync");
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 1000.0 * ms / kLaunches;
}

// Fills `count` bf16 values at `device` with uniform values in [-scale, scale), from a 64 MiB host
// pattern repeated.
void fill_random(bf16* device, size_t count, float scale, unsigned seed) {
  std::vector<bf16> pattern(size_t(32) << 20);
  unsigned state = seed;
  for (bf16& v : pattern) {
    state = state * 1664525u + 1013904223u;
    v = __float2bfloat16(scale * (float(state >> 8) / float(1 << 24) * 2.0f - 1.0f));
  }
  for (size_t done = 0; done < count; done += pattern.size()) {
    const size_t n = std::min(pattern.size(), count - done);
    check(cudaMemcpy(device + done, pattern.data(), n * sizeof(bf16), cudaMemcpyHostToDevice) ==
              cudaSuccess,
          "fill");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> ms;
  bool quick = false, random = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--only") {
      if (i + 1 == argc) {
        std::fprintf(stderr, "gemm_bench: --only needs a shape name\n");
        return 2;
      }
      only = argv[++i];
    } else if (std::string(argv[i]) == "--quick") {
      quick = true;
    } else if (std::string(argv[i]) == "--random") {
      random = true;
    } else {
      ms.push_back(std::atoll(argv[i]));
    }
  }
  if (ms.empty()) ms = {1, 4, 16, 32};
  if (!only.empty() && std::none_of(std::begin(kShapes), std::end(kShapes),
                                    [&](const Shape& s) { return only == s.name; })) {
    std::fprintf(stderr, "gemm_bench: --only %s: no such shape\n", only.c_str());
    return 2;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0) == cudaSuccess, "cudaGetDeviceProperties");
  bf16* pool = nullptr;
  check(cudaMalloc(&pool, kPoolBytes) == cudaSuccess, "cudaMalloc(pool)");
  check(cudaMemset(pool, 0, kPoolBytes) == cudaSuccess, "memset");  // zeros, unless --random
  void* workspace = nullptr;
  check(cudaMalloc(&workspace, kWorkspaceBytes) == cudaSuccess, "cudaMalloc(workspace)");
  const int64_t max_m = *std::max_element(ms.begin(), ms.end());
  bf16* x = nullptr;
  float* y = nullptr;
  bf16* act = nullptr;
  check(cudaMalloc(&act, size_t(max_m) * 14336 * sizeof(bf16)) == cudaSuccess, "cudaMalloc(act)");
  check(cudaMalloc(&x, size_t(max_m) * 14336 * sizeof(bf16)) == cudaSuccess, "cudaMalloc(x)");
  check(cudaMemset(x, 0, size_t(max_m) * 14336 * sizeof(bf16)) == cudaSuccess, "memset");
  check(cudaMalloc(&y, size_t(max_m) * 128256 * sizeof(float)) == cudaSuccess, "cudaMalloc(y)");
  if (random) {
    fill_random(pool, kPoolBytes / sizeof(bf16), 0.02f, 1);
    fill_random(x, size_t(max_m) * 14336, 1.0f, 2);
  }
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  check(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  check(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS, "cublasLtCreate");

  nlohmann::json results = nlohmann::json::array();
  for (const Shape& s : kShapes) {
    if (!only.empty() && only != s.name) continue;
    const size_t weight_bytes = size_t(s.n) * s.k * sizeof(bf16);
    const int copies = int(std::max<size_t>(1, kPoolBytes / weight_bytes));
    auto weight = [&](int c) { return pool + size_t(c) * s.n * s.k; };
    for (const int64_t m : ms) {
      tandem::cuda::GemmParams g;
      g.x = x;
      g.y = y;
      g.m = m;
      g.n = s.n;
      g.k = s.k;
      g.out = s.logits ? tandem::cuda::GemmOut::kF32 : tandem::cuda::GemmOut::kBF16;
      g.beta = 0.0f;
      auto gemm_ex = [&](int c) {
        g.w = weight(c);
        return tandem::cuda::gemm(blas, g) == CUBLAS_STATUS_SUCCESS;
      };
      check(cublasSetWorkspace(blas, nullptr, 0) == CUBLAS_STATUS_SUCCESS, "workspace 0");
      const double engine_us = time_us(
          [&](int c) {
            return gemm_ex(c) &&
                   (!s.silu_mul || tandem::cuda::silu_mul(reinterpret_cast<const bf16*>(y), m,
                                                          s.n / 2, act, nullptr) == cudaSuccess);
          },
          copies);
      tandem::cuda::FewRowsGemmParams f{x, pool, s.silu_mul ? act : reinterpret_cast<bf16*>(y), m,
                                        s.n, s.k, s.silu_mul};
      double few_rows_us = -1.0;
      if (!s.logits && tandem::cuda::few_rows_gemm_supported(f)) {
        few_rows_us = time_us(
            [&](int c) {
              f.w = weight(c);
              return tandem::cuda::few_rows_gemm(f, nullptr) == cudaSuccess;
            },
            copies);
      }
      check(cublasSetWorkspace(blas, workspace, kWorkspaceBytes) == CUBLAS_STATUS_SUCCESS, "ws");
      const double workspace_us = time_us(gemm_ex, copies);

      // cuBLASLt, column-major as tandem::cuda::gemm: y^T (n, m) = W^T (k, n)^T x^T (k, m).
      const cudaDataType_t out_type = s.logits ? CUDA_R_32F : CUDA_R_16BF;
      cublasLtMatmulDesc_t desc;
      check(
          cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS,
          "desc");
      const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa);
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb);
      cublasLtMatrixLayout_t a, b, c;
      cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, uint64_t(s.k), uint64_t(s.n), s.k);
      cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, uint64_t(s.k), uint64_t(m), s.k);
      cublasLtMatrixLayoutCreate(&c, out_type, uint64_t(s.n), uint64_t(m), s.n);
      nlohmann::json algos = nlohmann::json::array();
      double best_us = 1e30;
      int best_rank = -1;
      size_t best_workspace = 0;
      for (const size_t ws : {size_t(0), kWorkspaceBytes}) {
        if (quick) break;
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                             sizeof ws);
        cublasLtMatmulHeuristicResult_t found[16];
        int count = 0;
        cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, c, pref, 16, found, &count);
        const float alpha = 1.0f, beta = 0.0f;
        for (int r = 0; r < count; ++r) {
          const double us = time_us(
              [&](int copy) {
                return cublasLtMatmul(lt, desc, &alpha, weight(copy), a, x, b, &beta, y, c, y, c,
                                      &found[r].algo, ws ? workspace : nullptr, ws,
                                      nullptr) == CUBLAS_STATUS_SUCCESS;
              },
              copies);
          algos.push_back({{"workspace", ws}, {"rank", r}, {"us", us}});
          if (us > 0 && us < best_us) {
            best_us = us;
            best_rank = r;
            best_workspace = ws;
          }
        }
        cublasLtMatmulPreferenceDestroy(pref);
      }
      cublasLtMatrixLayoutDestroy(a);
      cublasLtMatrixLayoutDestroy(b);
      cublasLtMatrixLayoutDestroy(c);
      cublasLtMatmulDescDestroy(desc);
      const double gb = double(weight_bytes) / 1e9;
      const double tflop = 2.0 * double(m) * double(s.n) * double(s.k) / 1e12;
      results.push_back({{"shape", s.name},
                         {"m", m},
                         {"n", s.n},
                         {"k", s.k},
                         {"engine_no_workspace_us", engine_us},
                         {"engine_GBps", gb / (engine_us * 1e-6)},
                         {"cublas_includes_silu_mul", s.silu_mul},
                         {"few_rows_us", few_rows_us},
                         {"few_rows_GBps", few_rows_us > 0 ? gb / (few_rows_us * 1e-6) : 0.0},
                         {"engine_TFLOPs", tflop / (engine_us * 1e-6)},
                         {"gemm_ex_32MiB_us", workspace_us},
                         {"lt_best_us", best_us},
                         {"lt_best_GBps", gb / (best_us * 1e-6)},
                         {"lt_best_rank", best_rank},
                         {"lt_best_workspace", best_workspace},
                         {"lt_algorithms", algos}});
      std::fprintf(stderr,
                   "%-13s m %3lld: cuBLAS %7.1f us, few_rows %7.1f us, 32 MiB %7.1f us, best of Lt "
                   "%7.1f us\n",
                   s.name, (long long)m, engine_us, few_rows_us, workspace_us, best_us);
    }
  }
  const nlohmann::json result = {{"what", "gemm_bench"},
                                 {"gpu", prop.name},
                                 {"date", tandem::utc_now_iso8601()},
                                 {"data", random ? "uniform random" : "zeros"},
                                 {"results", results}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
