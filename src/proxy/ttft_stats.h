// TtftStats: the time-to-first-token figures the reference proxy prints every 5 s — the number of
// requests so far, then Average / Median / 99th Percentile in ms (numpy's mean, median and
// linearly interpolated percentile over every request since start) — for the prefill stage
// (client request in -> prefiller answered) and end to end (client request in -> first byte
// of the decoder's answer). Thread-safe.
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tandem {

class TtftStats {
 public:
  void add_prefill(double ms);
  void add_end_to_end(double ms);

  // The block, when a request arrived since the last call; else nullopt.
  std::optional<std::string> take_report();

  // numpy.percentile(values, p) with linear interpolation; values must be non-empty.
  static double percentile(std::vector<double> values, double p);

 private:
  std::mutex mutex_;
  std::vector<double> prefill_ms_, end_to_end_ms_;  // every sample since start
  bool changed_ = false;
};

}  // namespace tandem
