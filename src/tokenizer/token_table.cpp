// Linear probing over a power-of-two slot array kept at most half full; the slot's home is the
// hash's top bits, its tag the low 32 (so a probe rarely compares bytes with the wrong token).
#include "tokenizer/token_table.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/error.h"

namespace tandem::tokenizer {
namespace {

uint64_t load_bytes(const char* p, size_t n) {  // n <= 8 bytes, little-endian into a word
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

uint64_t mix(uint64_t h) {  // murmur3's fmix64: every input bit reaches every output bit
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t TokenTable::hash(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) h = std::rotl((h ^ load_bytes(s.data() + i, 8)) * kMul, 29);
  if (i < s.size()) h = (h ^ load_bytes(s.data() + i, s.size() - i)) * kMul;
  return mix(h);
}

void TokenTable::reserve(size_t tokens) {
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, 2 * tokens));
  if (capacity > slots_.size()) rehash(capacity);
}

void TokenTable::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{0, 0, 0, -1});
  shift_ = 64 - std::countr_zero(capacity);
  const size_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    size_t i = home(hash(std::string_view(bytes_).substr(s.offset, s.length)));
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void TokenTable::insert(std::string_view token, int id) {
  TANDEM_CHECK(id >= 0, "TokenTable: negative id {}", id);
  TANDEM_CHECK(bytes_.size() + token.size() <= UINT32_MAX, "TokenTable: vocabulary over 4 GiB");
  if (2 * (size_ + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint64_t h = hash(token);
  const size_t mask = slots_.size() - 1;
  size_t i = home(h);
  for (; slots_[i].id >= 0; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.tag == uint32_t(h) && std::string_view(bytes_).substr(s.offset, s.length) == token)
      return;  // the first id stays
  }
  slots_[i] = {uint32_t(h), uint32_t(bytes_.size()), uint32_t(token.size()), id};
  bytes_.append(token);
  ++size_;
}

int TokenTable::find(std::string_view token, uint64_t h) const {
  if (slots_.empty()) return -1;
  const size_t mask = slots_.size() - 1;
  for (size_t i = home(h);; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.tag == uint32_t(h) && s.length == token.size() &&
        std::memcmp(bytes_.data() + s.offset, token.data(), token.size()) == 0)
      return s.id;
  }
}

}  // namespace tandem::tokenizer
