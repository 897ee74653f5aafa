// TtftStats: running totals, a ring of recent samples per stage, and the reference's printed block.
#include "proxy/ttft_stats.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace tandem {

TtftStats::TtftStats(size_t window) : window_(window) {
  TANDEM_CHECK(window_ >= 1, "TtftStats: the sample window must hold at least one sample");
  // Whole from the start: no regrowth copies left behind in the allocator as the window fills.
  prefill_.recent_ms.reserve(window_);
  end_to_end_.recent_ms.reserve(window_);
}

void TtftStats::add(Stage& stage, double ms) {
  ++stage.count;
  stage.sum_ms += ms;
  if (stage.recent_ms.size() < window_) {
    stage.recent_ms.push_back(ms);
  } else {
    stage.recent_ms[stage.next_slot] = ms;
    stage.next_slot = (stage.next_slot + 1) % window_;
  }
  changed_ = true;
}

void TtftStats::add_prefill(double ms) {
  std::lock_guard lock(mutex_);
  add(prefill_, ms);
}

void TtftStats::add_end_to_end(double ms) {
  std::lock_guard lock(mutex_);
  add(end_to_end_, ms);
}

size_t TtftStats::num_held_prefill() const {
  std::lock_guard lock(mutex_);
  return prefill_.recent_ms.size();
}

size_t TtftStats::num_held_end_to_end() const {
  std::lock_guard lock(mutex_);
  return end_to_end_.recent_ms.size();
}

double TtftStats::percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  double rank = p / 100.0 * double(values.size() - 1);
  size_t lo = size_t(std::floor(rank));
  size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - double(lo));
}

void TtftStats::append_stage(std::string& out, const char* title, const Stage& stage) {
  out += fmt::format("\n{} TTFT stats:", title);
  if (stage.count == 0) {
    out += "\n - no requests yet";
    return;
  }
  out += fmt::format("\n - Average (ms): {}", stage.sum_ms / double(stage.count));
  out += fmt::format("\n - Median (ms): {}", percentile(stage.recent_ms, 50));
  out += fmt::format("\n - 99th Percentile (ms): {}", percentile(stage.recent_ms, 99));
}

// The reference prints print("=====", "\nNum requests: N\nPrefill node TTFT stats:..."
// "\n", "=====") — the same lines here, with the end-to-end stage added.
std::optional<std::string> TtftStats::take_report() {
  std::lock_guard lock(mutex_);
  if (!changed_) return std::nullopt;
  changed_ = false;
  std::string out = "=============================== ";
  out += fmt::format("\nNum requests: {}", std::max(prefill_.count, end_to_end_.count));
  append_stage(out, "Prefill node", prefill_);
  append_stage(out, "End-to-end", end_to_end_);
  out += "\n ===============================\n";
  return out;
}

}  // namespace tandem
