// SHA-256 block hashing over the canonical byte encoding described in block_hash.h.
#include "kv/block_hash.h"

#include <openssl/evp.h>

#include <memory>
#include <vector>

#include "core/error.h"

namespace tandem {
namespace {

void append_u32le(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

void append_u64le(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

void append_bytes(std::vector<uint8_t>& out, std::string_view s) {
  out.insert(out.end(), s.begin(), s.end());
}

// The first 16 bytes of SHA-256(message).
BlockHash sha256_128(const std::vector<uint8_t>& message) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx.get(), message.data(), message.size()) == 1 &&
            EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) == 1;
  TANDEM_CHECK(ok && digest_len == 32, "block hash: OpenSSL SHA-256 failed");
  BlockHash h;
  std::memcpy(h.bytes.data(), digest, h.bytes.size());
  return h;
}

}  // namespace

std::string BlockHash::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * bytes.size());
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

BlockHash root_block_hash(std::string_view model_fingerprint) {
  std::vector<uint8_t> msg;
  append_bytes(msg, kRootHashTag);
  append_u64le(msg, model_fingerprint.size());
  append_bytes(msg, model_fingerprint);
  return sha256_128(msg);
}

BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> token_ids,
                     std::string_view extra_key) {
  std::vector<uint8_t> msg;
  msg.reserve(kBlockHashTag.size() + 16 + 4 + 4 * token_ids.size() + 8 + extra_key.size());
  append_bytes(msg, kBlockHashTag);
  msg.insert(msg.end(), parent.bytes.begin(), parent.bytes.end());
  append_u32le(msg, uint32_t(token_ids.size()));
  for (int32_t t : token_ids) append_u32le(msg, uint32_t(t));
  append_u64le(msg, extra_key.size());
  append_bytes(msg, extra_key);
  return sha256_128(msg);
}

}  // namespace tandem
