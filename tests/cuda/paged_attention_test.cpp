// The CUDA paged attention (both kernels) against the CPU reference cpu::paged_attention on the
// same bf16-rounded queries and cache: mixed batches of decode, prefill and chunked prefill over a
// cached prefix, 1-token sequences, lengths around block and tile boundaries, GQA ratios 1/2/4/8,
// head_dim 8/16/64/128 (and 32/256 on the split-KV kernel's generic path), scattered block tables,
// split-KV decodes across split boundaries and at 8K+ contexts, and a grid sized past every
// sequence (as CUDA graphs size it), whose empty splits must not count in the combine.
#include "kernels/cpu/paged_attention.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "kernels/cuda/paged_attention.cuh"
#include "kernels/kernel_test_util.h"

namespace tandem {
namespace {

using cuda::AttentionKernel;
using cuda::bf16;
using cuda::DeviceBuffer;
using cuda::to_device;

struct Case {
  int heads, kv_heads, head_dim, block_size;
  std::vector<std::pair<int, int>> seqs;  // (q_len, context_len)
};

struct CaseResult {
  std::vector<bf16> got;    // the GPU's output
  std::vector<float> want;  // the CPU reference's
};

// The kernel's parameters for a batch: case `c`'s shapes (scale 1 / sqrt(head_dim)), queries `q`
// in rows `q_stride` apart, caches `k` and `v`, output `out`, and the batch's layout, uploaded
// here — each sequence's first query row (num_seqs + 1 of them, [0] = 0), its context length and
// its row of `tables` (num_seqs rows of equal length) — with the batch's own maxima. No
// workspace.
struct DeviceBatch {
  DeviceBatch(const Case& c, const std::vector<int32_t>& query_start,
              const std::vector<int32_t>& context_lens, const std::vector<int32_t>& tables,
              const bf16* q, int64_t q_stride, const bf16* k, const bf16* v, bf16* out)
      : d_query_start(to_device(query_start)),
        d_context_lens(to_device(context_lens)),
        d_tables(to_device(tables)) {
    params.q = q;
    params.q_stride = q_stride;
    params.k_cache = k;
    params.v_cache = v;
    params.out = out;
    params.query_start = d_query_start.data();
    params.context_lens = d_context_lens.data();
    params.block_tables = d_tables.data();
    params.max_blocks_per_seq = int32_t(tables.size() / context_lens.size());
    params.num_seqs = int32_t(context_lens.size());
    params.num_tokens = query_start.back();
    for (size_t s = 0; s < context_lens.size(); ++s) {
      params.max_query_len = std::max(params.max_query_len, query_start[s + 1] - query_start[s]);
      params.max_context_len = std::max(params.max_context_len, context_lens[s]);
    }
    params.num_heads = c.heads;
    params.num_kv_heads = c.kv_heads;
    params.head_dim = c.head_dim;
    params.block_size = c.block_size;
    params.scale = 1.0f / std::sqrt(float(c.head_dim));
  }

