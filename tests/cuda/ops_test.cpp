// The CUDA ops other than attention against their CPU references (kernels/cpu) over a shape sweep
// — 1 token, odd row counts, odd and wide dims, GQA head counts, head_dim 8/16/64/128 — with bf16
// tolerances: inputs are rounded to bf16 first so both sides see the same values, and the GPU
// output's own rounding (2^-8 relative) bounds the difference.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

#include "cuda_test_util.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/silu_mul.h"
#include "kernels/cpu/store_kv.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/few_rows_gemm.cuh"
#include "kernels/cuda/gather_rows.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/rope_store_kv.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "kernels/kernel_test_util.h"

namespace tandem {
namespace {

using cuda::bf16;
using cuda::check_cuda;
using cuda::DeviceBuffer;
using cuda::to_device;
using test::random_floats;
using test::round_to_bf16;

constexpr double kBf16Rel = 1.0 / 128;  // two bf16 roundings

class CudaOpsTest : public test::CudaTest {};

TEST_F(CudaOpsTest, EmbeddingMatchesCpu) {
  for (auto [vocab, dim, n] : {std::tuple{50, 64, 1}, {512, 96, 7}, {1000, 4096, 33}, {9, 13, 5}}) {
    std::vector<float> table = random_floats(size_t(vocab * dim), 1);
    auto d_table = to_device(round_to_bf16(table));
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ids[size_t(i)] = (i * 7919) % vocab;
    auto d_ids = to_device(ids);
    DeviceBuffer<float> d_out(size_t(n * dim));
    check_cuda(cuda::embedding(d_table.data(), vocab, dim, d_ids.data(), n, d_out.data(), nullptr),
               "embedding");
    std::vector<float> want(size_t(n * dim));
    cpu::embedding(table.data(), DType::kF32, vocab, dim, ids.data(), n, want.data());
    EXPECT_EQ(d_out.download(), want) << vocab << "x" << dim;
  }
}

TEST_F(CudaOpsTest, RmsNormWithAndWithoutResidualAddMatchesCpu) {
  // Widths: one float4 per thread (4096), several (8192, 5000), fewer than a warp's (64, 96),
  // and not a multiple of 4 (13, 4099: one element per step).
  // 513 rows take two a block.
  const std::pair<int, int> shapes[] = {{1, 64},   {7, 96},   {33, 4096}, {4, 4096}, {513, 4096},
                                        {3, 5000}, {2, 8192}, {5, 13},    {3, 4099}};
  for (auto [n, dim] : shapes) {
    for (bool with_delta : {false, true}) {
      std::vector<float> x = random_floats(size_t(n * dim), 2, -3.0f, 3.0f);
      std::vector<float> delta = random_floats(size_t(n * dim), 3);
      std::vector<float> w = random_floats(size_t(dim), 4, 0.5f, 1.5f);
      auto d_w = to_device(round_to_bf16(w));
      auto d_x = to_device(x);
      auto d_delta = to_device(round_to_bf16(delta));
      DeviceBuffer<bf16> d_out(size_t(n * dim));
      cuda::RmsNormParams p{d_x.data(),   with_delta ? d_delta.data() : nullptr,
                            nullptr,      d_w.data(),
                            d_out.data(), n,
                            dim,          1e-5f};
      check_cuda(cuda::rms_norm(p, nullptr), "rms_norm");
      if (with_delta) {
        for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
      }
      std::vector<float> want(x.size());
      cpu::rms_norm(x.data(), w.data(), n, dim, 1e-5f, want.data());
      test::expect_close(test::bf16_to_floats(d_out.download()), test::to_doubles(want), 1e-3,
                         kBf16Rel, nullptr, "rms_norm out");
      test::expect_close(d_x.download(), test::to_doubles(x), 1e-6, 1e-6, nullptr, "residual");
    }
  }
}

TEST_F(CudaOpsTest, RmsNormGathersRowsAddingTheirDelta) {
  const int rows = 9, dim = 96;
  std::vector<float> x = random_floats(size_t(rows * dim), 12, -3.0f, 3.0f);
  std::vector<float> delta = random_floats(size_t(rows * dim), 14);
  std::vector<float> w = random_floats(size_t(dim), 13, 0.5f, 1.5f);
  const std::vector<int32_t> pick{8, 0, 3};
  auto d_w = to_device(round_to_bf16(w));
  auto d_x = to_device(x);
  auto d_delta = to_device(round_to_bf16(delta));
  auto d_pick = to_device(pick);
  DeviceBuffer<bf16> d_out(pick.size() * dim);
  check_cuda(cuda::rms_norm({d_x.data(), d_delta.data(), d_pick.data(), d_w.data(), d_out.data(),
                             int64_t(pick.size()), dim, 1e-6f},
                            nullptr),
             "rms_norm");
  std::vector<double> want;
  for (int32_t r : pick) {
    std::vector<float> o(dim), sum(dim);
    for (int j = 0; j < dim; ++j) sum[j] = x[size_t(r * dim + j)] + delta[size_t(r * dim + j)];
    cpu::rms_norm(sum.data(), w.data(), 1, dim, 1e-6f, o.data());
    want.insert(want.end(), o.begin(), o.end());
  }
  test::expect_close(test::bf16_to_floats(d_out.download()), want, 1e-3, kBf16Rel);
}

// A row comes out bit-equal normed among 513 rows (two a block) or alone (one a block).
TEST_F(CudaOpsTest, RmsNormGivesARowTheSameBitsAloneAsInALargeBatch) {
  const int n = 513, dim = 4096;
  const std::vector<float> x = random_floats(size_t(n) * dim, 21, -3.0f, 3.0f);
  std::vector<float> delta = random_floats(size_t(n) * dim, 22);
  std::vector<float> w = random_floats(size_t(dim), 23, 0.5f, 1.5f);
  auto d_w = to_device(round_to_bf16(w));
  auto d_delta = to_device(round_to_bf16(delta));
  auto d_batch = to_device(x);
  DeviceBuffer<bf16> d_out(size_t(n) * dim);
  check_cuda(cuda::rms_norm({d_batch.data(), d_delta.data(), nullptr, d_w.data(), d_out.data(), n,
                             dim, 1e-5f},
                            nullptr),
             "rms_norm batch");
  const std::vector<uint16_t> batch_out = test::bf16_bits(d_out.download());
  const std::vector<float> batch_residual = d_batch.download();
  for (int r : {0, 1, 256, 511, 512}) {
    auto d_row = to_device(std::vector<float>(x.begin() + int64_t(r) * dim,
                                              x.begin() + int64_t(r + 1) * dim));
    DeviceBuffer<bf16> d_row_out(dim);
    check_cuda(cuda::rms_norm({d_row.data(), d_delta.data() + int64_t(r) * dim, nullptr,
                               d_w.data(), d_row_out.data(), 1, dim, 1e-5f},
                              nullptr),
               "rms_norm row");
    EXPECT_EQ(test::bf16_bits(d_row_out.download()),
              std::vector<uint16_t>(batch_out.begin() + int64_t(r) * dim,
                                    batch_out.begin() + int64_t(r + 1) * dim))
        << "row " << r;
    EXPECT_EQ(d_row.download(), std::vector<float>(batch_residual.begin() + int64_t(r) * dim,
                                                   batch_residual.begin() + int64_t(r + 1) * dim))
        << "row " << r;
  }
}

TEST_F(CudaOpsTest, SiluMulMatchesCpu) {
  // 8 outputs a thread where inter is a multiple of 8 (64, 8, 14336), one at a time otherwise (77).
  for (auto [n, inter] : {std::pair{1, 64}, {5, 77}, {3, 8}, {16, 14336}}) {
    std::vector<float> gu = random_floats(size_t(n * 2 * inter), 5, -4.0f, 4.0f);
    auto d_gu = to_device(round_to_bf16(gu));
    DeviceBuffer<bf16> d_out(size_t(n * inter));
    check_cuda(cuda::silu_mul(d_gu.data(), n, inter, d_out.data(), nullptr), "silu_mul");
    std::vector<double> want;
    for (int r = 0; r < n; ++r) {
      float o[1];
      for (int c = 0; c < inter; ++c) {
        const float* row = gu.data() + size_t(r) * 2 * size_t(inter);
        cpu::silu_mul(row + c, row + inter + c, 1, o);
        want.push_back(o[0]);
      }
    }
    test::expect_close(test::bf16_to_floats(d_out.download()), want, 1e-3, kBf16Rel);
  }
}

struct RopeCase {
  int n, heads, kv_heads, head_dim;
  bool bias;
};

TEST_F(CudaOpsTest, RopeStoreKvMatchesCpuRopeAndStoreKv) {
  // Fewer than 128 tokens take the per-pair kernel, more the per-token one; 80 heads of 256 dims
  // are more than one batch of 8 heads a thread there (the block is capped at 1024 threads).
  for (const RopeCase& c : {RopeCase{1, 8, 8, 8, false},
                            {7, 6, 2, 16, true},
                            {33, 32, 8, 128, false},
                            {17, 8, 1, 64, true},
                            {130, 32, 8, 128, false},  // 16-byte accesses from 128 tokens
                            {136, 8, 2, 64, false},
                            {129, 6, 2, 16, true},
                            {140, 72, 8, 256, false},
                            {131, 4, 2, 6, false}}) {  // an odd number of pairs: one a thread
    const int64_t q_dim = int64_t(c.heads) * c.head_dim, kv_dim = int64_t(c.kv_heads) * c.head_dim;
    const int64_t stride = q_dim + 2 * kv_dim + 8;  // a padded row stride
    const int64_t num_slots = 4 * c.n + 16;
    std::vector<float> qkv = random_floats(size_t(c.n * stride), 6);
    std::vector<float> bias = random_floats(size_t(q_dim + 2 * kv_dim), 7);
    auto d_qkv = to_device(round_to_bf16(qkv));
    auto d_bias = to_device(round_to_bf16(bias));
    std::vector<int32_t> pos(size_t(c.n));
    std::vector<int64_t> slots(size_t(c.n));
    for (int t = 0; t < c.n; ++t) {
      pos[size_t(t)] = 1000 + 37 * t;  // large positions exercise the angle precision
      slots[size_t(t)] = (t * 3 + 5) % num_slots;
    }
    std::vector<float> inv_freq = cpu::rope_default_inv_freq(c.head_dim, 500000.0);
    cpu::rope_scale_llama3(inv_freq, {});
    auto d_pos = to_device(pos);
    auto d_slots = to_device(slots);
    auto d_inv = to_device(inv_freq);
    DeviceBuffer<bf16> d_k(size_t(num_slots * kv_dim)), d_v(size_t(num_slots * kv_dim));
    check_cuda(cudaMemset(d_k.data(), 0, d_k.size() * 2), "memset");
    check_cuda(cudaMemset(d_v.data(), 0, d_v.size() * 2), "memset");
    cuda::RopeStoreKvParams p{d_qkv.data(), stride,         c.bias ? d_bias.data() : nullptr,
                              d_pos.data(), d_slots.data(), d_inv.data(),
                              d_k.data(),   d_v.data(),     num_slots,
                              c.n,          c.heads,        c.kv_heads,
                              c.head_dim};
    check_cuda(cuda::rope_store_kv(p, nullptr), "rope_store_kv");

    // CPU: split, add bias (rounded to bf16 like the GPU), rotate, store.
    std::vector<float> q(size_t(c.n * q_dim)), k(size_t(c.n * kv_dim)), v(size_t(c.n * kv_dim));
    for (int t = 0; t < c.n; ++t) {
      for (int64_t e = 0; e < q_dim + 2 * kv_dim; ++e) {
        float x = qkv[size_t(t * stride + e)];
        if (c.bias) x = bf16_to_f32(f32_to_bf16(x + bias[size_t(e)]));
        if (e < q_dim)
          q[size_t(t * q_dim + e)] = x;
        else if (e < q_dim + kv_dim)
          k[size_t(t * kv_dim + e - q_dim)] = x;
        else
          v[size_t(t * kv_dim + e - q_dim - kv_dim)] = x;
      }
    }
    cpu::apply_rope(q.data(), pos.data(), c.n, c.heads, c.head_dim, inv_freq.data());
    cpu::apply_rope(k.data(), pos.data(), c.n, c.kv_heads, c.head_dim, inv_freq.data());
    std::vector<float> k_cache(size_t(num_slots * kv_dim)), v_cache(k_cache.size());
    cpu::store_kv(k.data(), v.data(), slots.data(), c.n, kv_dim, num_slots, k_cache.data(),
                  v_cache.data());
    std::vector<float> got_q;
    std::vector<float> got_all = test::bf16_to_floats(d_qkv.download());
    for (int t = 0; t < c.n; ++t) {
      got_q.insert(got_q.end(), got_all.begin() + t * stride, got_all.begin() + t * stride + q_dim);
    }
    const std::string what = fmt::format("heads {}/{} hd {}", c.heads, c.kv_heads, c.head_dim);
    test::expect_close(got_q, test::to_doubles(q), 1e-2, kBf16Rel, nullptr, what + " q");
    test::expect_close(test::bf16_to_floats(d_k.download()), test::to_doubles(k_cache), 1e-2,
                       kBf16Rel, nullptr, what + " k cache");
    test::expect_close(test::bf16_to_floats(d_v.download()), test::to_doubles(v_cache), 0, 0,
                       nullptr, what + " v cache");
  }
}

// A token's q, k and v come out bit-equal whether it is roped among 160 tokens (the per-token
// kernel) or alone (the per-pair kernel): a sequence's result must not depend on its batch.
TEST_F(CudaOpsTest, RopeStoreKvGivesATokenTheSameBitsAloneAsInALargeBatch) {
  const int n = 160, heads = 32, kv_heads = 8, hd = 128;
  const int64_t stride = int64_t(heads + 2 * kv_heads) * hd, kv_dim = int64_t(kv_heads) * hd;
  std::vector<float> qkv = random_floats(size_t(n * stride), 12);
  const std::vector<bf16> input = round_to_bf16(qkv);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  std::vector<int64_t> slots(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) {
    pos[size_t(t)] = 7 + 61 * t;
    slots[size_t(t)] = n - 1 - t;
  }
  std::vector<float> inv_freq = cpu::rope_default_inv_freq(hd, 500000.0);
  auto d_pos = to_device(pos);
  auto d_slots = to_device(slots);
  auto d_inv = to_device(inv_freq);
  auto run = [&](int64_t first, int64_t count, DeviceBuffer<bf16>& d_qkv, DeviceBuffer<bf16>& d_k,
                 DeviceBuffer<bf16>& d_v) {
    cuda::RopeStoreKvParams p{d_qkv.data() + first * stride,
                              stride,
                              nullptr,
                              d_pos.data() + first,
                              d_slots.data() + first,
                              d_inv.data(),
                              d_k.data(),
                              d_v.data(),
                              n,
                              count,
                              heads,
                              kv_heads,
                              hd};
    check_cuda(cuda::rope_store_kv(p, nullptr), "rope_store_kv");
  };
  auto batch_qkv = to_device(input), alone_qkv = to_device(input);
  DeviceBuffer<bf16> batch_k(size_t(n * kv_dim)), batch_v(size_t(n * kv_dim));
  DeviceBuffer<bf16> alone_k(size_t(n * kv_dim)), alone_v(size_t(n * kv_dim));
  run(0, n, batch_qkv, batch_k, batch_v);
  for (int t = 0; t < n; ++t) run(t, 1, alone_qkv, alone_k, alone_v);
  using test::bf16_bits;
  EXPECT_EQ(bf16_bits(batch_qkv.download()), bf16_bits(alone_qkv.download()));
  EXPECT_EQ(bf16_bits(batch_k.download()), bf16_bits(alone_k.download()));
  EXPECT_EQ(bf16_bits(batch_v.download()), bf16_bits(alone_v.download()));
}

TEST_F(CudaOpsTest, GemmMatchesCpuMatmulInBothOutputTypes) {
  cublasHandle_t handle;
  cuda::check_cublas(cublasCreate(&handle), "cublasCreate");
  for (auto [m, n, k] : {std::tuple{1, 64, 64}, {7, 96, 200}, {64, 1000, 512}, {129, 24, 4096}}) {
    std::vector<float> x = random_floats(size_t(m * k), 8), w = random_floats(size_t(n * k), 9);
    std::vector<float> y0 = random_floats(size_t(m * n), 10);
    auto d_x = to_device(round_to_bf16(x));
    auto d_w = to_device(round_to_bf16(w));
    std::vector<float> want(size_t(m * n));
    cpu::matmul(x.data(), m, {w.data(), DType::kF32, n, k, nullptr}, want.data(), nullptr);
    // Error scale: the typical |sum| of k terms, or the output itself where larger (bf16 rounding).
    std::vector<double> scale(want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      scale[i] = std::max(std::sqrt(double(k)) / 3, std::abs(double(want[i])));
    }
    DeviceBuffer<bf16> d_y(size_t(m * n));
    cuda::check_cublas(cuda::gemm(handle, {d_x.data(), d_w.data(), d_y.data(), cuda::GemmOut::kBF16,
                                           m, n, k, 0.0f}),
                       "gemm");
    test::expect_close(test::bf16_to_floats(d_y.download()), test::to_doubles(want), 1e-3, kBf16Rel,
                       &scale, "bf16 out");
    auto d_acc = to_device(y0);  // beta = 1 adds into an f32 residual
    cuda::check_cublas(cuda::gemm(handle, {d_x.data(), d_w.data(), d_acc.data(),
                                           cuda::GemmOut::kF32, m, n, k, 1.0f}),
                       "gemm");
    std::vector<double> want_acc(want.size());
    for (size_t i = 0; i < want.size(); ++i) want_acc[i] = double(want[i]) + y0[i];
    test::expect_close(d_acc.download(), want_acc, 1e-3, 1e-4, &scale, "f32 accumulate");
  }
  cublasDestroy(handle);
}

// A decode row's bits must not depend on its batch: cuBLAS as CudaModel runs it (no workspace, so
// no split-K) gives a row the same bits at every row count, measured at Llama-3.1-8B's o_proj and
// down_proj shapes (with cuBLAS's default workspace these split k below 32 / 128 rows and differ;
// bench/results/decode_gemm_experiment_h100_2026-11-28.json).
TEST_F(CudaOpsTest, GemmGivesARowTheSameBitsAtEveryRowCount) {
  cublasHandle_t handle;
  cuda::check_cublas(cublasCreate(&handle), "cublasCreate");
  cuda::check_cublas(cublasSetWorkspace(handle, nullptr, 0), "cublasSetWorkspace");
  constexpr int64_t kRows = 4, kMaxRows = 300;
  for (auto [n, k] : {std::pair<int64_t, int64_t>{4096, 4096}, {4096, 14336}}) {
    std::vector<float> x = random_floats(size_t(kMaxRows * k), 11);
    std::vector<float> w = random_floats(size_t(n * k), 12);
    for (float& v : w) v *= 0.05f;
    auto d_x = to_device(round_to_bf16(x));
    auto d_w = to_device(round_to_bf16(w));
    DeviceBuffer<bf16> y(size_t(kMaxRows * n));
    std::vector<uint16_t> alone;  // rows 0..kRows-1, each computed as a batch of one
    for (int64_t r = 0; r < kRows; ++r) {
      cuda::check_cublas(cuda::gemm(handle, {d_x.data() + r * k, d_w.data(), y.data(),
                                             cuda::GemmOut::kBF16, 1, n, k, 0.0f}),
                         "gemm");
      std::vector<uint16_t> row = test::bf16_bits(y.download());
      alone.insert(alone.end(), row.begin(), row.begin() + n);
    }
    for (int64_t m : {int64_t(kRows), int64_t(32), int64_t(128), kMaxRows}) {
      cuda::check_cublas(cuda::gemm(handle, {d_x.data(), d_w.data(), y.data(), cuda::GemmOut::kBF16,
                                             m, n, k, 0.0f}),
                         "gemm");
      std::vector<uint16_t> got = test::bf16_bits(y.download());
      got.resize(alone.size());
      EXPECT_EQ(got, alone) << "n " << n << " k " << k << ": the first rows of a " << m
                            << "-row GEMM differ from the same rows alone";
    }
  }
  cublasDestroy(handle);
}

// few_rows_gemm must give every row cuBLAS's bits (no workspace, as CudaModel runs it), so a
// decode row's bits do not depend on which of the two ran its step: plain at Llama-3.1-8B's
// q/k/v, o_proj and down_proj shapes and small ones, fused with SiLU·mul against the gate/up GEMM
// followed by silu_mul, at every row count it takes; and close to the CPU's matmul.
TEST_F(CudaOpsTest, FewRowsGemmGivesCublasBitsAndMatchesCpu) {
  cublasHandle_t handle;
  cuda::check_cublas(cublasCreate(&handle), "cublasCreate");
  cuda::check_cublas(cublasSetWorkspace(handle, nullptr, 0), "cublasSetWorkspace");
  struct Shape {
    int64_t n, k;
    bool silu_mul;
  };
  for (const Shape& sh : {Shape{6144, 4096, false}, {4096, 4096, false}, {4096, 14336, false},
                          {2 * 14336, 4096, true}, {16, 64, false}, {144, 192, false},
                          {2 * 48, 320, true}, {2 * 1008, 128, true}}) {
    const int64_t cols = sh.silu_mul ? sh.n / 2 : sh.n, kMaxRows = cuda::kFewRowsGemmMaxRows;
    std::vector<float> x = random_floats(size_t(kMaxRows * sh.k), 21);
    std::vector<float> w = random_floats(size_t(sh.n * sh.k), 22);
    for (float& v : w) v *= 0.05f;
    auto d_x = to_device(round_to_bf16(x));
    auto d_w = to_device(round_to_bf16(w));
    DeviceBuffer<bf16> d_full(size_t(kMaxRows * sh.n)), d_want(size_t(kMaxRows * cols));
    DeviceBuffer<bf16> d_got(size_t(kMaxRows * cols));
    for (int64_t m : {1, 2, 3, 5, 8, 9, 13, 16}) {
      const std::string what = fmt::format("n {} k {} silu_mul {} m {}", sh.n, sh.k, sh.silu_mul, m);
      cuda::check_cublas(cuda::gemm(handle, {d_x.data(), d_w.data(), d_full.data(),
                                             cuda::GemmOut::kBF16, m, sh.n, sh.k, 0.0f}),
                         "gemm");
      if (sh.silu_mul) {
        check_cuda(cuda::silu_mul(d_full.data(), m, cols, d_want.data(), nullptr), "silu_mul");
      }
      const cuda::FewRowsGemmParams p{d_x.data(), d_w.data(), d_got.data(), m, sh.n, sh.k,
                                      sh.silu_mul};
      ASSERT_TRUE(cuda::few_rows_gemm_supported(p)) << what;
      check_cuda(cuda::few_rows_gemm(p, nullptr), "few_rows_gemm");
      check_cuda(cudaDeviceSynchronize(), "few_rows_gemm");
      std::vector<uint16_t> got = test::bf16_bits(d_got.download());
      std::vector<uint16_t> want =
          test::bf16_bits((sh.silu_mul ? d_want : d_full).download());
      got.resize(size_t(m * cols));
      want.resize(size_t(m * cols));
      size_t differ = 0;
      for (size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
      EXPECT_EQ(differ, 0u) << what << ": elements differing from cuBLAS";
      if (m == 3 && !sh.silu_mul) {  // the CPU's matmul, within bf16 rounding
        std::vector<float> ref(size_t(m * sh.n));
        cpu::matmul(x.data(), m, {w.data(), DType::kF32, sh.n, sh.k, nullptr}, ref.data(), nullptr);
        std::vector<double> scale(ref.size());
        for (size_t i = 0; i < ref.size(); ++i) {
          scale[i] = std::max(std::sqrt(double(sh.k)) * 0.05 / 3, std::abs(double(ref[i])));
        }
        std::vector<bf16> all = d_got.download();
        all.resize(ref.size());
        test::expect_close(test::bf16_to_floats(all), test::to_doubles(ref), 1e-3, kBf16Rel, &scale,
                           what);
      }
    }
  }
  // What it refuses: more than 16 rows, k not a multiple of 64, columns not a multiple of 16.
  DeviceBuffer<bf16> b(size_t(64 * 64 * 17));
  EXPECT_FALSE(cuda::few_rows_gemm_supported({b.data(), b.data(), b.data(), 17, 64, 64, false}));
  EXPECT_FALSE(cuda::few_rows_gemm_supported({b.data(), b.data(), b.data(), 1, 64, 96, false}));
  EXPECT_FALSE(cuda::few_rows_gemm_supported({b.data(), b.data(), b.data(), 1, 72, 64, false}));
  EXPECT_FALSE(cuda::few_rows_gemm_supported({b.data(), b.data(), b.data(), 1, 24, 64, true}));
  EXPECT_EQ(cuda::few_rows_gemm({b.data(), b.data(), b.data(), 0, 64, 64, false}, nullptr),
            cudaErrorInvalidValue);
  cublasDestroy(handle);
}

TEST_F(CudaOpsTest, GreedySampleTakesFirstMaximumAndItsLogprob) {
  for (auto [rows, vocab] : {std::pair{1, 10}, {3, 128256}, {33, 513}}) {
    std::vector<float> logits = random_floats(size_t(rows * vocab), 11, -5.0f, 5.0f);
    for (int r = 0; r < rows; ++r) {  // a tie at the maximum: the lower index wins
      logits[size_t(r * vocab + (r * 31) % vocab)] = 9.0f;
      logits[size_t(r * vocab + vocab - 1)] = 9.0f;
    }
    auto d_logits = to_device(logits);
    DeviceBuffer<int32_t> d_ids(static_cast<size_t>(rows));
    DeviceBuffer<float> d_lp(static_cast<size_t>(rows));
    DeviceBuffer<int32_t> d_invalid(static_cast<size_t>(rows));
    check_cuda(cuda::sample_tokens(d_logits.data(), rows, vocab, nullptr, d_ids.data(), d_lp.data(),
                                   d_invalid.data(), nullptr),
               "sample_tokens");
    std::vector<int32_t> ids = d_ids.download();
    std::vector<float> lp = d_lp.download();
    std::vector<int32_t> invalid = d_invalid.download();
    for (int r = 0; r < rows; ++r) {
      const float* row = logits.data() + size_t(r) * size_t(vocab);
      const int want = int(std::max_element(row, row + vocab) - row);
      double sum = 0;
      for (int j = 0; j < vocab; ++j) sum += std::exp(double(row[j]) - 9.0);
      EXPECT_EQ(ids[size_t(r)], want) << "row " << r;
      EXPECT_NEAR(lp[size_t(r)], -std::log(sum), 1e-4) << "row " << r;
      EXPECT_EQ(invalid[size_t(r)], 0) << "row " << r;
    }
  }
}

TEST_F(CudaOpsTest, GreedySampleFlagsRowsTheHostSamplerRejects) {
  // Rows: clean, one NaN, one +inf, all -inf, -inf except one finite value (valid).
  constexpr int kRows = 5, kVocab = 3000;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits = random_floats(size_t(kRows * kVocab), 5, -3.0f, 3.0f);
  logits[size_t(1 * kVocab + 2999)] = std::numeric_limits<float>::quiet_NaN();
  logits[size_t(2 * kVocab + 1234)] = inf;
  std::fill_n(logits.begin() + 3 * kVocab, 2 * kVocab, -inf);
  logits[size_t(4 * kVocab + 777)] = -50.0f;
  auto d_logits = to_device(logits);
  DeviceBuffer<int32_t> d_ids(size_t{kRows}), d_invalid(size_t{kRows});
  check_cuda(cuda::sample_tokens(d_logits.data(), kRows, kVocab, nullptr, d_ids.data(), nullptr,
                                 d_invalid.data(), nullptr),
             "sample_tokens");
  EXPECT_EQ(d_invalid.download(), (std::vector<int32_t>{0, 1, 1, 1, 0}));
  EXPECT_EQ(d_ids.download()[4], 777);
}

// The host sampler's stages on x / T (top-k with ties kept, top-p by (v desc, id asc), min-p) and
// the first kept id, in id order, whose running weight passes u times the kept total.
int reference_draw(const float* x, int vocab, const cuda::TokenDraw& d, bool* near_boundary) {
  std::vector<float> v(static_cast<size_t>(vocab));
  for (int j = 0; j < vocab; ++j) v[size_t(j)] = x[j] / d.temperature;
  const float top = *std::max_element(v.begin(), v.end());
  std::vector<int> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
  });
  std::vector<double> w(static_cast<size_t>(vocab));
  for (int j = 0; j < vocab; ++j) w[size_t(j)] = std::exp(double(v[size_t(j)] - top));
  std::vector<char> kept(static_cast<size_t>(vocab), 1);
  if (d.top_k > 0 && d.top_k < vocab) {
    const float kth = v[size_t(order[size_t(d.top_k - 1)])];
    for (int j = 0; j < vocab; ++j) kept[size_t(j)] = v[size_t(j)] >= kth;
  }
  *near_boundary = false;
  if (d.top_p < 1.0f) {
    double total = 0.0;
    for (int j = 0; j < vocab; ++j) total += kept[size_t(j)] ? w[size_t(j)] : 0.0;
    const double target = double(d.top_p) * total;
    double above = 0.0;
    for (int j : order) {
      if (!kept[size_t(j)]) continue;
      if (above >= target) {
        kept[size_t(j)] = 0;
        continue;
      }
      *near_boundary |= std::abs(above + w[size_t(j)] - target) < 1e-5 * total;
      above += w[size_t(j)];
    }
  }
  for (int j = 0; j < vocab; ++j) {
    if (d.min_p > 0.0f && w[size_t(j)] < d.min_p) kept[size_t(j)] = 0;
  }
  double total = 0.0;
  for (int j = 0; j < vocab; ++j) total += kept[size_t(j)] ? w[size_t(j)] : 0.0;
  const double target = d.u * total;
  double running = 0.0;
  for (int j = 0; j < vocab; ++j) {
    if (!kept[size_t(j)]) continue;
    running += w[size_t(j)];
    if (running > target) {
      *near_boundary |=
          running - target < 1e-5 * total || target - (running - w[size_t(j)]) < 1e-5 * total;
      return j;
    }
  }
  return -1;
}

// 256 ids of each row hold the mass (the rest sit at -30), so an id's share is wide; a draw
// within 1e-5 of the total from a boundary is skipped (the device's exp and summation order
// differ from the reference's by far less).
TEST_F(CudaOpsTest, SampleTokensCutsAndDrawsAsTheHostSampler) {
  constexpr int kVocab = 128256, kMassIds = 256;
  std::vector<cuda::TokenDraw> draws = {{.temperature = 1.0f},
                                        {.temperature = 0.7f, .top_k = 50},
                                        {.temperature = 1.5f, .top_p = 0.8f},
                                        {.temperature = 1.0f, .top_p = 0.9f, .min_p = 0.05f},
                                        {.temperature = 0.9f, .top_p = 0.5f, .top_k = 100},
                                        {.temperature = 0.0f}};
  const int rows = int(draws.size());
  std::vector<float> logits(size_t(rows) * kVocab, -30.0f);
  const std::vector<float> mass = random_floats(size_t(rows) * kMassIds, 23, 0.0f, 3.0f);
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < kMassIds; ++k) {
      logits[size_t(r) * kVocab + 500 * k + r] = mass[size_t(r * kMassIds + k)];
    }
  }
  // ties at row 2's top-p cut region: equal values, the lower id ranks first
  logits[size_t(2) * kVocab + 7] = logits[size_t(2) * kVocab + 500 * 3 + 2];
  auto d_logits = to_device(logits);
  DeviceBuffer<int32_t> d_ids(static_cast<size_t>(rows));
  DeviceBuffer<float> d_lp(static_cast<size_t>(rows));
  int checked = 0;
  for (double u0 : {0.001, 0.25, 0.5, 0.8, 0.999}) {
    for (int r = 0; r < rows; ++r) draws[size_t(r)].u = std::fmod(u0 + 0.13 * r, 1.0);
    auto d_draws = to_device(draws);
    check_cuda(cuda::sample_tokens(d_logits.data(), rows, kVocab, d_draws.data(), d_ids.data(),
                                   d_lp.data(), nullptr, nullptr),
               "sample_tokens");
    const std::vector<int32_t> ids = d_ids.download();
    const std::vector<float> lp = d_lp.download();
    for (int r = 0; r < rows; ++r) {
      const float* row = logits.data() + size_t(r) * kVocab;
      const float mx = *std::max_element(row, row + kVocab);
      double z = 0;
      for (int j = 0; j < kVocab; ++j) z += std::exp(double(row[j]) - mx);
      bool near_boundary = false;
      const int want = draws[size_t(r)].temperature > 0.0f
                           ? reference_draw(row, kVocab, draws[size_t(r)], &near_boundary)
                           : int(std::max_element(row, row + kVocab) - row);
      if (near_boundary) continue;
      ++checked;
      EXPECT_EQ(ids[size_t(r)], want) << "row " << r << " u " << draws[size_t(r)].u;
      EXPECT_NEAR(lp[size_t(r)], double(row[want]) - mx - std::log(z), 1e-4) << "row " << r;
    }
  }
  EXPECT_GE(checked, 27);  // of 30
}

