// The "random" dataset of `vllm bench serve`: synthetic prompts of chosen token lengths built
// from a tokenizer's vocabulary (special tokens excluded), an optional shared prefix, decoded to
// text and re-encoded until the text is exactly the target number of tokens. Reproducible from
// the seed. Lengths are drawn uniformly from [len * (1 - range_ratio), len * (1 + range_ratio)].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tandem::bench {

struct RandomDatasetParams {
  int num_prompts = 1000;
  int input_len = 1024;      // tokens per prompt as the server counts them (special tokens incl.)
  int output_len = 128;      // max_tokens asked for
  double range_ratio = 0.0;  // in [0, 1)
  int prefix_len = 0;        // tokens of one random prefix shared by every prompt
  uint64_t seed = 0;
};

struct SampleRequest {
  std::string prompt;
  int prompt_len = 0;           // tokens of `prompt` without special tokens (the server adds them)
  int expected_output_len = 0;  // max_tokens for this request
};

struct RandomDataset {
  std::vector<SampleRequest> requests;
  // Sum over prompts of (re-encoded length - target length) for prompts that did not reach
  // their exact length within the retry budget; 0 when every prompt is exact.
  int64_t token_mismatch = 0;
};

// Throws tandem::Error naming the flag for impossible parameters.
RandomDataset build_random_dataset(const Tokenizer& tokenizer, const RandomDatasetParams& params);

}  // namespace tandem::bench
