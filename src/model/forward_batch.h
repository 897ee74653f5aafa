// The flat batch one forward pass runs (nano-vllm's shape, exactly what the kernels take): the
// new tokens of every scheduled sequence concatenated, with where each one's K/V goes and which
// cache blocks each sequence reads. Covers prefill, chunked prefill, decode and mixed batches.
#pragma once
#include <cstdint>
#include <vector>

#include "kv/kv_cache.h"
#include "model/model_config.h"

namespace tandem {

struct ForwardBatch {
  std::vector<int32_t> token_ids;     // (num_tokens)
  std::vector<int32_t> positions;     // (num_tokens) = context_len - q_len + i within a sequence
  std::vector<int64_t> slot_mapping;  // (num_tokens) KV slot = block * block_size + offset
  std::vector<int32_t> query_start;   // (num_seqs + 1) cumulative query lengths, [0] = 0
  std::vector<int32_t> context_lens;  // (num_seqs) KV length after this step (cached + new)
  std::vector<int32_t> block_tables;  // (num_seqs, max_blocks_per_seq) row-major block ids
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> logits_indices;  // rows whose logits are wanted (e.g. each seq's last)

  int64_t num_tokens() const { return int64_t(token_ids.size()); }
  int32_t num_seqs() const { return query_start.empty() ? 0 : int32_t(query_start.size()) - 1; }
};

// Throws tandem::Error unless `batch` is consistent (array lengths, query ranges, positions from
// context_lens, slots from the block tables, ids in the vocabulary) for `config` and a cache of
// shape `kv`. Every backend runs it before its forward pass.
void validate_forward_batch(const ForwardBatch& batch, const ModelConfig& config,
                            const KvCacheShape& kv);

}  // namespace tandem
