// WordCache: BPE's word -> ids cache (at most kCapacity words, filled and never evicted, as in
// tokenizers), thread-safe. Sharded by the word's hash; each shard is one open-addressing table
// over two arenas (the words' bytes, their ids), so a lookup is a probe and a compare, with no
// node per word. A full shard never changes again: readers then take no lock at all, which is
// the steady state of a server seeing endless new words. The bound is tokenizers'
// DEFAULT_CACHE_CAPACITY: what the cache keeps is resident memory that never comes back (here
// 16 KiB of slots a shard plus the words and their ids: well under 1 MB when full).
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::tokenizer {

class WordCache {
 public:
  static constexpr size_t kCapacity = 10000;
  static constexpr size_t kMaxWordBytes = 255;  // longer words are not cached

  // Appends the ids of `word` (whose TokenTable::hash is `h`) to `ids`; false if not cached.
  bool get(std::string_view word, uint64_t h, std::vector<int>& ids) const;
  // Caches `word` -> `ids` unless its shard is full or it is already there.
  void put(std::string_view word, uint64_t h, std::span<const int> ids);
  [[nodiscard]] size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kEntriesPerShard = kCapacity / kShards;
  static constexpr size_t kSlotsPerShard = 1024;  // a power of two, over 1.5x the entries
  static_assert(kEntriesPerShard * kShards == kCapacity);
  static_assert(kSlotsPerShard >= kEntriesPerShard * 3 / 2);

  struct Slot {
    uint32_t tag = 0;          // low 32 bits of the word's hash
    uint32_t word_offset = 0;  // in Shard::words
    uint32_t ids_offset = 0;   // in Shard::ids
    uint8_t word_length = 0;   // 0: an empty slot (cached words are never empty)
    uint8_t ids_count = 0;     // at most one id a byte
  };
  struct Shard {
    mutable std::shared_mutex mutex;  // taken by readers only until the shard is full
    std::atomic<bool> full{false};    // set once: nothing changes after
    std::vector<Slot> slots;          // (kSlotsPerShard,) allocated by the first put
    std::string words;                // every cached word, back to back
    std::vector<int> ids;             // every cached word's ids, back to back
    size_t size = 0;
  };
  // The slot of `word`, or the empty slot where it would go (slots must be allocated).
  static const Slot& probe(const Shard& shard, std::string_view word, uint64_t h);
  static bool get_from(const Shard& shard, std::string_view word, uint64_t h,
                       std::vector<int>& ids);

  std::array<Shard, kShards> shards_;
};

}  // namespace tandem::tokenizer
