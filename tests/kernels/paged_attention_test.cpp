// paged_attention (with store_kv filling the cache) against a naive double-precision causal GQA
// attention over contiguous K/V: mixed batches of decode, prefill and chunked-prefill sequences,
// scattered block tables, GQA ratios 1/2/4/8 and MQA, head_dim 8/16/64/128, several block sizes;
// chunked prefill equal to one prefill; errors for bad block tables.
#include "kernels/cpu/paged_attention.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/store_kv.h"

namespace tandem {
namespace {

struct Dims {
  int heads, kv_heads, head_dim, block_size;
  int64_t num_blocks = 64;
  int max_blocks_per_seq = 16;
};

// A sequence: its whole K/V history, this step's queries, and where its blocks live.
struct SeqData {
  int q_len = 0, ctx = 0;
  std::vector<float> k, v;      // (ctx, kv_heads, head_dim) every position, contiguous
  std::vector<float> q;         // (q_len, heads, head_dim) the last q_len positions' queries
  std::vector<int32_t> blocks;  // (max_blocks_per_seq) block table row, -1 past the end
};

// A paged cache plus block tables for `shapes` (q_len, ctx), blocks drawn in scrambled order.
struct PagedSetup {
  Dims d;
  std::vector<SeqData> seqs;
  std::vector<float> k_cache, v_cache;  // (num_blocks, block_size, kv_heads, head_dim)

  PagedSetup(const Dims& dims, const std::vector<std::pair<int, int>>& shapes, uint32_t seed)
      : d(dims) {
    const int64_t kv_dim = int64_t(d.kv_heads) * d.head_dim;
    k_cache.assign(size_t(d.num_blocks * d.block_size * kv_dim), 0.0f);
    v_cache = k_cache;
    std::vector<int32_t> free(size_t(d.num_blocks));
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), std::mt19937(seed));
    for (auto [q_len, ctx] : shapes) {
      SeqData s;
      s.q_len = q_len;
      s.ctx = ctx;
      s.k = test::random_floats(size_t(ctx * kv_dim), ++seed);
      s.v = test::random_floats(size_t(ctx * kv_dim), ++seed);
      s.q = test::random_floats(size_t(q_len) * size_t(d.heads * d.head_dim), ++seed);
      s.blocks.assign(size_t(d.max_blocks_per_seq), -1);
      for (int b = 0; b * d.block_size < ctx; ++b) {
        s.blocks[size_t(b)] = free.back();
        free.pop_back();
      }
      seqs.push_back(std::move(s));
    }
  }

  // Stores positions [begin, end) of sequence `s` into the cache through store_kv.
  void store(const SeqData& s, int begin, int end) {
    const int64_t kv_dim = int64_t(d.kv_heads) * d.head_dim;
    std::vector<int64_t> slots;
    for (int p = begin; p < end; ++p)
      slots.push_back(int64_t(s.blocks[size_t(p / d.block_size)]) * d.block_size +
                      p % d.block_size);
    cpu::store_kv(s.k.data() + begin * kv_dim, s.v.data() + begin * kv_dim, slots.data(),
                  end - begin, kv_dim, d.num_blocks * d.block_size, k_cache.data(), v_cache.data());
  }
};

// Naive causal GQA attention in double for one sequence: (q_len, heads, head_dim).
std::vector<double> reference_attention(const SeqData& s, const Dims& d) {
  const int hd = d.head_dim, group = d.heads / d.kv_heads;
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<double> out(size_t(s.q_len * d.heads * hd), 0.0);
  for (int i = 0; i < s.q_len; ++i) {
    const int last = s.ctx - s.q_len + i;
    for (int h = 0; h < d.heads; ++h) {
      const float* q = s.q.data() + (i * d.heads + h) * hd;
      std::vector<double> w(size_t(last + 1));
      for (int j = 0; j <= last; ++j) {
        const float* k = s.k.data() + (j * d.kv_heads + h / group) * hd;
        double dot = 0;
        for (int t = 0; t < hd; ++t) dot += double(q[t]) * k[t];
        w[size_t(j)] = dot * scale;
      }
      const double m = *std::max_element(w.begin(), w.end());
      double sum = 0;
      for (double& x : w) sum += (x = std::exp(x - m));
      for (int j = 0; j <= last; ++j) {
        const float* v = s.v.data() + (j * d.kv_heads + h / group) * hd;
        for (int t = 0; t < hd; ++t)
          out[size_t((i * d.heads + h) * hd + t)] += w[size_t(j)] / sum * v[t];
      }
    }
  }
  return out;
}

// Runs paged_attention over all of `setup`'s sequences as one flat batch: (tokens, heads, hd).
std::vector<float> run_batch(PagedSetup& setup, ThreadPool* pool) {
  const Dims& d = setup.d;
  std::vector<int32_t> query_start = {0}, context_lens, tables;
  std::vector<float> q;
  for (const SeqData& s : setup.seqs) {
    query_start.push_back(query_start.back() + s.q_len);
    context_lens.push_back(s.ctx);
    tables.insert(tables.end(), s.blocks.begin(), s.blocks.end());
    q.insert(q.end(), s.q.begin(), s.q.end());
  }
  std::vector<float> out(q.size(), NAN);
  cpu::PagedAttentionParams p;
  p.q = q.data();
  p.k_cache = setup.k_cache.data();
  p.v_cache = setup.v_cache.data();
  p.out = out.data();
  p.query_start = query_start.data();
  p.context_lens = context_lens.data();
  p.block_tables = tables.data();
  p.max_blocks_per_seq = d.max_blocks_per_seq;
  p.num_seqs = int32_t(setup.seqs.size());
  p.num_heads = d.heads;
  p.num_kv_heads = d.kv_heads;
  p.head_dim = d.head_dim;
  p.block_size = d.block_size;
  p.num_blocks = d.num_blocks;
  p.scale = float(1.0 / std::sqrt(double(d.head_dim)));
  cpu::paged_attention(p, pool);
  return out;
}