  DeviceBuffer<int32_t> d_query_start, d_context_lens, d_tables;
  cuda::PagedAttentionParams params;
};

// Runs one case through `kernel` and the CPU reference on the same data (a function of the case
// and `seed`). `context_pad` raises the host-side max_context_len past every sequence's (graph
// replays and batches with a longer sequence do); `tell_slots` false leaves num_cache_slots unknown
// (the prefill kernel then loads through cp.async instead of TMA).
CaseResult run_case(const Case& c, AttentionKernel kernel, uint32_t seed, int context_pad = 0,
                    bool tell_slots = true, int splits_per_block = 0) {
  const int hd = c.head_dim, bs = c.block_size;
  const int64_t kv_dim = int64_t(c.kv_heads) * hd, q_dim = int64_t(c.heads) * hd;
  int max_ctx = 0, blocks_needed = 0;
  for (auto [q, ctx] : c.seqs) {
    max_ctx = std::max(max_ctx, ctx);
    blocks_needed += (ctx + bs - 1) / bs;
  }
  const int max_blocks = (max_ctx + bs - 1) / bs;
  const int64_t num_blocks = blocks_needed + 3;
  std::vector<int32_t> free(static_cast<size_t>(num_blocks));
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), std::mt19937(seed));
  std::vector<int32_t> query_start{0}, context_lens, tables(c.seqs.size() * size_t(max_blocks), 0);
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    query_start.push_back(query_start.back() + c.seqs[s].first);
    context_lens.push_back(c.seqs[s].second);
    for (int b = 0; b * bs < c.seqs[s].second; ++b) {
      tables[s * size_t(max_blocks) + size_t(b)] = free.back();
      free.pop_back();
    }
  }
  const int num_tokens = query_start.back();
  const int64_t q_stride = q_dim + 2 * kv_dim;  // queries live inside a fused QKV row
  std::vector<float> q = test::random_floats(size_t(num_tokens * q_stride), seed + 1, -2.0f, 2.0f);
  std::vector<float> k = test::random_floats(size_t(num_blocks * bs * kv_dim), seed + 2);
  std::vector<float> v = test::random_floats(size_t(num_blocks * bs * kv_dim), seed + 3);
  auto d_q = to_device(test::round_to_bf16(q));
  auto d_k = to_device(test::round_to_bf16(k));
  auto d_v = to_device(test::round_to_bf16(v));
  DeviceBuffer<bf16> d_out(size_t(num_tokens * q_dim));
  DeviceBuffer<float> d_ws(cuda::paged_attention_workspace_bytes(c.heads, hd) / sizeof(float));

  DeviceBatch batch(c, query_start, context_lens, tables, d_q.data(), q_stride, d_k.data(),
                    d_v.data(), d_out.data());
  cuda::PagedAttentionParams& p = batch.params;
  p.max_context_len += context_pad;
  p.num_cache_slots = tell_slots ? num_blocks * bs : 0;
  p.workspace = d_ws.data();
  p.workspace_bytes = d_ws.size() * sizeof(float);
  p.split_kv_splits_per_block = splits_per_block;
  cuda::check_cuda(cuda::paged_attention(p, nullptr, kernel), "paged_attention");
  cuda::check_cuda(cudaDeviceSynchronize(), "paged_attention run");

  std::vector<float> q_dense(size_t(num_tokens * q_dim));
  for (int t = 0; t < num_tokens; ++t) {
    std::copy_n(q.begin() + t * q_stride, q_dim, q_dense.begin() + t * q_dim);
  }
  std::vector<float> want(q_dense.size());
  cpu::PagedAttentionParams r;
  r.q = q_dense.data();
  r.k_cache = k.data();
  r.v_cache = v.data();
  r.out = want.data();
  r.query_start = query_start.data();
  r.context_lens = context_lens.data();
  r.block_tables = tables.data();
  r.max_blocks_per_seq = max_blocks;
  r.num_seqs = p.num_seqs;
  r.num_heads = c.heads;
  r.num_kv_heads = c.kv_heads;
  r.head_dim = hd;
  r.block_size = bs;
  r.num_blocks = num_blocks;
  r.scale = p.scale;
  cpu::paged_attention(r, nullptr);
  return {d_out.download(), want};
}

// Expects the GPU within bf16 tolerance of the CPU reference.
void check_case(const Case& c, AttentionKernel kernel, uint32_t seed, int context_pad = 0) {
  const CaseResult r = run_case(c, kernel, seed, context_pad);
  // Outputs are convex combinations of values in [-1, 1]: bf16 output rounding plus bf16
  // probabilities (tensor-core kernels) stay well inside 1e-2.
  test::expect_close(test::bf16_to_floats(r.got), test::to_doubles(r.want), 1e-2, 1e-2, nullptr,
                     fmt::format("heads {}/{} hd {} bs {} kernel {}", c.heads, c.kv_heads,
                                 c.head_dim, c.block_size, int(kernel)));
}

std::vector<Case> sweep() {
  std::vector<Case> cases;
  // (q_len, ctx): decode, 1-token prompt, block/tile boundaries, chunked prefill over a prefix.
  const std::vector<std::pair<int, int>> mixed{{1, 1},   {1, 17},  {16, 16}, {17, 17},  {5, 33},
                                               {64, 64}, {65, 65}, {1, 300}, {70, 200}, {3, 129}};
  for (int hd : {8, 16, 64, 128}) {
    for (auto [heads, kv] : {std::pair{4, 4}, {8, 4}, {8, 2}, {8, 1}}) {
      cases.push_back({heads, kv, hd, 16, mixed});
    }
  }
  cases.push_back({6, 2, 64, 32, mixed});  // another block size, GQA 3
  cases.push_back({32, 8, 128, 16, {{300, 300}, {1, 1}, {128, 1000}, {129, 129}, {128, 128}}});
  return cases;
}

