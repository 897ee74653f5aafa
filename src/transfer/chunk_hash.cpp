// The chunk hash chain over kv/block_hash.h's primitive.
#include "transfer/chunk_hash.h"

#include <algorithm>

#include "core/error.h"

namespace tandem {

std::vector<BlockHash> chunk_hashes(std::string_view model_fingerprint,
                                    std::span<const int32_t> token_ids, int chunk_size,
                                    PartialChunk partial, std::string_view cache_salt) {
  TANDEM_CHECK(chunk_size >= 1, "chunk hashes: chunk_size must be at least 1, got {}", chunk_size);
  size_t size = size_t(chunk_size);
  size_t num_chunks = token_ids.size() / size;
  if (partial == PartialChunk::kInclude && token_ids.size() % size != 0) ++num_chunks;
  std::vector<BlockHash> hashes;
  hashes.reserve(num_chunks);
  BlockHash parent = root_block_hash(model_fingerprint);
  for (size_t i = 0; i < num_chunks; ++i) {
    size_t begin = i * size;
    size_t count = std::min(size, token_ids.size() - begin);
    parent = hash_block(parent, token_ids.subspan(begin, count), cache_salt);
    hashes.push_back(parent);
  }
  return hashes;
}

int chunk_num_tokens(int64_t num_tokens, int chunk_size, int64_t index) {
  TANDEM_CHECK(chunk_size >= 1 && index >= 0 && index * chunk_size < num_tokens,
               "chunk {} of a {}-token prompt with chunk_size {} does not exist", index, num_tokens,
               chunk_size);
  return int(std::min<int64_t>(chunk_size, num_tokens - index * chunk_size));
}

}  // namespace tandem
