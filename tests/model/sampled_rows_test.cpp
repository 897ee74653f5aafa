// sampled_rows_batch (what the last layer still has to finish when only each sequence's last token
// is sampled) and LlamaModel finishing only those rows: the same logits, to f32 rounding, and the
// same KV cache, bit for bit, as running the last layer for every row.
#include "model/sampled_rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "test_support.h"

namespace tandem {
namespace {

constexpr int kSampledRowsBlockSize = 4;

// Sequences of the given (new tokens, cached tokens), each in blocks of its own (sequence s uses
// blocks 8s, 8s + 1, ...); logits for each sequence's last row.
ForwardBatch batch_of(const std::vector<std::pair<int32_t, int32_t>>& seqs) {
  ForwardBatch b;
  b.query_start = {0};
  b.max_blocks_per_seq = 8;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto [fresh, cached] = seqs[s];
    for (int32_t i = 0; i < fresh; ++i) {
      const int32_t pos = cached + i;
      b.token_ids.push_back(int32_t(1 + (7 * pos + 3 * int32_t(s)) % 500));
      b.positions.push_back(pos);
      b.slot_mapping.push_back(int64_t(8 * s + size_t(pos / kSampledRowsBlockSize)) *
                                   kSampledRowsBlockSize +
                               pos % kSampledRowsBlockSize);
    }
    b.query_start.push_back(int32_t(b.token_ids.size()));
    b.context_lens.push_back(cached + fresh);
    for (int32_t blk = 0; blk < 8; ++blk) b.block_tables.push_back(int32_t(8 * s) + blk);
    b.logits_indices.push_back(int32_t(b.token_ids.size()) - 1);
  }
  return b;
}

TEST(SampledRowsBatch, KeepsEachSequencesLastRowAsAOneTokenQuery) {
  const ForwardBatch b = batch_of({{5, 0}, {1, 9}, {3, 2}});
  const std::optional<ForwardBatch> tail = sampled_rows_batch(b);
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->token_ids,
            (std::vector<int32_t>{b.token_ids[4], b.token_ids[5], b.token_ids[8]}));
  EXPECT_EQ(tail->positions, (std::vector<int32_t>{4, 9, 4}));
  EXPECT_EQ(tail->slot_mapping,
            (std::vector<int64_t>{b.slot_mapping[4], b.slot_mapping[5], b.slot_mapping[8]}));
  EXPECT_EQ(tail->query_start, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(tail->context_lens, (std::vector<int32_t>{5, 10, 5}));
  EXPECT_EQ(tail->block_tables, b.block_tables);
  EXPECT_EQ(tail->logits_indices, (std::vector<int32_t>{0, 1, 2}));
}

TEST(SampledRowsBatch, DropsSequencesThatSampleNothing) {
  ForwardBatch b = batch_of({{5, 0}, {3, 4}});
  b.logits_indices = {7};  // the first sequence is a chunk in the middle of its prompt
  const std::optional<ForwardBatch> tail = sampled_rows_batch(b);
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->context_lens, (std::vector<int32_t>{7}));
  EXPECT_EQ(std::vector<int32_t>(tail->block_tables.begin(), tail->block_tables.end()),
            std::vector<int32_t>(b.block_tables.begin() + 8, b.block_tables.end()));
  b.logits_indices.clear();
  const std::optional<ForwardBatch> none = sampled_rows_batch(b);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->num_tokens(), 0);
  EXPECT_EQ(none->num_seqs(), 0);
}

TEST(SampledRowsBatch, GivesNothingWhenEveryRowOrAnInnerRowIsSampled) {
  EXPECT_FALSE(sampled_rows_batch(batch_of({{1, 3}, {1, 7}})));  // decode: every row sampled
  ForwardBatch b = batch_of({{5, 0}, {3, 4}});
  b.logits_indices = {0, 1, 2, 3, 4, 7};  // prompt logprobs of the first sequence
  EXPECT_FALSE(sampled_rows_batch(b));
  b.logits_indices = {3, 7};  // not the first sequence's last row
  EXPECT_FALSE(sampled_rows_batch(b));
  b.logits_indices = {7, 4};  // out of order
  EXPECT_FALSE(sampled_rows_batch(b));
}

// Prefill the same batch twice, once asking for every row's logits (the last layer runs every
// row) and once for the last rows only (it runs those alone); then a decode step of fixed tokens.
TEST(SampledRows, LlamaModelGivesTheLogitsAndCacheOfTheFullLastLayer) {
  ThreadPool pool{2};
  LlamaModel model{test::golden_model("stories260K"), &pool};
  const int64_t vocab = model.config().vocab_size;
  const ForwardBatch sampled = batch_of({{6, 0}, {1, 13}, {9, 3}, {2, 0}});
  ForwardBatch every = sampled;
  every.logits_indices.resize(size_t(every.num_tokens()));
  for (size_t i = 0; i < every.logits_indices.size(); ++i) every.logits_indices[i] = int32_t(i);

  std::vector<std::vector<float>> last_rows, decode_logits;
  std::vector<std::vector<float>> caches;
  for (const ForwardBatch* prefill : {&std::as_const(every), &sampled}) {
    KvCache kv{model.kv_cache_shape(/*num_blocks=*/32, kSampledRowsBlockSize)};
    std::vector<float> logits(prefill->logits_indices.size() * size_t(vocab));
    model.forward(*prefill, kv, logits.data());
    std::vector<float> rows;
    for (int32_t row : sampled.logits_indices) {
      const size_t at =
          size_t(std::find(prefill->logits_indices.begin(), prefill->logits_indices.end(), row) -
                 prefill->logits_indices.begin());
      rows.insert(rows.end(), logits.begin() + int64_t(at * size_t(vocab)),
                  logits.begin() + int64_t((at + 1) * size_t(vocab)));
    }
    last_rows.push_back(rows);
    std::vector<float> cache;
    for (int layer = 0; layer < kv.shape().num_layers; ++layer) {
      cache.insert(cache.end(), kv.k(layer), kv.k(layer) + kv.shape().layer_floats());
      cache.insert(cache.end(), kv.v(layer), kv.v(layer) + kv.shape().layer_floats());
    }
    caches.push_back(cache);
    ForwardBatch decode = batch_of({{1, 6}, {1, 14}, {1, 12}, {1, 2}});
    std::vector<float> step(4 * size_t(vocab));
    model.forward(decode, kv, step.data());
    decode_logits.push_back(step);
  }
  EXPECT_EQ(caches[0], caches[1]);
  EXPECT_EQ(decode_logits[0], decode_logits[1]);
  ASSERT_EQ(last_rows[0].size(), last_rows[1].size());
  for (size_t i = 0; i < last_rows[0].size(); ++i) {
    ASSERT_NEAR(last_rows[0][i], last_rows[1][i], 1e-4 * (1 + std::abs(last_rows[0][i])))
        << "logit " << i % size_t(vocab) << " of sampled row " << i / size_t(vocab);
  }
}

}  // namespace
}  // namespace tandem
