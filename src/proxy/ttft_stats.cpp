// TtftStats: samples and the reference's printed block.
#include "proxy/ttft_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace tandem {
namespace {

void append_stage(std::string& out, const char* title, const std::vector<double>& ms) {
  out += fmt::format("\n{} TTFT stats:", title);
  if (ms.empty()) {
    out += "\n - no requests yet";
    return;
  }
  double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
  out += fmt::format("\n - Average (ms): {}", mean);
  out += fmt::format("\n - Median (ms): {}", TtftStats::percentile(ms, 50));
  out += fmt::format("\n - 99th Percentile (ms): {}", TtftStats::percentile(ms, 99));
}

}  // namespace

void TtftStats::add_prefill(double ms) {
  std::lock_guard lock(mutex_);
  prefill_ms_.push_back(ms);
  changed_ = true;
}

void TtftStats::add_end_to_end(double ms) {
  std::lock_guard lock(mutex_);
  end_to_end_ms_.push_back(ms);
  changed_ = true;
}

double TtftStats::percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  double rank = p / 100.0 * double(values.size() - 1);
  size_t lo = size_t(std::floor(rank));
  size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - double(lo));
}

// The reference prints print("=====", "\nNum requests: N\nPrefill node TTFT stats:..."
// "\n", "=====") — the same lines here, with the end-to-end stage added.
std::optional<std::string> TtftStats::take_report() {
  std::lock_guard lock(mutex_);
  if (!changed_) return std::nullopt;
  changed_ = false;
  std::string out = "=============================== ";
  out += fmt::format("\nNum requests: {}", std::max(prefill_ms_.size(), end_to_end_ms_.size()));
  append_stage(out, "Prefill node", prefill_ms_);
  append_stage(out, "End-to-end", end_to_end_ms_);
  out += "\n ===============================\n";
  return out;
}

}  // namespace tandem
