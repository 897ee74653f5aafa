// sampled_rows_batch: one pass over the sampled rows, matching each to the next sequence whose
// last row it is (so rows out of order or two rows of one sequence fall back to the full layer).
#include "model/sampled_rows.h"

namespace tandem {

std::optional<ForwardBatch> sampled_rows_batch(const ForwardBatch& b) {
  const size_t m = b.logits_indices.size();
  if (int64_t(m) >= b.num_tokens()) return std::nullopt;
  ForwardBatch tail;
  tail.max_blocks_per_seq = b.max_blocks_per_seq;
  tail.query_start.push_back(0);
  int32_t seq = 0;  // sequences are visited in order, each at most once
  for (size_t i = 0; i < m; ++i) {
    const int32_t row = b.logits_indices[i];
    while (seq < b.num_seqs() && b.query_start[size_t(seq) + 1] <= row) ++seq;
    if (seq == b.num_seqs() || b.query_start[size_t(seq) + 1] - 1 != row) return std::nullopt;
    tail.token_ids.push_back(b.token_ids[size_t(row)]);
    tail.positions.push_back(b.positions[size_t(row)]);
    tail.slot_mapping.push_back(b.slot_mapping[size_t(row)]);
    tail.query_start.push_back(int32_t(i) + 1);
    tail.context_lens.push_back(b.context_lens[size_t(seq)]);
    const auto table = b.block_tables.begin() + int64_t(seq) * b.max_blocks_per_seq;
    tail.block_tables.insert(tail.block_tables.end(), table, table + b.max_blocks_per_seq);
    tail.logits_indices.push_back(int32_t(i));
    ++seq;
  }
  return tail;
}

}  // namespace tandem