class CudaPagedAttentionTest : public test::CudaTest {};

TEST_F(CudaPagedAttentionTest, SplitKvMatchesCpuOverSweep) {
  uint32_t seed = 100;
  for (const Case& c : sweep()) check_case(c, AttentionKernel::kSplitKv, seed += 10);
}

// kTensorCore takes the wgmma kernel with TMA loads at head_dim 128, kTensorCoreCpAsync the one
// with cp.async loads, kTensorCoreMmaSync the mma.sync one.
TEST_F(CudaPagedAttentionTest, TensorCoreMatchesCpuOverSweep) {
  uint32_t seed = 200;
  for (const Case& c : sweep()) {
    if (c.head_dim != 64 && c.head_dim != 128) continue;
    check_case(c, AttentionKernel::kTensorCore, seed += 10);
    if (c.head_dim == 128) {
      check_case(c, AttentionKernel::kTensorCoreCpAsync, seed);
      check_case(c, AttentionKernel::kTensorCoreMmaSync, seed);
    }
  }
}

// The TMA kernel at every block size it takes (multiples of 8 dividing 128: one TMA box a block)
// and the fallback to cp.async loads for the others and for an unknown cache size: within
// tolerance of the CPU, and bit for bit the cp.async kernel's (the same math in the same order;
// keys past a sequence read as zeros or stale finite values under a zero probability).
TEST_F(CudaPagedAttentionTest, TmaPrefillMatchesCpuAndTheCpAsyncKernelAtEveryBlockSize) {
  const std::vector<std::pair<int, int>> seqs{{300, 300}, {16, 16},    {129, 129}, {1, 40},
                                              {700, 900}, {255, 1000}, {17, 145}};
  uint32_t seed = 500;
  for (int bs : {8, 16, 32, 64, 128, 24, 1}) {
    for (auto [heads, kv] : {std::pair{32, 8}, {8, 8}, {8, 1}}) {
      const Case c{heads, kv, 128, bs, seqs};
      seed += 10;
      check_case(c, AttentionKernel::kTensorCore, seed);
      const CaseResult tma = run_case(c, AttentionKernel::kTensorCore, seed);
      const CaseResult cp_async = run_case(c, AttentionKernel::kTensorCoreCpAsync, seed);
      const CaseResult unknown = run_case(c, AttentionKernel::kTensorCore, seed, 0, false);
      EXPECT_EQ(test::bf16_bits(tma.got), test::bf16_bits(cp_async.got))
          << "block size " << bs << " heads " << heads << "/" << kv;
      EXPECT_EQ(test::bf16_bits(unknown.got), test::bf16_bits(cp_async.got))
          << "block size " << bs << " heads " << heads << "/" << kv;
    }
  }
}

TEST_F(CudaPagedAttentionTest, AutoMatchesCpuOverSweep) {
  uint32_t seed = 300;
  for (const Case& c : sweep()) check_case(c, AttentionKernel::kAuto, seed += 10);
}

TEST_F(CudaPagedAttentionTest, LongContextDecodeSplitsAndMatchesCpu) {
  check_case({32, 8, 128, 16, {{1, 8200}}}, AttentionKernel::kSplitKv, 7);
  check_case({32, 8, 128, 16, {{1, 8200}, {1, 3000}, {1, 1}, {1, 4097}}}, AttentionKernel::kAuto,
             8);
  check_case({32, 8, 128, 16, {{200, 8200}}}, AttentionKernel::kTensorCore, 9);
  check_case({32, 8, 128, 16, {{200, 8200}}}, AttentionKernel::kTensorCoreCpAsync, 9);
  check_case({32, 8, 128, 16, {{200, 8200}}}, AttentionKernel::kTensorCoreMmaSync, 9);
  // a long prompt against itself: many 128-key tiles, the diagonal ones masked
  check_case({32, 8, 128, 16, {{1500, 1500}, {700, 900}}}, AttentionKernel::kTensorCore, 11);
  // past the splits whose partials the merge loads up front (64 at head_dim 128, 128 at 64)
  check_case({8, 1, 64, 16, {{1, 17000}, {1, 5}}}, AttentionKernel::kSplitKv, 10);
}

