// HeapTrimmer: malloc_trim on a timer, and mallinfo2 / VmRSS for the log.
#include "core/heap_trimmer.h"

#include <fstream>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/logging.h"

namespace tandem {
namespace {

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

HeapFigures heap_figures() {
  HeapFigures f;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 info = mallinfo2();
  f.in_use_bytes = uint64_t(info.uordblks) + uint64_t(info.hblkhd);
  f.arena_bytes = uint64_t(info.arena);
#endif
  f.resident_bytes = resident_bytes();
  return f;
}

bool trim_heap() {
#if defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

HeapTrimmer::HeapTrimmer(std::string name, std::chrono::milliseconds interval, int report_every)
    : name_(std::move(name)), interval_(interval), report_every_(report_every) {
  log_info("{}: freed heap pages go back to the OS every {} s (malloc_trim); heap figures logged "
           "every {} s",
           name_, double(interval_.count()) / 1000, double(interval_.count()) * report_every_ / 1000);
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
      log_info("{}: heap in use {:.1f} MiB, malloc arenas {:.1f} MiB, resident {:.1f} MiB", name_,
               mib(f.in_use_bytes), mib(f.arena_bytes), mib(f.resident_bytes));
    }
    lock.lock();
  }
}

}  // namespace tandem
