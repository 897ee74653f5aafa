// SamplingParams::validate(): the ranges vLLM enforces, one clear message per field.
#include "engine/sampling_params.h"

#include <cmath>

#include "core/error.h"

namespace tandem {
namespace {

void check_finite(const char* field, float value) {
  TANDEM_CHECK(std::isfinite(value), "{} must be a finite number, got {}", field, value);
}

void check_penalty(const char* field, float value) {
  check_finite(field, value);
  TANDEM_CHECK(value >= -2.0f && value <= 2.0f, "{} must be in [-2, 2], got {}", field, value);
}

void check_sampling_fields(const SamplingParams& p) {
  check_finite("temperature", p.temperature);
  TANDEM_CHECK(p.temperature >= 0.0f, "temperature must be non-negative, got {}", p.temperature);
  check_finite("top_p", p.top_p);
  TANDEM_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "top_p must be in (0, 1], got {}", p.top_p);
  TANDEM_CHECK(p.top_k >= -1, "top_k must be 0 or -1 (off) or at least 1, got {}", p.top_k);
  check_finite("min_p", p.min_p);
  TANDEM_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "min_p must be in [0, 1], got {}", p.min_p);
  check_penalty("presence_penalty", p.presence_penalty);
  check_penalty("frequency_penalty", p.frequency_penalty);
  check_finite("repetition_penalty", p.repetition_penalty);
  TANDEM_CHECK(p.repetition_penalty > 0.0f, "repetition_penalty must be greater than 0, got {}",
               p.repetition_penalty);
}

void check_stopping_fields(const SamplingParams& p) {
  if (p.max_tokens) {
    TANDEM_CHECK(*p.max_tokens >= 1, "max_tokens must be at least 1, got {}", *p.max_tokens);
  }
  TANDEM_CHECK(p.min_tokens >= 0, "min_tokens must be non-negative, got {}", p.min_tokens);
  if (p.max_tokens) {
    TANDEM_CHECK(p.min_tokens <= *p.max_tokens,
                 "min_tokens must be less than or equal to max_tokens ({}), got {}", *p.max_tokens,
                 p.min_tokens);
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    TANDEM_CHECK(!p.stop[i].empty(), "stop[{}] must not be an empty string", i);
  }
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i) {
    TANDEM_CHECK(p.stop_token_ids[i] >= 0, "stop_token_ids[{}] must be non-negative, got {}", i,
                 p.stop_token_ids[i]);
  }
  if (p.logprobs) {
    TANDEM_CHECK(*p.logprobs >= 0 && *p.logprobs <= kMaxLogprobs,
                 "logprobs must be in [0, {}], got {}", kMaxLogprobs, *p.logprobs);
  }
}

}  // namespace

void SamplingParams::validate() const {
  check_sampling_fields(*this);
  check_stopping_fields(*this);
}

}  // namespace tandem
