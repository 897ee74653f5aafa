// What the last layer has left once every row's K/V is in the cache, when only each sequence's last
// token is sampled: the other rows' outputs feed nothing (no later layer, no logits), so attention,
// o_proj and the MLP run for the sampled rows alone, each a one-token query over its sequence's
// whole context. For a 7500-token prompt on a 32-layer model that is 1/32 of the prefill skipped.
#pragma once
#include <optional>

#include "model/forward_batch.h"

namespace tandem {

// The batch of `batch`'s sampled rows: row i is `batch` row logits_indices[i] (its token, position
// and slot), sequence i that row's sequence (its context length and block table, query length 1),
// and logits_indices is 0..m-1. nullopt when it would save nothing (every row sampled) or some
// sampled row is not its sequence's last token, or a sequence has two (prompt logprobs): then the
// last layer runs every row. A batch that samples nothing (a chunk in the middle of a prompt)
// gives an empty batch.
std::optional<ForwardBatch> sampled_rows_batch(const ForwardBatch& batch);

}  // namespace tandem
