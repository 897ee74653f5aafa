// The shard is the hash's low 4 bits, the home slot its top bits, the tag its low 32 bits.
#include "tokenizer/word_cache.h"

#include <cstring>
#include <mutex>

namespace tandem::tokenizer {

const WordCache::Slot& WordCache::probe(const Shard& shard, std::string_view word, uint64_t h) {
  constexpr size_t kMask = kSlotsPerShard - 1;
  for (size_t i = size_t(h >> 54) & kMask;; i = (i + 1) & kMask) {
    const Slot& s = shard.slots[i];
    if (s.word_length == 0) return s;
    if (s.tag == uint32_t(h) && s.word_length == word.size() &&
        std::memcmp(shard.words.data() + s.word_offset, word.data(), word.size()) == 0)
      return s;
  }
}

bool WordCache::get_from(const Shard& shard, std::string_view word, uint64_t h,
                         std::vector<int>& ids) {
  if (shard.slots.empty()) return false;
  const Slot& s = probe(shard, word, h);
  if (s.word_length == 0) return false;
  ids.insert(ids.end(), shard.ids.begin() + s.ids_offset,
             shard.ids.begin() + s.ids_offset + s.ids_count);
  return true;
}

bool WordCache::get(std::string_view word, uint64_t h, std::vector<int>& ids) const {
  if (word.empty() || word.size() > kMaxWordBytes) return false;
  const Shard& shard = shards_[h % kShards];
  if (shard.full.load(std::memory_order_acquire)) return get_from(shard, word, h, ids);
  std::shared_lock lock(shard.mutex);
  return get_from(shard, word, h, ids);
}

void WordCache::put(std::string_view word, uint64_t h, std::span<const int> ids) {
  if (word.empty() || word.size() > kMaxWordBytes || ids.size() > UINT8_MAX) return;
  Shard& shard = shards_[h % kShards];
  if (shard.full.load(std::memory_order_acquire)) return;
  std::unique_lock lock(shard.mutex);
  if (shard.size >= kEntriesPerShard) return;
  if (shard.slots.empty()) shard.slots.resize(kSlotsPerShard);
  const Slot& found = probe(shard, word, h);
  if (found.word_length != 0) return;  // another thread cached it first
  Slot& slot = shard.slots[size_t(&found - shard.slots.data())];
  slot = {uint32_t(h), uint32_t(shard.words.size()), uint32_t(shard.ids.size()),
          uint8_t(word.size()), uint8_t(ids.size())};
  shard.words.append(word);
  shard.ids.insert(shard.ids.end(), ids.begin(), ids.end());
  if (++shard.size == kEntriesPerShard) shard.full.store(true, std::memory_order_release);
}

size_t WordCache::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::shared_lock lock(shard.mutex);
    n += shard.size;
  }
  return n;
}

}  // namespace tandem::tokenizer
