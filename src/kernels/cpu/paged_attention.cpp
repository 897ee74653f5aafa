// paged_attention: one task per (query token, head): scores against every visible key (read
// block by block through the sequence's block table), a stable softmax, then the weighted sum of
// values; all in f32 with per-thread score scratch. Threads take contiguous ranges of tasks.
#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/softmax.h"

namespace tandem::cpu {
namespace {

// Below this a thread hop costs more than it saves.
constexpr int64_t kMinAttentionMacsPerTask = 1 << 15;
constexpr int32_t kValueChunk = 8;            // output dims accumulated together in registers

void check_params(const PagedAttentionParams& p) {
  TANDEM_CHECK(p.num_heads > 0 && p.num_kv_heads > 0 && p.num_heads % p.num_kv_heads == 0,
               "paged_attention: num_heads {} must be a positive multiple of num_kv_heads {}",
               p.num_heads, p.num_kv_heads);
  TANDEM_CHECK(p.head_dim > 0 && p.block_size > 0 && p.num_seqs >= 0,
               "paged_attention: bad sizes (head_dim {}, block_size {}, num_seqs {})", p.head_dim,
               p.block_size, p.num_seqs);
  if (p.num_seqs == 0) return;
  TANDEM_CHECK(p.query_start[0] == 0, "paged_attention: query_start[0] is {}, not 0",
               p.query_start[0]);
  for (int32_t s = 0; s < p.num_seqs; ++s) {
    const int64_t q_len = p.query_start[s + 1] - p.query_start[s], ctx = p.context_lens[s];
    TANDEM_CHECK(q_len >= 0 && ctx >= q_len && ctx <= int64_t(p.max_blocks_per_seq) * p.block_size,
                 "paged_attention: sequence {} has {} new tokens, context {} and room for {}", s,
                 q_len, ctx, int64_t(p.max_blocks_per_seq) * p.block_size);
    const int32_t* table = p.block_tables + int64_t(s) * p.max_blocks_per_seq;
    for (int64_t b = 0; b * p.block_size < ctx; ++b) {
      TANDEM_CHECK(table[b] >= 0 && table[b] < p.num_blocks,
                   "paged_attention: sequence {} block {} is {}, outside the cache's {} blocks", s,
                   b, table[b], p.num_blocks);
    }
  }
}

// Lane-wise accumulators so -O3 vectorizes without reassociation.
float dot(const float* a, const float* b, int n) {
  constexpr int kLanes = 8;
  float acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Calls fn(j, slot) for KV positions j in [0, len) of a sequence, walking its block table
// block by block (no division per position).
template <typename Fn>
void for_each_slot(const int32_t* table, int32_t block_size, int64_t len, Fn&& fn) {
  for (int64_t blk = 0, j = 0; j < len; ++blk) {
    const int64_t base = int64_t(table[blk]) * block_size;
    const int64_t count = std::min<int64_t>(block_size, len - j);
    for (int64_t off = 0; off < count; ++off, ++j) fn(j, base + off);
  }
}

// Attention of query row `token` (sequence `seq`, head `head`) over KV positions [0, len).
void attend(const PagedAttentionParams& p, int32_t seq, int64_t token, int32_t head, int64_t len,
            std::vector<float>& scores) {
  const int32_t hd = p.head_dim;
  const int64_t kv_dim = int64_t(p.num_kv_heads) * hd;
  const int64_t head_off = int64_t(head / (p.num_heads / p.num_kv_heads)) * hd;
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const float* q = p.q + (token * p.num_heads + head) * hd;
  if (scores.size() < size_t(len)) scores.resize(size_t(len));
  float* s = scores.data();
  for_each_slot(table, p.block_size, len, [&](int64_t j, int64_t slot) {
    s[j] = dot(q, p.k_cache + slot * kv_dim + head_off, hd) * p.scale;
  });
  softmax(s, 1, len, s);
  float* out = p.out + (token * p.num_heads + head) * hd;
  // out = sum_j s[j] v_j, kValueChunk dims at a time so the accumulators stay in registers.
  int32_t d0 = 0;
  for (; d0 + kValueChunk <= hd; d0 += kValueChunk) {
    float acc[kValueChunk] = {};
    for_each_slot(table, p.block_size, len, [&](int64_t j, int64_t slot) {
      const float* v = p.v_cache + slot * kv_dim + head_off + d0;
      for (int32_t d = 0; d < kValueChunk; ++d) acc[d] += s[j] * v[d];
    });
    std::copy(acc, acc + kValueChunk, out + d0);
  }
  for (; d0 < hd; ++d0) {
    float acc = 0.0f;
    for_each_slot(table, p.block_size, len, [&](int64_t j, int64_t slot) {
      acc += s[j] * p.v_cache[slot * kv_dim + head_off + d0];
    });
    out[d0] = acc;
  }
}

}  // namespace

void paged_attention(const PagedAttentionParams& p, ThreadPool* pool) {
  check_params(p);
  if (p.num_seqs == 0) return;
  const int64_t num_tokens = p.num_seqs > 0 ? p.query_start[p.num_seqs] : 0;
  std::vector<int32_t> seq_of(
      static_cast<size_t>(num_tokens));  // (num_tokens) sequence of each query row
  std::vector<int64_t> len_of(static_cast<size_t>(num_tokens));  // (num_tokens) visible KV length
  int64_t max_len = 1;
  for (int32_t s = 0; s < p.num_seqs; ++s) {
    const int64_t begin = p.query_start[s], end = p.query_start[s + 1];
    for (int64_t t = begin; t < end; ++t) {
      seq_of[size_t(t)] = s;
      len_of[size_t(t)] = p.context_lens[s] - (end - t) + 1;
      max_len = std::max(max_len, len_of[size_t(t)]);
    }
  }
  auto work = [&](size_t begin, size_t end) {
    thread_local std::vector<float> scores;  // (visible KV length) for one query row
    for (size_t task = begin; task < end; ++task) {
      const int64_t t = int64_t(task) / p.num_heads;
      attend(p, seq_of[size_t(t)], t, int32_t(int64_t(task) % p.num_heads), len_of[size_t(t)],
             scores);
    }
  };
  const size_t tasks = size_t(num_tokens) * size_t(p.num_heads);
  const size_t grain =
      size_t(std::max<int64_t>(1, kMinAttentionMacsPerTask / (2 * max_len * p.head_dim)));
  if (pool) {
    pool->parallel_for(tasks, work, grain);
  } else {
    work(0, tasks);
  }
}

}  // namespace tandem::cpu
