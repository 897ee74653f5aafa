// SamplingParams::validate(): defaults pass; each out-of-range field is rejected with a message
// naming the field and the offending value.
#include "engine/sampling_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "core/error.h"

namespace tandem {
namespace {

// Expects validate() to throw a tandem::Error whose message contains every `needles` entry.
void expect_invalid(const std::function<void(SamplingParams&)>& edit,
                    std::initializer_list<std::string> needles) {
  SamplingParams params;
  edit(params);
  try {
    params.validate();
    ADD_FAILURE() << "validate() accepted the params; expected: " << *needles.begin();
  } catch (const Error& e) {
    for (const std::string& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "message '" << e.what() << "' lacks '" << needle << "'";
    }
  }
}

TEST(SamplingParams, DefaultsAndBoundaryValuesAreValid) {
  SamplingParams params;
  EXPECT_NO_THROW(params.validate());
  EXPECT_FALSE(params.is_greedy());
  params.temperature = 0.0f;
  params.top_p = 1.0f;
  params.top_k = -1;
  params.min_p = 1.0f;
  params.presence_penalty = -2.0f;
  params.frequency_penalty = 2.0f;
  params.repetition_penalty = 0.01f;
  params.max_tokens = 1;
  params.min_tokens = 1;
  params.logprobs = kMaxLogprobs;
  params.stop = {"\n\n"};
  params.stop_token_ids = {0};
  params.seed = -5;
  EXPECT_NO_THROW(params.validate());
  EXPECT_TRUE(params.is_greedy());
}

TEST(SamplingParams, RejectsBadTemperature) {
  expect_invalid([](SamplingParams& p) { p.temperature = -0.5f; }, {"temperature", "-0.5"});
  expect_invalid([](SamplingParams& p) { p.temperature = NAN; }, {"temperature", "nan"});
  expect_invalid([](SamplingParams& p) { p.temperature = INFINITY; }, {"temperature", "inf"});
}

TEST(SamplingParams, RejectsBadFilters) {
  expect_invalid([](SamplingParams& p) { p.top_p = 0.0f; }, {"top_p", "(0, 1]", "0"});
  expect_invalid([](SamplingParams& p) { p.top_p = 1.5f; }, {"top_p", "1.5"});
  expect_invalid([](SamplingParams& p) { p.top_p = NAN; }, {"top_p", "nan"});
  expect_invalid([](SamplingParams& p) { p.top_k = -2; }, {"top_k", "-2"});
  expect_invalid([](SamplingParams& p) { p.min_p = -0.1f; }, {"min_p", "-0.1"});
  expect_invalid([](SamplingParams& p) { p.min_p = 1.25f; }, {"min_p", "1.25"});
}

TEST(SamplingParams, RejectsBadPenalties) {
  expect_invalid([](SamplingParams& p) { p.presence_penalty = 2.5f; },
                 {"presence_penalty", "[-2, 2]", "2.5"});
  expect_invalid([](SamplingParams& p) { p.frequency_penalty = -3.0f; },
                 {"frequency_penalty", "-3"});
  expect_invalid([](SamplingParams& p) { p.frequency_penalty = NAN; },
                 {"frequency_penalty", "nan"});
  expect_invalid([](SamplingParams& p) { p.repetition_penalty = 0.0f; },
                 {"repetition_penalty", "greater than 0", "0"});
  expect_invalid([](SamplingParams& p) { p.repetition_penalty = -1.0f; },
                 {"repetition_penalty", "-1"});
}

TEST(SamplingParams, RejectsBadLengthsAndStops) {
  expect_invalid([](SamplingParams& p) { p.max_tokens = 0; }, {"max_tokens", "0"});
  expect_invalid([](SamplingParams& p) { p.min_tokens = -1; }, {"min_tokens", "-1"});
  expect_invalid(
      [](SamplingParams& p) {
        p.max_tokens = 4;
        p.min_tokens = 5;
      },
      {"min_tokens", "max_tokens (4)", "5"});
  expect_invalid([](SamplingParams& p) { p.stop = {"ok", ""}; }, {"stop[1]", "empty"});
  expect_invalid(
      [](SamplingParams& p) {
        p.stop_token_ids = {3, -7};
      },
      {"stop_token_ids[1]", "-7"});
  expect_invalid([](SamplingParams& p) { p.logprobs = 21; }, {"logprobs", "[0, 20]", "21"});
  expect_invalid([](SamplingParams& p) { p.logprobs = -1; }, {"logprobs", "-1"});
}

}  // namespace
}  // namespace tandem
