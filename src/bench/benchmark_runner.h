// BenchmarkRunner: sends every request at its scheduled time (waiting for a free slot when
// --max-concurrency is set), streams all of them concurrently on one I/O thread, shows the
// progress bar, and returns what each request measured plus the benchmark's duration.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "bench/http_url.h"
#include "bench/request_body.h"
#include "bench/request_output.h"
#include "bench/streaming_client.h"

namespace tandem::bench {

enum class ProgressDisplay { kShown, kHidden };

struct BenchmarkPlan {
  HttpUrl api_url;
  ApiKind api = ApiKind::kCompletions;
  HttpHeaders headers;
  std::vector<std::string> bodies;  // one request body per request
  std::vector<int> prompt_lens;     // the dataset's prompt length of each request
  std::vector<double> arrivals;     // seconds after the start each request is due
  std::optional<int> max_concurrency;
  ProgressDisplay progress = ProgressDisplay::kShown;
};

struct BenchmarkRun {
  std::vector<RequestOutput> outputs;  // in request order
  double duration_s = 0;               // first scheduled send -> last response done
};

// Throws tandem::Error when the host does not resolve; request failures are in the outputs.
BenchmarkRun run_benchmark(const BenchmarkPlan& plan);

}  // namespace tandem::bench
