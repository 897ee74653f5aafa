// HeapTrimmer: hands the pages of freed heap memory back to the OS every interval, on its own
// thread, and logs the heap in use beside the resident size now and then. Why: a server's heap
// in use levels off once its caches are full, but an allocator keeps the pages of freed chunks
// resident (glibc: inside each malloc arena, one per busy thread, up to 8 per core), so a burst
// (a backlog of KV payloads) or slow fragmentation stays in the resident size — a climb in a
// soak that looks like a leak and would hide one. Trimming releases only free pages: memory
// still in use (a real leak) stays resident and shows. The tandem binary links jemalloc (its
// purge is used then); tests and sanitizer builds use the C library's malloc_trim.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace tandem {

struct HeapFigures {
  uint64_t in_use_bytes = 0;    // allocated and not freed (arenas and mmapped chunks)
  uint64_t arena_bytes = 0;     // what the arenas hold from the OS (in use or free)
  uint64_t resident_bytes = 0;  // the process's VmRSS
};

// Whether this binary's malloc is jemalloc (linked into the tandem binary; see CMakeLists.txt).
bool using_jemalloc();
// This process's figures now (zeros where the allocator does not tell); arena_bytes is what the
// allocator holds resident (glibc: its arenas; jemalloc: stats.resident).
HeapFigures heap_figures();
// Returns free heap pages to the OS (glibc: malloc_trim; jemalloc: purge every arena); returns
// whether it did.
bool trim_heap();

class HeapTrimmer {
 public:
  // `name` prefixes the log lines (e.g. "serve"); every `report_every` trims a line is logged.
  explicit HeapTrimmer(std::string name,
                       std::chrono::milliseconds interval = std::chrono::seconds(10),
                       int report_every = 6);
  ~HeapTrimmer();  // stops and joins
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

 private:
  void run();

  std::string name_;
  std::chrono::milliseconds interval_;
  int report_every_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tandem
