// The BPE vocabulary's token -> id map as an open-addressing table over one byte arena: a lookup
// is one probe run through a flat slot array (hash tag, offset, length, id) and one compare with
// the arena, instead of std::unordered_map's bucket and node hops. The hash is computed once per
// word (hash()) and may be used to prefetch the word's slot before it is needed, so a batch of
// words overlaps its cache misses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::tokenizer {

class TokenTable {
 public:
  // Hash of a token or word (64 bits; any string, any length).
  [[nodiscard]] static uint64_t hash(std::string_view s);

  // Room for `tokens` tokens without growing.
  void reserve(size_t tokens);
  // Adds `token` -> `id` (id >= 0); a token already present keeps its first id.
  void insert(std::string_view token, int id);
  // The id of `token` (whose hash() is `h`), or -1.
  [[nodiscard]] int find(std::string_view token, uint64_t h) const;
  [[nodiscard]] int find(std::string_view token) const { return find(token, hash(token)); }
  // Starts loading the slot find(token, h) reads first.
  void prefetch(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(h)]);
  }
  [[nodiscard]] size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t tag;     // low 32 bits of the token's hash
    uint32_t offset;  // of the token in bytes_
    uint32_t length;  // of the token in bytes
    int32_t id;       // -1: an empty slot
  };
  [[nodiscard]] size_t home(uint64_t h) const { return size_t(h >> shift_); }
  void rehash(size_t capacity);

  std::vector<Slot> slots_;  // a power of two, at most half full
  std::string bytes_;        // every token, back to back
  size_t size_ = 0;
  int shift_ = 64;
};

}  // namespace tandem::tokenizer
