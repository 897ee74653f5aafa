// BackendPool: round-robin / least-loaded choice with a rest for engines that refused.
#include "proxy/backend_pool.h"

namespace tandem {

BackendPool::BackendPool(std::vector<std::string> names, RoutingPolicy policy,
                         std::chrono::milliseconds rest_after_failure)
    : names_(std::move(names)),
      policy_(policy),
      rest_(rest_after_failure),
      in_flight_(names_.size(), 0),
      rest_until_(names_.size(), Clock::time_point{}),
      health_(names_.size(), EngineHealth::kStarting),
      last_answer_(std::make_unique<std::atomic<Clock::rep>[]>(names_.size())) {}

const char* engine_health_name(EngineHealth health) {
  switch (health) {
    case EngineHealth::kStarting: return "starting";
    case EngineHealth::kHealthy: return "healthy";
    case EngineHealth::kUnhealthy: return "unhealthy";
  }
  return "?";
}

BackendPool::Lease& BackendPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = other.pool_;
    index_ = other.index_;
    other.pool_ = nullptr;
  }
  return *this;
}

void BackendPool::Lease::release() {
  if (!pool_) return;
  std::lock_guard lock(pool_->mutex_);
  --pool_->in_flight_[index_];
  pool_ = nullptr;
}

std::optional<size_t> BackendPool::choose(bool include_resting) {
  const size_t n = names_.size();
  if (n == 0) return std::nullopt;
  Clock::time_point now = Clock::now();
  auto usable = [&](size_t i) { return include_resting || (health_[i] != EngineHealth::kUnhealthy && now >= rest_until_[i]); };
  std::optional<size_t> best;
  for (size_t k = 0; k < n; ++k) {
    size_t i = (next_ + k) % n;
    if (!usable(i)) continue;
    if (policy_ == RoutingPolicy::kRoundRobin) {
      best = i;
      break;
    }
    if (!best || in_flight_[i] < in_flight_[*best]) best = i;
  }
  if (best) next_ = (*best + 1) % n;
  return best;
}

std::optional<BackendPool::Lease> BackendPool::pick() {
  std::lock_guard lock(mutex_);
  std::optional<size_t> i = choose(/*include_resting=*/false);
  if (!i) return std::nullopt;
  ++in_flight_[*i];
  return Lease(this, *i);
}

BackendPool::Lease BackendPool::pick_any() {
  std::lock_guard lock(mutex_);
  std::optional<size_t> i = choose(/*include_resting=*/false);
  if (!i) i = choose(/*include_resting=*/true);
  ++in_flight_[*i];
  return Lease(this, *i);
}

void BackendPool::mark_failed(size_t index) {
  std::lock_guard lock(mutex_);
  rest_until_[index] = Clock::now() + rest_;
}

void BackendPool::mark_ok(size_t index) {
  std::lock_guard lock(mutex_);
  rest_until_[index] = Clock::time_point{};
}

bool BackendPool::set_health(size_t index, EngineHealth health) {
  std::lock_guard lock(mutex_);
  if (health == EngineHealth::kHealthy) rest_until_[index] = Clock::time_point{};  // it answers
  if (health_[index] == health) return false;
  health_[index] = health;
  return true;
}

EngineHealth BackendPool::health(size_t index) const {
  std::lock_guard lock(mutex_);
  return health_[index];
}

void BackendPool::note_answer(size_t index) {
  last_answer_[index].store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

BackendPool::Clock::time_point BackendPool::last_answer(size_t index) const {
  return Clock::time_point(Clock::duration(last_answer_[index].load(std::memory_order_relaxed)));
}

size_t BackendPool::in_flight(size_t index) const {
  std::lock_guard lock(mutex_);
  return in_flight_[index];
}

}  // namespace tandem
