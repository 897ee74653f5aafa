// chunk_hashes: the keys under which a prefiller and a decoder agree on KV chunks. A prompt is
// cut into chunk_size-token chunks (LMCache's chunk_size, 256 by default) and hashed as a chain:
// chunk i's key covers every token before it, so equal keys mean equal prefixes. The chain reuses
// the prefix cache's SHA-256 primitive (kv/block_hash.h), rooted at the model fingerprint.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "kv/block_hash.h"

namespace tandem {

// Whether a last chunk shorter than chunk_size gets a key (LMCache's discard_partial_chunks).
enum class PartialChunk { kInclude, kDiscard };

// One key per chunk of `token_ids`: hash_block(previous key, chunk tokens, cache_salt), the first
// previous key being root_block_hash(model_fingerprint). Throws tandem::Error if chunk_size < 1.
std::vector<BlockHash> chunk_hashes(std::string_view model_fingerprint,
                                    std::span<const int32_t> token_ids, int chunk_size,
                                    PartialChunk partial, std::string_view cache_salt = {});

// Tokens covered by chunk `index` of a prompt of `num_tokens` tokens (the last may be partial).
int chunk_num_tokens(int64_t num_tokens, int chunk_size, int64_t index);

}  // namespace tandem
