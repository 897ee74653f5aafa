// Linear probing over a power-of-two array kept at most half full.
#include "tokenizer/merge_table.h"

#include <algorithm>
#include <bit>

namespace tandem::tokenizer {

void MergeTable::reserve(size_t rules) {
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, 2 * rules));
  if (capacity > slots_.size()) rehash(capacity);
}

void MergeTable::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{kEmpty, {0, 0}});
  shift_ = 64 - std::countr_zero(capacity);
  const size_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = home(s.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void MergeTable::insert_or_assign(int left, int right, Rule rule) {
  if (2 * (size_ + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint64_t key = key_of(left, right);
  const size_t mask = slots_.size() - 1;
  size_t i = home(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = {key, rule};
}

const MergeTable::Rule* MergeTable::find(int left, int right) const {
  if (slots_.empty()) return nullptr;
  const uint64_t key = key_of(left, right);
  const size_t mask = slots_.size() - 1;
  for (size_t i = home(key);; i = (i + 1) & mask) {
    if (slots_[i].key == key) return &slots_[i].rule;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

}  // namespace tandem::tokenizer
