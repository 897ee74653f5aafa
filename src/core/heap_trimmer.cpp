// HeapTrimmer: malloc_trim or jemalloc purge on a timer; allocator figures and VmRSS for the log.
#include "core/heap_trimmer.h"

#include <fstream>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/logging.h"

// jemalloc's control interface, where the binary is linked with it (the tandem binary, not the
// tests): weak, so it is null otherwise and the C library's figures are used.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace tandem {
namespace {

uint64_t jemalloc_stat(const char* name) {
  size_t value = 0, size = sizeof value;
  return mallctl(name, &value, &size, nullptr, 0) == 0 ? uint64_t(value) : 0;
}

uint64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

double mib(uint64_t bytes) { return double(bytes) / double(1 << 20); }

}  // namespace

bool using_jemalloc() { return mallctl != nullptr; }

HeapFigures heap_figures() {
  HeapFigures f;
  if (using_jemalloc()) {
    uint64_t epoch = 1;  // refreshes the statistics below
    size_t size = sizeof epoch;
    mallctl("epoch", &epoch, &size, &epoch, size);
    f.in_use_bytes = jemalloc_stat("stats.allocated");
    f.arena_bytes = jemalloc_stat("stats.resident");
  } else {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    f.in_use_bytes = uint64_t(info.uordblks) + uint64_t(info.hblkhd);
    f.arena_bytes = uint64_t(info.arena);
#endif
  }
  f.resident_bytes = resident_bytes();
  return f;
}

bool trim_heap() {
  // jemalloc: purge every arena's unused dirty pages now ("arena.<MALLCTL_ARENAS_ALL>.purge");
  // its decay would hand them back within seconds anyway.
  if (using_jemalloc()) return mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0;
#if defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

HeapTrimmer::HeapTrimmer(std::string name, std::chrono::milliseconds interval, int report_every)
    : name_(std::move(name)), interval_(interval), report_every_(report_every) {
  log_info("{}: freed heap pages go back to the OS every {} s ({}); heap figures logged every {} s",
           name_, double(interval_.count()) / 1000,
           using_jemalloc() ? "jemalloc purge" : "malloc_trim",
           double(interval_.count()) * report_every_ / 1000);
  thread_ = std::thread([this] { run(); });
}

HeapTrimmer::~HeapTrimmer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HeapTrimmer::run() {
  std::unique_lock lock(mutex_);
  for (int n = 1;; ++n) {
    if (cv_.wait_for(lock, interval_, [this] { return stopping_; })) return;
    lock.unlock();
    trim_heap();
    if (report_every_ > 0 && n % report_every_ == 0) {
      HeapFigures f = heap_figures();
      log_info("{}: heap in use {:.1f} MiB, allocator holds {:.1f} MiB, resident {:.1f} MiB", name_,
               mib(f.in_use_bytes), mib(f.arena_bytes), mib(f.resident_bytes));
    }
    lock.lock();
  }
}

}  // namespace tandem
