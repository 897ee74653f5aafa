// BackendPool: the engines of one role (prefillers or decoders) and the choice of one per
// request — round-robin, or least-loaded (fewest requests in flight) — skipping an engine that
// refused a connection until its rest is over, or that failed its last health probe (a dead or
// hung engine), so survivors keep serving and a restarted engine rejoins by itself. Thread-safe.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/proxy_config.h"

namespace tandem {

enum class EngineHealth { kStarting, kHealthy, kUnhealthy };
const char* engine_health_name(EngineHealth health);  // "starting", "healthy", "unhealthy"

class BackendPool {
 public:
  using Clock = std::chrono::steady_clock;

  // `count` engines (indices 0..count-1), named for messages ("prefiller localhost:7100").
  BackendPool(std::vector<std::string> names, RoutingPolicy policy,
              std::chrono::milliseconds rest_after_failure);

  // A chosen engine; counts as in flight until destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(BackendPool* pool, size_t index) : pool_(pool), index_(index) {}
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept;
    ~Lease() { release(); }
    size_t index() const { return index_; }
    explicit operator bool() const { return pool_ != nullptr; }
    void release();

   private:
    BackendPool* pool_ = nullptr;
    size_t index_ = 0;
  };

  // The next engine by the policy among those not resting; nullopt when every one rests.
  std::optional<Lease> pick();
  // Any engine by the policy, resting or not (for pass-through calls such as /v1/models).
  Lease pick_any();

  // A connection to engine `index` failed: it rests; a success ends its rest.
  void mark_failed(size_t index);
  void mark_ok(size_t index);
  // The health monitor's verdict: an unhealthy engine gets no new requests until a probe
  // succeeds again; one still starting (never answered) is used as without probes. Returns
  // whether the verdict changed.
  bool set_health(size_t index, EngineHealth health);
  EngineHealth health(size_t index) const;
  // Engine `index` sent part of an answer (its status line, a body piece): it is alive, even
  // when a health probe waits behind its requests.
  void note_answer(size_t index);
  // When it last did (the epoch if never).
  Clock::time_point last_answer(size_t index) const;

  size_t size() const { return names_.size(); }
  const std::string& name(size_t index) const { return names_[index]; }
  size_t in_flight(size_t index) const;

 private:
  std::optional<size_t> choose(bool include_resting);

  std::vector<std::string> names_;
  RoutingPolicy policy_;
  std::chrono::milliseconds rest_;
  mutable std::mutex mutex_;
  size_t next_ = 0;                         // round-robin cursor
  std::vector<size_t> in_flight_;           // (size) requests holding a lease
  std::vector<Clock::time_point> rest_until_;  // (size) resting while now < this
  std::vector<EngineHealth> health_;           // (size) the last health probe's verdict
  // (size) see note_answer: ticks of Clock, atomic (no lock: noted for every streamed piece)
  std::unique_ptr<std::atomic<Clock::rep>[]> last_answer_;
};

}  // namespace tandem
