// heap_figures and trim_heap: the heap in use follows allocations, and trimming hands the pages
// of freed chunks back to the OS where live chunks around them keep glibc from doing so on
// free() (what HeapTrimmer relies on; glibc only), while what is in use stays.
#include "core/heap_trimmer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "test_support.h"

namespace tandem {
namespace {

constexpr uint64_t kMiB = 1 << 20;

#if defined(__GLIBC__)
TEST(HeapTrimmer, TrimReleasesThePagesOfFreedChunksBetweenLiveOnes) {
#ifdef TANDEM_SANITIZED
  GTEST_SKIP() << "the sanitizers' allocator replaces glibc's: mallinfo2 and malloc_trim see none "
                  "of its chunks";
#endif
  constexpr int kBlocks = 256;
  constexpr size_t kBlockBytes = 64 << 10;  // under the mmap threshold: from the heap
  std::vector<std::unique_ptr<char[]>> blocks, pins;
  blocks.reserve(kBlocks);
  pins.reserve(kBlocks);
  const HeapFigures before = heap_figures();
  for (int i = 0; i < kBlocks; ++i) {  // 16 MiB, every page touched, each block between two pins
    blocks.emplace_back(new char[kBlockBytes]);
    std::memset(blocks.back().get(), 1, kBlockBytes);
    pins.emplace_back(new char[64]);
  }
  volatile char sink = blocks.front()[0];
  (void)sink;
  const HeapFigures held = heap_figures();
  EXPECT_GE(held.in_use_bytes, before.in_use_bytes + 16 * kMiB);
  EXPECT_GE(held.resident_bytes, before.resident_bytes + 12 * kMiB);

  for (auto& block : blocks) block.reset();
  const HeapFigures freed = heap_figures();
  EXPECT_LE(freed.in_use_bytes + 15 * kMiB, held.in_use_bytes);
  // glibc keeps them resident: a free chunk between live ones is not returned on free().
  EXPECT_GE(freed.resident_bytes + 2 * kMiB, held.resident_bytes);

  trim_heap();
  const HeapFigures trimmed = heap_figures();
  EXPECT_LE(trimmed.resident_bytes + 12 * kMiB, freed.resident_bytes);
  EXPECT_EQ(trimmed.in_use_bytes, freed.in_use_bytes);  // what is in use stays
}
#endif

TEST(HeapTrimmer, StartsAndStopsQuickly) {
  HeapTrimmer trimmer("test", std::chrono::milliseconds(5), /*report_every=*/2);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
}

}  // namespace
}  // namespace tandem