TEST(PagedAttention, MixedBatchMatchesDoubleReference) {
  ThreadPool pool(3);
  // (q_len, ctx): fresh single token, decode, prefill across a block edge, chunk over a cached
  // prefix, exactly two full blocks, a long decode.
  const std::vector<std::pair<int, int>> shapes = {{1, 1},  {1, 33},  {17, 17},
                                                   {7, 30}, {32, 32}, {1, 100}};
  uint32_t seed = 1;
  for (auto [heads, kv_heads] :
       std::vector<std::pair<int, int>>{{4, 4}, {4, 2}, {8, 2}, {16, 2}, {8, 1}}) {
    for (int head_dim : {8, 16, 64, 128}) {
      for (int block_size : {16, 5, 1}) {
        const Dims d{heads, kv_heads, head_dim, block_size, 256, 128};
        PagedSetup setup(d, shapes, seed += 10);
        for (const SeqData& s : setup.seqs) setup.store(s, 0, s.ctx);
        const auto got = run_batch(setup, seed % 2 ? &pool : nullptr);
        std::vector<double> want;
        for (const SeqData& s : setup.seqs) {
          const auto r = reference_attention(s, d);
          want.insert(want.end(), r.begin(), r.end());
        }
        test::expect_close(
            got, want, 2e-6, 1e-5, nullptr,
            fmt::format("heads {}/{} head_dim {} block {}", heads, kv_heads, head_dim, block_size));
      }
    }
  }
}

// The same 45-token prompt attended in one prefill and in chunks of 7 (each chunk's K/V stored
// just before its attention) gives bit-identical rows.
TEST(PagedAttention, ChunkedPrefillEqualsOnePrefill) {
  const Dims d{8, 2, 16, 16};
  const int len = 45, chunk = 7;
  PagedSetup whole(d, {{len, len}}, 5);
  whole.store(whole.seqs[0], 0, len);
  const auto want = run_batch(whole, nullptr);
  const int row = d.heads * d.head_dim;
  for (int begin = 0; begin < len; begin += chunk) {
    const int end = std::min(len, begin + chunk);
    PagedSetup part = whole;  // same K/V history and block table
    SeqData& s = part.seqs[0];
    s.q_len = end - begin;
    s.ctx = end;
    s.q.assign(whole.seqs[0].q.begin() + begin * row, whole.seqs[0].q.begin() + end * row);
    std::fill(part.k_cache.begin(), part.k_cache.end(), 0.0f);  // only positions < end cached
    std::fill(part.v_cache.begin(), part.v_cache.end(), 0.0f);
    part.store(s, 0, end);
    const auto got = run_batch(part, nullptr);
    for (int i = 0; i < (end - begin) * row; ++i)
      ASSERT_EQ(got[size_t(i)], want[size_t(begin * row + i)]) << "chunk at " << begin << " " << i;
  }
}

TEST(PagedAttention, RejectsBadBlockTablesAndShapes) {
  const Dims d{4, 2, 8, 4, 8, 4};
  PagedSetup setup(d, {{3, 10}}, 9);
  setup.store(setup.seqs[0], 0, 10);
  setup.seqs[0].blocks[1] = 8;  // == num_blocks
  EXPECT_THROW(run_batch(setup, nullptr), Error);
  setup.seqs[0].blocks[1] = 0;
  setup.seqs[0].ctx = 17;  // more than 4 blocks of 4
  EXPECT_THROW(run_batch(setup, nullptr), Error);
  setup.seqs[0].ctx = 2;  // fewer than q_len
  EXPECT_THROW(run_batch(setup, nullptr), Error);
  setup.seqs[0].ctx = 10;
  setup.d.kv_heads = 3;  // 4 heads do not split over 3
  EXPECT_THROW(run_batch(setup, nullptr), Error);
}

TEST(StoreKv, WritesRowsAtSlotsAndRejectsBadSlots) {
  const int64_t kv_dim = 6, slots = 10;
  std::vector<float> k_cache(size_t(slots * kv_dim), 0.0f), v_cache = k_cache;
  const auto k = test::random_floats(3 * kv_dim, 1), v = test::random_floats(3 * kv_dim, 2);
  const std::vector<int64_t> mapping = {9, 0, 4};
  cpu::store_kv(k.data(), v.data(), mapping.data(), 3, kv_dim, slots, k_cache.data(),
                v_cache.data());
  for (size_t t = 0; t < mapping.size(); ++t) {
    for (int64_t j = 0; j < kv_dim; ++j) {
      EXPECT_EQ(k_cache[size_t(mapping[t] * kv_dim + j)], k[t * kv_dim + size_t(j)]);
      EXPECT_EQ(v_cache[size_t(mapping[t] * kv_dim + j)], v[t * kv_dim + size_t(j)]);
    }
  }
  const int64_t bad = slots;
  EXPECT_THROW(
      cpu::store_kv(k.data(), v.data(), &bad, 1, kv_dim, slots, k_cache.data(), v_cache.data()),
      Error);
}

}  // namespace
}  // namespace tandem
