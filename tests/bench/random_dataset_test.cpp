// The random dataset: exact token lengths after decode/re-encode on both tokenizer kinds, length
// ranges, reproducibility from the seed, the shared prefix, and clear errors.
#include "bench/random_dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "test_support.h"

namespace tandem::bench {
namespace {

using ::testing::HasSubstr;

const Tokenizer& stories() {
  static const Tokenizer t = Tokenizer::load(test::golden_model("stories260K"));
  return t;
}
const Tokenizer& llama3() {
  static const Tokenizer t = Tokenizer::load(test::golden_model("llama3-tokenizer"));
  return t;
}

RandomDatasetParams params(int num, int input_len, uint64_t seed = 0) {
  RandomDatasetParams p;
  p.num_prompts = num;
  p.input_len = input_len;
  p.output_len = 16;
  p.seed = seed;
  return p;
}

TEST(RandomDataset, PromptsEncodeToExactlyTheAskedLength) {
  for (const Tokenizer* tok : {&stories(), &llama3()}) {
    for (int input_len : {2, 17, 300}) {
      RandomDataset d = build_random_dataset(*tok, params(40, input_len));
      ASSERT_EQ(d.requests.size(), 40u);
      EXPECT_EQ(d.token_mismatch, 0);
      for (const SampleRequest& r : d.requests) {
        // The server adds BOS: the prompt is one token short of --random-input-len.
        EXPECT_EQ(int(tok->encode(r.prompt, false).size()), input_len - 1) << r.prompt;
        EXPECT_EQ(int(tok->encode(r.prompt, true).size()), input_len);
        EXPECT_EQ(r.prompt_len, input_len - 1);
        EXPECT_EQ(r.expected_output_len, 16);
        for (int id : tok->encode(r.prompt, false)) EXPECT_FALSE(tok->is_special(id));
      }
    }
  }
}

TEST(RandomDataset, RangeRatioDrawsLengthsFromTheRange) {
  RandomDatasetParams p = params(200, 101);
  p.output_len = 40;
  p.range_ratio = 0.5;
  RandomDataset d = build_random_dataset(stories(), p);
  int min_in = 1 << 30, max_in = 0, min_out = 1 << 30, max_out = 0;
  for (const SampleRequest& r : d.requests) {
    EXPECT_EQ(int(stories().encode(r.prompt, false).size()), r.prompt_len);
    min_in = std::min(min_in, r.prompt_len);
    max_in = std::max(max_in, r.prompt_len);
    min_out = std::min(min_out, r.expected_output_len);
    max_out = std::max(max_out, r.expected_output_len);
  }
  // input: 100 real tokens -> [50, 150]; output: [20, 60]; 200 draws reach near both ends.
  EXPECT_GE(min_in, 50);
  EXPECT_LE(max_in, 150);
  EXPECT_LT(min_in, 60);
  EXPECT_GT(max_in, 140);
  EXPECT_GE(min_out, 20);
  EXPECT_LE(max_out, 60);
  EXPECT_LT(min_out, 25);
  EXPECT_GT(max_out, 55);
}

TEST(RandomDataset, TheSeedReproducesThePrompts) {
  auto a = build_random_dataset(llama3(), params(10, 50, 7));
  auto b = build_random_dataset(llama3(), params(10, 50, 7));
  auto c = build_random_dataset(llama3(), params(10, 50, 8));
  int same_as_c = 0;
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(a.requests[i].prompt, b.requests[i].prompt);
    same_as_c += a.requests[i].prompt == c.requests[i].prompt;
  }
  EXPECT_EQ(same_as_c, 0);
  // Prompts of one dataset differ from each other.
  EXPECT_NE(a.requests[0].prompt, a.requests[1].prompt);
}

TEST(RandomDataset, APrefixIsSharedByEveryPrompt) {
  for (const Tokenizer* tok : {&stories(), &llama3()}) {
    RandomDatasetParams p = params(20, 41);
    p.prefix_len = 60;
    RandomDataset d = build_random_dataset(*tok, p);
    std::vector<int> first = tok->encode(d.requests[0].prompt, false);
    for (const SampleRequest& r : d.requests) {
      std::vector<int> ids = tok->encode(r.prompt, false);
      EXPECT_EQ(int(ids.size()), 60 + 40);
      // The prefix tokens survive re-encoding, except possibly the one at the seam.
      EXPECT_TRUE(std::equal(ids.begin(), ids.begin() + 59, first.begin()));
    }
    EXPECT_NE(d.requests[0].prompt, d.requests[1].prompt);
  }
}

TEST(RandomDataset, ImpossibleParametersNameTheFlag) {
  auto error_of = [](RandomDatasetParams p) {
    try {
      (void)build_random_dataset(stories(), p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  RandomDatasetParams p = params(1, 10);
  p.range_ratio = 1.0;
  EXPECT_THAT(error_of(p), HasSubstr("--random-range-ratio"));
  EXPECT_THAT(error_of(params(0, 10)), HasSubstr("--num-prompts"));
  EXPECT_THAT(error_of(params(1, 1)), HasSubstr("--random-input-len 1 is too small"));
  p = params(1, 10);
  p.output_len = 0;
  EXPECT_THAT(error_of(p), HasSubstr("--random-output-len"));
}

}  // namespace
}  // namespace tandem::bench