// Rows whose keys end just before, at and after multiples of 128 and 256 keys (split lengths),
// multi-token rows straddling one, every GQA ratio up to 8, block sizes 1 and 7, and head sizes
// 16..256 (32 and 256 take the generic head_dim path).
TEST_F(CudaPagedAttentionTest, SplitKvAcrossSplitBoundariesGroupsAndHeadSizes) {
  const std::vector<std::pair<int, int>> seqs{{1, 255}, {1, 256},  {1, 257}, {5, 514},
                                              {1, 1},   {3, 1030}, {1, 2000}};
  uint32_t seed = 400;
  for (int hd : {16, 64, 128}) {
    for (auto [heads, kv] : {std::pair{8, 8}, {8, 4}, {12, 4}, {8, 2}, {40, 5}, {8, 1}}) {
      check_case({heads, kv, hd, 16, seqs}, AttentionKernel::kSplitKv, seed += 10);
    }
  }
  check_case({8, 2, 64, 1, seqs}, AttentionKernel::kSplitKv, seed += 10);
  check_case({6, 2, 128, 7, seqs}, AttentionKernel::kSplitKv, seed += 10);
  check_case({8, 2, 32, 16, seqs}, AttentionKernel::kSplitKv, seed += 10);
  check_case({8, 1, 256, 16, seqs}, AttentionKernel::kSplitKv, seed += 10);
  check_case({4, 4, 256, 16, seqs}, AttentionKernel::kSplitKv, seed += 10);
}

TEST_F(CudaPagedAttentionTest, SplitKvGridSizedPastEverySequence) {
  check_case({32, 8, 128, 16, {{1, 7500}, {1, 1}, {1, 300}, {1, 4096}}}, AttentionKernel::kSplitKv,
             500, /*context_pad=*/8192 - 7500);
  check_case({8, 1, 64, 16, {{1, 70}, {2, 513}}}, AttentionKernel::kAuto, 501,
             /*context_pad=*/4000);
}

// A decode row whose keys fit one split is finished in the split-KV kernel when the launch has
// one split, and by combine_kernel when a longer sequence in the batch (or a graph's padding)
// gives the launch more: both must give the same bits, or a sequence's tokens would depend on
// its batch. Both the CUDA-core (head_dim 8) and the tensor-core (128) kernels.
TEST_F(CudaPagedAttentionTest, SplitKvGivesTheSameBitsWhateverTheLaunchSplitsInto) {
  uint32_t seed = 700;
  for (int hd : {8, 128}) {
    for (int ctx : {1, 37, 128}) {
      const Case c{8, 2, hd, 16, {{1, ctx}, {1, std::max(1, ctx - 5)}}};
      seed += 10;
      const CaseResult one_split = run_case(c, AttentionKernel::kSplitKv, seed);
      // up to 16 splits merge in the warp kernel (tensor-core head sizes), more in the block one
      for (int pad : {1000, 3000}) {
        const CaseResult many = run_case(c, AttentionKernel::kSplitKv, seed, /*context_pad=*/pad);
        EXPECT_EQ(test::bf16_bits(one_split.got), test::bf16_bits(many.got))
            << "hd " << hd << " context " << ctx << " pad " << pad;
      }
    }
  }
}

// A split-KV block may walk several of a row's splits (the launcher picks how many from the
// batch's size) and fold them along the split tree itself, leaving fewer nodes to merge: a row
// must get the same bits however many splits a block takes — 1, 2, 4, what 3, 5, 16 and 1000 are
// rounded to, and the launcher's choice — in decode-only and mixed batches (rows shorter than the
// launch's longest, whose last blocks hold no keys), both head sizes, both merge kernels.
TEST_F(CudaPagedAttentionTest, SplitKvGivesTheSameBitsWhateverTheSplitsPerBlock) {
  uint32_t seed = 1100;
  const std::vector<std::vector<std::pair<int, int>>> batches{
      {{1, 2048}, {1, 2048}, {1, 1}, {1, 700}},  // decode-only, one empty-ish row
      {{1, 7500}, {1, 129}},
      {{3, 1500}, {1, 300}, {2, 4097}}};  // few-token rows: the mixed-batch path
  for (int hd : {64, 128}) {
    for (const auto& seqs : batches) {
      const Case c{8, 2, hd, 16, seqs};
      seed += 10;
      for (AttentionKernel kernel :
           {AttentionKernel::kSplitKvBlockMerge, AttentionKernel::kSplitKvWarpMerge}) {
        const CaseResult one = run_case(c, kernel, seed, 0, true, /*splits_per_block=*/1);
        test::expect_close(test::bf16_to_floats(one.got), test::to_doubles(one.want), 1e-2, 1e-2,
                           nullptr, fmt::format("one split a block, hd {}", hd));
        for (int per_block : {0, 2, 3, 5, 16, 1000}) {
          const CaseResult many = run_case(c, kernel, seed, 0, true, per_block);
          EXPECT_EQ(test::bf16_bits(one.got), test::bf16_bits(many.got))
              << "hd " << hd << " splits per block " << per_block << " seqs " << seqs.size();
        }
      }
    }
  }
}