// Rows of 16-byte, 4-byte and 1-byte multiples (each copy width), from strided sources into
// strided destinations, against a memcpy per row; the bytes past each row stay as they were.
TEST_F(CudaOpsTest, GatherRowsCopiesTheChosenRows) {
  for (auto [row_bytes, src_stride, dst_stride] : {std::tuple{16384, 16384, 16384},
                                                   {8192, 12288, 8192},
                                                   {128, 384, 160},
                                                   {12, 20, 16},
                                                   {7, 9, 7},
                                                   {1, 3, 2}}) {
    const int64_t src_rows = 37;
    const std::vector<int32_t> rows = {36, 0, 5, 6, 35, 17, 17};
    std::vector<uint8_t> src(size_t(src_rows * src_stride));
    for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 131 + i / 7);
    std::vector<uint8_t> want(size_t(int64_t(rows.size()) * dst_stride), 0xAB);
    for (size_t i = 0; i < rows.size(); ++i) {
      std::copy_n(src.begin() + rows[i] * src_stride, row_bytes,
                  want.begin() + int64_t(i) * dst_stride);
    }
    auto d_src = to_device(src);
    auto d_rows = to_device(rows);
    auto d_dst = to_device(std::vector<uint8_t>(want.size(), 0xAB));
    check_cuda(cuda::gather_rows({d_src.data(), src_stride, d_dst.data(), dst_stride, row_bytes,
                                  d_rows.data(), int64_t(rows.size())},
                                 nullptr),
               "gather_rows");
    EXPECT_EQ(d_dst.download(), want) << row_bytes << " bytes a row";
  }
}

TEST_F(CudaOpsTest, LaunchersRejectBadSizes) {
  EXPECT_EQ(cuda::gather_rows({nullptr, 4, nullptr, 4, 8, nullptr, 1}, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rms_norm({nullptr, nullptr, nullptr, nullptr, nullptr, 3, 0, 1e-5f}, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::silu_mul(nullptr, 2, 0, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::sample_tokens(nullptr, 1, 4, nullptr, nullptr, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
  cuda::RopeStoreKvParams p;
  p.n = 1;
  p.head_dim = 7;
  EXPECT_EQ(cuda::rope_store_kv(p, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace tandem
