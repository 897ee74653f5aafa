// Content hashes of KV blocks: the prefix cache's keys, and (in later issues) how a prefiller
// and a decoder process agree on which KV blocks they hold. hash(block) = SHA-256(parent hash,
// token ids, extra key), truncated to 128 bits; the chain's root hashes a model fingerprint.
// The byte encoding is canonical (little-endian, length-prefixed, versioned domain tags) and
// unseeded, so the same tokens give the same hash in every process and on every run.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace tandem {

struct BlockHash {
  std::array<uint8_t, 16> bytes{};  // the first 16 bytes of the SHA-256 digest

  bool operator==(const BlockHash&) const = default;
  std::string hex() const;  // 32 lowercase hex digits
};

// For unordered containers: the digest is already uniform, so its first 8 bytes suffice.
struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const {
    uint64_t v = 0;
    std::memcpy(&v, h.bytes.data(), sizeof(v));
    return size_t(v);
  }
};

// Domain tags, versioned: changing the encoding must change the tags.
inline constexpr std::string_view kRootHashTag = "tandem.kv.root.v1";
inline constexpr std::string_view kBlockHashTag = "tandem.kv.block.v1";

// SHA-256(kRootHashTag || u64le(len) || fingerprint)[0:16]. The fingerprint names the model
// and everything that changes its KV (see model_fingerprint in the engine).
BlockHash root_block_hash(std::string_view model_fingerprint);

// SHA-256(kBlockHashTag || parent.bytes || u32le(n) || i32le(token_ids[0..n)) ||
//         u64le(len) || extra_key)[0:16]. extra_key isolates cache entries (e.g. a cache salt);
// empty for ordinary requests.
BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> token_ids,
                     std::string_view extra_key);

}  // namespace tandem
