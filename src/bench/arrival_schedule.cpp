// ArrivalSchedule: gamma-distributed gaps, accumulated and rescaled (vLLM's get_request).
#include "bench/arrival_schedule.h"

#include <cmath>
#include <random>

#include "bench/seeded_rng.h"
#include "core/error.h"

namespace tandem::bench {

std::vector<double> arrival_offsets(int num_requests, const ArrivalParams& p) {
  TANDEM_CHECK(p.request_rate > 0, "--request-rate must be positive (or inf), got {}",
               p.request_rate);
  TANDEM_CHECK(p.burstiness > 0, "--burstiness must be positive, got {}", p.burstiness);
  std::vector<double> offsets(size_t(std::max(num_requests, 0)), 0.0);
  if (offsets.empty() || std::isinf(p.request_rate)) return offsets;

  // The gap before each request (the first one's included, as in vLLM).
  SeededRng rng(p.seed);
  std::gamma_distribution<double> gamma(p.burstiness, 1.0 / (p.request_rate * p.burstiness));
  double total = 0;
  for (double& t : offsets) {
    total += std::isinf(p.burstiness) ? 1.0 / p.request_rate : gamma(rng.engine());
    t = total;
  }
  // Rescale so the schedule spans exactly num_requests / rate: the throughput a seed gives
  // then does not drift with the sampled sum of gaps.
  if (total > 0) {
    const double scale = (num_requests / p.request_rate) / total;
    for (double& t : offsets) t *= scale;
  }
  return offsets;
}

const char* arrival_distribution_name(double burstiness) {
  return burstiness == 1.0 ? "Poisson process" : "Gamma distribution";
}

}  // namespace tandem::bench
