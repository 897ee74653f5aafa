// ArrivalSchedule: when each benchmark request is sent, as `vllm bench serve` decides it. With a
// finite --request-rate the gaps between requests are gamma-distributed with shape =
// --burstiness and mean 1/rate (burstiness 1 = a Poisson process, < 1 burstier, > 1 more even,
// inf = a constant gap), then rescaled so the last request is due at num_requests / rate; with
// rate inf every request is due at once.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

namespace tandem::bench {

struct ArrivalParams {
  double request_rate = std::numeric_limits<double>::infinity();  // requests per second
  double burstiness = 1.0;                                        // gamma shape, > 0
  uint64_t seed = 0;
};

// Send times in seconds after the benchmark starts, one per request, nondecreasing.
// Throws tandem::Error for a non-positive rate or burstiness.
std::vector<double> arrival_offsets(int num_requests, const ArrivalParams& params);

// "Poisson process" for burstiness 1, else "Gamma distribution" (the line vLLM prints).
const char* arrival_distribution_name(double burstiness);

}  // namespace tandem::bench