// Split-KV merges the splits with one of two kernels, picked by the launch's node count (a warp
// a row up to 16, a block a row past that): a row must get the same bits from either, or its
// tokens would depend on its batch. Contexts over 1, tens and past 512 splits (the block kernel
// folds aligned runs of nodes, then their roots), both head sizes.
TEST_F(CudaPagedAttentionTest, SplitKvMergeKernelsGiveTheSameBits) {
  uint32_t seed = 900;
  const std::vector<std::vector<std::pair<int, int>>> batches{
      {{1, 2048}, {1, 1}, {4, 1500}},  // every split in the warp kernel's first loads
      {{1, 7500}, {1, 1}, {1, 300}, {2, 4097}},
      {{1, 70000}, {1, 129}, {3, 640}}};
  for (int hd : {64, 128}) {
    for (const auto& seqs : batches) {
      const Case c{8, 2, hd, 16, seqs};
      seed += 10;
      const CaseResult block = run_case(c, AttentionKernel::kSplitKvBlockMerge, seed);
      const CaseResult warp = run_case(c, AttentionKernel::kSplitKvWarpMerge, seed);
      EXPECT_EQ(test::bf16_bits(block.got), test::bf16_bits(warp.got)) << "hd " << hd;
      test::expect_close(test::bf16_to_floats(warp.got), test::to_doubles(warp.want), 1e-2, 1e-2,
                         nullptr, fmt::format("warp merge, hd {}", hd));
    }
  }
}

// The kernels move 16-byte chunks: queries or caches off a 16-byte boundary, or a query stride
// that puts rows off one, are refused before anything launches; the same call aligned runs.
TEST_F(CudaPagedAttentionTest, RejectsMisalignedQueriesAndCaches) {
  const int hd = 64, bs = 16;
  DeviceBuffer<bf16> q{size_t(2 * hd)}, k{size_t(bs * hd + 8)}, v{size_t(bs * hd + 8)},
      out{size_t(hd)};
  for (DeviceBuffer<bf16>* b : {&q, &k, &v}) {
    cuda::check_cuda(cudaMemset(b->data(), 0, b->size() * sizeof(bf16)), "memset");
  }
  const DeviceBatch batch({1, 1, hd, bs, {{1, 1}}}, {0, 1}, {1}, {0}, q.data(), hd, k.data(),
                          v.data(), out.data());
  const cuda::PagedAttentionParams& p = batch.params;
  ASSERT_EQ(cuda::paged_attention(p, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  auto with = [&](auto change) {
    cuda::PagedAttentionParams changed = p;
    change(changed);
    return cuda::paged_attention(changed, nullptr);
  };
  EXPECT_EQ(with([&](auto& c) { c.q = q.data() + 4; }), cudaErrorInvalidValue);
  EXPECT_EQ(with([&](auto& c) { c.q_stride = hd + 4; }), cudaErrorInvalidValue);
  EXPECT_EQ(with([&](auto& c) { c.k_cache = k.data() + 1; }), cudaErrorInvalidValue);
  EXPECT_EQ(with([&](auto& c) { c.v_cache = v.data() + 2; }), cudaErrorInvalidValue);
}

TEST_F(CudaPagedAttentionTest, RejectsUnsupportedShapes) {
  cuda::PagedAttentionParams p;
  p.num_tokens = 1;
  p.num_heads = 32;
  p.num_kv_heads = 2;  // a group of 16 > 8
  p.head_dim = 128;
  EXPECT_EQ(cuda::paged_attention(p, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace tandem
