#include "core/thread_pool.h"

#include <algorithm>

namespace tandem {

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
// The range of part `index` of `parts` over [0, n), aligned to `grain`.
std::pair<size_t, size_t> part_range(size_t n, size_t grain, int parts, int index) {
  size_t chunks = (n + grain - 1) / grain;
  size_t begin = chunks * size_t(index) / size_t(parts) * grain;
  size_t end = chunks * size_t(index + 1) / size_t(parts) * grain;
  return {std::min(begin, n), std::min(end, n)};
}
}  // namespace

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn,
                              size_t grain) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_grain_ = grain;
    pending_ = int(workers_.size());
    ++generation_;
  }
  start_cv_.notify_all();
  auto [b, e] = part_range(n, grain, size(), 0);
  if (b < e) fn(b, e);
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t)>* job;
    size_t n, grain;
    {
      std::unique_lock lock(mutex_);
      start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      grain = job_grain_;
    }
    auto [b, e] = part_range(n, grain, size(), index);
    if (b < e) (*job)(b, e);
    {
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

}  // namespace tandem
