// validate_forward_batch: cheap O(num_tokens + blocks) checks run before any kernel touches the
// cache, so a malformed batch is an error naming the row, never an out-of-bounds write.
#include "model/forward_batch.h"

#include "core/error.h"

namespace tandem {
namespace {

// The batch's arrays agree in length with each other and the cache with the model.
void validate_sizes(const ForwardBatch& b) {
  const int64_t n = b.num_tokens();
  TANDEM_CHECK(n > 0, "forward: the batch has no tokens");
  TANDEM_CHECK(int64_t(b.positions.size()) == n && int64_t(b.slot_mapping.size()) == n,
               "forward: {} token ids but {} positions and {} slots", n, b.positions.size(),
               b.slot_mapping.size());
  TANDEM_CHECK(b.query_start.size() >= 2 && b.query_start.front() == 0 && b.query_start.back() == n,
               "forward: query_start must run from 0 to num_tokens ({}) over >= 1 sequence", n);
  const int32_t seqs = b.num_seqs();
  TANDEM_CHECK(int64_t(b.context_lens.size()) == seqs && b.max_blocks_per_seq > 0 &&
                   int64_t(b.block_tables.size()) == int64_t(seqs) * b.max_blocks_per_seq,
               "forward: {} sequences need {} context_lens and {} x max_blocks_per_seq ({}) block "
               "table entries; got {} and {}",
               seqs, seqs, seqs, b.max_blocks_per_seq, b.context_lens.size(),
               b.block_tables.size());
}

// Sequence `s`: its query rows sit at positions context_len - q_len + i, within the model's
// context, and each row's slot is the one its block table gives that position.
void validate_sequence(const ForwardBatch& b, const ModelConfig& config, const KvCacheShape& kv,
                       int32_t s) {
  const int64_t begin = b.query_start[size_t(s)], end = b.query_start[size_t(s) + 1];
  const int64_t ctx = b.context_lens[size_t(s)];
  TANDEM_CHECK(begin < end && end <= b.num_tokens(),
               "forward: query_start[{}..{}] = {}..{} is not a non-empty range of the {} rows", s,
               s + 1, begin, end, b.num_tokens());
  TANDEM_CHECK(ctx >= end - begin, "forward: sequence {} has {} new tokens but context_len {}", s,
               end - begin, ctx);
  TANDEM_CHECK(ctx <= config.max_position_embeddings,
               "forward: sequence {} context_len {} exceeds the model's max context {}", s, ctx,
               config.max_position_embeddings);
  TANDEM_CHECK(ctx <= int64_t(b.max_blocks_per_seq) * kv.block_size,
               "forward: sequence {} context_len {} exceeds its block table ({} blocks of {})", s,
               ctx, b.max_blocks_per_seq, kv.block_size);
  const int32_t* table = b.block_tables.data() + int64_t(s) * b.max_blocks_per_seq;
  for (int64_t blk = 0; blk * kv.block_size < ctx; ++blk) {
    TANDEM_CHECK(table[blk] >= 0 && table[blk] < kv.num_blocks,
                 "forward: sequence {} block_tables[{}] = {} is outside the cache's {} blocks", s,
                 blk, table[blk], kv.num_blocks);
  }
  for (int64_t t = begin; t < end; ++t) {
    const int64_t pos = ctx - (end - t);
    TANDEM_CHECK(b.positions[size_t(t)] == pos,
                 "forward: row {} (sequence {}) has position {}, expected {} from context_len", t,
                 s, b.positions[size_t(t)], pos);
    const int64_t slot = int64_t(table[pos / kv.block_size]) * kv.block_size + pos % kv.block_size;
    TANDEM_CHECK(b.slot_mapping[size_t(t)] == slot,
                 "forward: row {} (sequence {}, position {}) has slot {}, but its block table puts "
                 "that position at slot {}",
                 t, s, pos, b.slot_mapping[size_t(t)], slot);
  }
}

}  // namespace

void validate_forward_batch(const ForwardBatch& b, const ModelConfig& config,
                            const KvCacheShape& kv) {
  validate_sizes(b);
  const int64_t n = b.num_tokens();
  for (int64_t t = 0; t < n; ++t) {
    TANDEM_CHECK(b.token_ids[size_t(t)] >= 0 && b.token_ids[size_t(t)] < config.vocab_size,
                 "forward: token id {} at row {} is outside the vocabulary [0, {})",
                 b.token_ids[size_t(t)], t, config.vocab_size);
  }
  for (int32_t s = 0; s < b.num_seqs(); ++s) validate_sequence(b, config, kv, s);
  for (size_t i = 0; i < b.logits_indices.size(); ++i) {
    TANDEM_CHECK(b.logits_indices[i] >= 0 && b.logits_indices[i] < n,
                 "forward: logits_indices[{}] = {} is not a row of the batch ({} tokens)", i,
                 b.logits_indices[i], n);
  }
}

}  // namespace tandem
