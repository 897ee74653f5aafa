// The BPE merge rules keyed by their (left id, right id) pair, in an open-addressing hash table:
// one probe run through one flat array instead of std::unordered_map's bucket and node hops. The
// lookup is the merge loop's hottest step (half of a cold encode's time with the llama3
// tokenizer's 280,000 merges under std::unordered_map).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tandem::tokenizer {

class MergeTable {
 public:
  struct Rule {
    int rank;    // position in the merges list: lower merges first
    int new_id;  // id of the concatenated token
  };

  // Room for `rules` rules without growing.
  void reserve(size_t rules);
  // Ids are non-negative. A pair inserted again takes the new rule (later duplicates win).
  void insert_or_assign(int left, int right, Rule rule);
  [[nodiscard]] const Rule* find(int left, int right) const;
  // Starts loading the slot find(left, right) reads first.
  void prefetch(int left, int right) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(key_of(left, right))]);
  }
  [[nodiscard]] size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    Rule rule;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no pair of non-negative ids has this key

  static uint64_t key_of(int left, int right) {
    return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
  }
  [[nodiscard]] size_t home(uint64_t key) const {
    return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_);  // Fibonacci hashing
  }
  void rehash(size_t capacity);

  std::vector<Slot> slots_;  // a power of two, at most half full
  size_t size_ = 0;
  int shift_ = 64;
};

}  // namespace tandem::tokenizer
