// RequestOutput: what the benchmark client measured for one request, the fields of vLLM's
// RequestFuncOutput plus the times a timeline needs. All times are seconds; "_time" fields are
// offsets from the benchmark's start, the others durations.
#pragma once
#include <string>
#include <vector>

namespace tandem::bench {

struct RequestOutput {
  bool success = false;
  std::string error;           // why it failed ("" on success)
  int prompt_len = 0;          // usage.prompt_tokens when the server reports it, else the dataset's
  int output_tokens = 0;       // usage.completion_tokens; 0 when the server sent no usage
  std::string generated_text;  // the concatenated text of the streamed chunks
  double arrival_time = 0;     // when the schedule made it due
  double start_time = 0;       // when it was sent (after any --max-concurrency wait)
  double ttft = 0;             // send -> first chunk with non-empty choices
  std::vector<double> itl;     // gaps between successive chunks with choices
  double latency = 0;          // send -> last chunk with choices (vLLM's E2EL)
  double end_time = 0;         // when the response ended (stream closed or error)
};

}  // namespace tandem::bench
