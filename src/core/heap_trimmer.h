// HeapTrimmer: hands the pages of freed heap memory back to the OS every interval (glibc's
// malloc_trim), on its own thread, and logs the heap in use beside the resident size now and
// then. Why: a server's heap in use levels off once its caches are full, but glibc keeps the
// pages of freed chunks resident inside each malloc arena (one per busy thread, up to 8 per
// core), so a burst (a backlog of KV payloads) or slow fragmentation stays in the resident size
// for good — a climb in a soak that looks like a leak and would hide one. Trimming releases only
// free pages: memory still in use (a real leak) stays resident and shows.
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

// This process's figures now (zeros where the C library does not tell).
HeapFigures heap_figures();
// Returns free heap pages to the OS; returns whether any were.
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
