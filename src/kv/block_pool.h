// BlockPool: the fixed set of KV cache blocks, each with a reference count, and the queue of
// free blocks (ref count 0). Shared prefix blocks carry one reference per sequence using them.
// The free queue is also the prefix cache's LRU evictor: blocks that still hold cached KV are
// released to the back (evicted last), blocks with nothing worth keeping to the front (reused
// first), and allocate() always takes the front. The pool knows nothing about hashes; the
// BlockManager tells the PrefixCache when an allocated block loses its cached content.
#pragma once
#include <cstdint>
#include <vector>

namespace tandem {

// Where a released block joins the free queue.
enum class FreeOrder {
  kReuseFirst,  // front: its content is worthless (not cached)
  kEvictLast,   // back: it holds cached KV, keep it as long as possible (LRU)
};

class BlockPool {
 public:
  explicit BlockPool(int num_blocks);  // all blocks start free, in id order

  int num_blocks() const { return int(ref_counts_.size()); }
  int num_free() const { return num_free_; }  // ref count 0, cached or not
  int num_used() const { return num_blocks() - num_free_; }
  int ref_count(int block) const;

  // Takes the block at the front of the free queue (ref count 0 -> 1). Throws tandem::Error
  // when no block is free: callers check num_free() first.
  [[nodiscard]] int allocate();
  // Adds a reference. A free block (a prefix-cache hit on released KV) leaves the free queue.
  void acquire(int block);
  // Drops a reference; at zero the block joins the free queue where `order` says.
  void release(int block, FreeOrder order);

  // The free queue, front (next to be allocated) first. For tests and debugging.
  std::vector<int> free_queue() const;

 private:
  void check_id(int block) const;
  void link_before(int block, int next);  // inserts `block` before `next` (kSentinel = end)
  void unlink(int block);

  std::vector<int32_t> ref_counts_;  // (num_blocks)
  // Intrusive doubly-linked free queue over block ids: (num_blocks + 1) entries, the last one
  // is the sentinel whose next_ is the front and prev_ the back. -1 when not in the queue.
  std::vector<int32_t> prev_, next_;
  int sentinel_ = 0;  // == num_blocks
  int num_free_ = 0;
};

}  // namespace tandem
