// BlockPool: reference counts and an O(1) intrusive free queue over block ids.
#include "kv/block_pool.h"

#include "core/error.h"

namespace tandem {

BlockPool::BlockPool(int num_blocks) {
  TANDEM_CHECK(num_blocks > 0, "block pool: num_blocks must be > 0, got {}", num_blocks);
  ref_counts_.assign(size_t(num_blocks), 0);
  prev_.assign(size_t(num_blocks) + 1, -1);
  next_.assign(size_t(num_blocks) + 1, -1);
  sentinel_ = num_blocks;
  prev_[sentinel_] = next_[sentinel_] = sentinel_;
  for (int b = 0; b < num_blocks; ++b) link_before(b, sentinel_);
  num_free_ = num_blocks;
}

void BlockPool::check_id(int block) const {
  TANDEM_CHECK(block >= 0 && block < num_blocks(), "block pool: block id {} outside [0, {})", block,
               num_blocks());
}

int BlockPool::ref_count(int block) const {
  check_id(block);
  return ref_counts_[size_t(block)];
}

void BlockPool::link_before(int block, int next) {
  int prev = prev_[next];
  prev_[block] = prev;
  next_[block] = next;
  next_[prev] = block;
  prev_[next] = block;
}

void BlockPool::unlink(int block) {
  next_[prev_[block]] = next_[block];
  prev_[next_[block]] = prev_[block];
  prev_[block] = next_[block] = -1;
}

int BlockPool::allocate() {
  TANDEM_CHECK(num_free_ > 0, "block pool: no free block (all {} in use)", num_blocks());
  int block = next_[sentinel_];
  unlink(block);
  --num_free_;
  ref_counts_[size_t(block)] = 1;
  return block;
}

void BlockPool::acquire(int block) {
  check_id(block);
  if (ref_counts_[size_t(block)]++ == 0) {
    unlink(block);
    --num_free_;
  }
}

void BlockPool::release(int block, FreeOrder order) {
  check_id(block);
  TANDEM_CHECK(ref_counts_[size_t(block)] > 0, "block pool: block {} released while free", block);
  if (--ref_counts_[size_t(block)] > 0) return;
  link_before(block, order == FreeOrder::kReuseFirst ? next_[sentinel_] : sentinel_);
  ++num_free_;
}

std::vector<int> BlockPool::free_queue() const {
  std::vector<int> out;
  out.reserve(size_t(num_free_));
  for (int b = next_[sentinel_]; b != sentinel_; b = next_[b]) out.push_back(b);
  return out;
}

}  // namespace tandem
