// TtftStats: the time-to-first-token figures the reference proxy prints every 5 s — the number of
// requests so far, then Average / Median / 99th Percentile in ms — for the prefill stage (client
// request in -> prefiller answered) and end to end (client request in -> first byte of the
// decoder's answer). Memory stays bounded however long the proxy runs: the count and the average
// (numpy's mean) cover every request since start through a running count and sum; the median and
// the 99th percentile (numpy's, linearly interpolated) cover the most recent `window` requests
// of each stage, kept in a fixed ring. Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tandem {

class TtftStats {
 public:
  static constexpr size_t kDefaultWindow = 10000;  // samples per stage for median and p99

  explicit TtftStats(size_t window = kDefaultWindow);

  void add_prefill(double ms);
  void add_end_to_end(double ms);

  // The block, when a request arrived since the last call; else nullopt.
  std::optional<std::string> take_report();

  size_t window() const { return window_; }
  // Samples held for the median and p99 (per stage, at most window()).
  size_t num_held_prefill() const;
  size_t num_held_end_to_end() const;

  // numpy.percentile(values, p) with linear interpolation; values must be non-empty.
  static double percentile(std::vector<double> values, double p);

 private:
  // One stage's figures: every sample counted and summed, the last `window_` kept.
  struct Stage {
    uint64_t count = 0;
    double sum_ms = 0;
    std::vector<double> recent_ms;  // (<= window_) a ring once full; next_slot is the oldest
    size_t next_slot = 0;
  };
  void add(Stage& stage, double ms);  // needs mutex_
  static void append_stage(std::string& out, const char* title, const Stage& stage);

  const size_t window_;
  mutable std::mutex mutex_;
  Stage prefill_, end_to_end_;
  bool changed_ = false;
};

}  // namespace tandem
