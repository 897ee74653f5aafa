// StopChecker: EOS / stop_token_ids / ignore_eos, max_tokens and the context budget, min_tokens,
// stop strings across token boundaries with truncation or inclusion, and the streaming
// holdback (the streamed text never shows a stop string and always adds up to the final text).
#include "engine/stop_checker.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace tandem {
namespace {

const std::vector<int32_t> kEos = {2, 9};
constexpr int32_t kToken = 5;  // a token that is neither EOS nor a stop token

// Feeds `pieces` as tokens kToken; returns the finish reason after the last one.
FinishReason feed(StopChecker& checker, const std::vector<std::string>& pieces) {
  FinishReason reason = FinishReason::kNone;
  for (const std::string& piece : pieces) reason = checker.append(kToken, piece);
  return reason;
}

TEST(StopChecker, EosStopsAndItsTextIsDropped) {
  StopChecker checker(SamplingParams{}, kEos);
  EXPECT_EQ(checker.append(kToken, "Hi"), FinishReason::kNone);
  EXPECT_EQ(checker.append(9, "</s>"), FinishReason::kStop);
  EXPECT_EQ(checker.text(), "Hi");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(checker.stop_reason()));
  EXPECT_STREQ(finish_reason_name(checker.finish_reason()), "stop");
  EXPECT_THROW(checker.append(kToken, "x"), Error);
}

TEST(StopChecker, IgnoreEosRunsToTheLengthLimit) {
  SamplingParams params;
  params.ignore_eos = true;
  params.max_tokens = 3;
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.append(2, "a"), FinishReason::kNone);
  EXPECT_EQ(checker.append(9, "b"), FinishReason::kNone);
  EXPECT_EQ(checker.append(2, "c"), FinishReason::kLength);
  EXPECT_EQ(checker.text(), "abc");
  EXPECT_STREQ(finish_reason_name(checker.finish_reason()), "length");
}

TEST(StopChecker, StopTokenIdsReportTheIdAndMayKeepTheirText) {
  SamplingParams params;
  params.stop_token_ids = {7};
  StopChecker dropped(params, kEos);
  EXPECT_EQ(feed(dropped, {"x"}), FinishReason::kNone);
  EXPECT_EQ(dropped.append(7, "<|end|>"), FinishReason::kStop);
  EXPECT_EQ(dropped.text(), "x");
  EXPECT_EQ(std::get<int32_t>(dropped.stop_reason()), 7);
  params.include_stop_str_in_output = true;
  params.ignore_eos = true;  // stop_token_ids still stop
  StopChecker kept(params, kEos);
  EXPECT_EQ(kept.append(2, "x"), FinishReason::kNone);
  EXPECT_EQ(kept.append(7, "<|end|>"), FinishReason::kStop);
  EXPECT_EQ(kept.text(), "x<|end|>");
}

TEST(StopChecker, MaxTokensAndTheContextBudgetGiveLength) {
  SamplingParams params;
  params.max_tokens = 4;
  StopChecker checker(params, kEos);
  EXPECT_EQ(feed(checker, {"a", "b", "c"}), FinishReason::kNone);
  EXPECT_EQ(checker.append(kToken, "d"), FinishReason::kLength);
  EXPECT_EQ(checker.num_tokens(), 4);
  StopChecker budget(params, kEos, /*output_token_budget=*/2);
  EXPECT_EQ(feed(budget, {"a", "b"}), FinishReason::kLength);
  StopChecker unlimited(SamplingParams{}, kEos, /*output_token_budget=*/3);
  EXPECT_EQ(feed(unlimited, {"a", "b", "c"}), FinishReason::kLength);
  // A stop on the last allowed token is a stop, not a length finish.
  StopChecker last(params, kEos);
  feed(last, {"a", "b", "c"});
  EXPECT_EQ(last.append(2, ""), FinishReason::kStop);
  EXPECT_THROW(StopChecker(params, kEos, 0), Error);
}

TEST(StopChecker, MinTokensComeBeforeAnyStop) {
  SamplingParams params;
  params.min_tokens = 2;
  params.stop = {"!"};
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.append(2, "a!"), FinishReason::kNone);  // EOS and "!" ignored
  EXPECT_EQ(checker.append(9, "b"), FinishReason::kNone);
  EXPECT_EQ(checker.append(kToken, "c!d"), FinishReason::kStop);
  EXPECT_EQ(checker.text(), "a!bc");
  StopChecker eos(params, kEos);
  feed(eos, {"a", "b"});
  EXPECT_EQ(eos.append(9, ""), FinishReason::kStop);
}

TEST(StopChecker, StopStringAcrossTokenBoundariesIsCut) {
  SamplingParams params;
  params.stop = {"o, w"};
  StopChecker checker(params, kEos);
  EXPECT_EQ(feed(checker, {"Hel", "lo,"}), FinishReason::kNone);
  EXPECT_EQ(checker.append(kToken, " world"), FinishReason::kStop);
  EXPECT_EQ(checker.text(), "Hell");
  EXPECT_EQ(std::get<std::string>(checker.stop_reason()), "o, w");
}

TEST(StopChecker, IncludeStopStrKeepsItAndCutsWhatFollows) {
  SamplingParams params;
  params.stop = {"wo"};
  params.include_stop_str_in_output = true;
  StopChecker checker(params, kEos);
  EXPECT_EQ(feed(checker, {"hello w", "orld!"}), FinishReason::kStop);
  EXPECT_EQ(checker.text(), "hello wo");
  // Nothing is held back: the emitted text is final.
  StopChecker streaming(params, kEos);
  feed(streaming, {"say w"});
  EXPECT_EQ(streaming.take_stream_delta(), "say w");
}

TEST(StopChecker, TheEarliestStopStringWins) {
  SamplingParams params;
  params.stop = {"cd", "bcd"};
  StopChecker checker(params, kEos);
  EXPECT_EQ(feed(checker, {"a", "bcde"}), FinishReason::kStop);
  EXPECT_EQ(checker.text(), "a");
  EXPECT_EQ(std::get<std::string>(checker.stop_reason()), "bcd");
}

TEST(StopChecker, StopStringOnlyMatchesWhereTheNewTextEndsIt) {
  SamplingParams params;
  params.stop = {"xx"};
  params.min_tokens = 1;
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.append(kToken, "axx"), FinishReason::kNone);  // before min_tokens
  EXPECT_EQ(checker.append(kToken, "b"), FinishReason::kNone);    // not searched again
  EXPECT_EQ(checker.append(kToken, "x"), FinishReason::kNone);
  EXPECT_EQ(checker.append(kToken, "x"), FinishReason::kStop);
  EXPECT_EQ(checker.text(), "axxb");
}

TEST(StopChecker, StreamingHoldsBackAPossibleStopPrefix) {
  SamplingParams params;
  params.stop = {"STOP", "TOPS", "\n\n"};
  StopChecker checker(params, kEos);
  feed(checker, {"abc S"});
  EXPECT_EQ(checker.safe_text_length(), 4u);
  EXPECT_EQ(checker.take_stream_delta(), "abc ");
  feed(checker, {"T"});  // "ST" starts "STOP"; "T" starts "TOPS": the longer one is held
  EXPECT_EQ(checker.take_stream_delta(), "");
  feed(checker, {"x\n"});
  EXPECT_EQ(checker.take_stream_delta(), "STx");
  EXPECT_EQ(checker.append(kToken, "\nrest"), FinishReason::kStop);
  EXPECT_EQ(checker.take_stream_delta(), "");
  EXPECT_EQ(checker.text(), "abc STx");
  StopChecker aborted(params, kEos);
  feed(aborted, {"go S"});
  EXPECT_EQ(aborted.take_stream_delta(), "go ");
  aborted.abort();
  EXPECT_EQ(aborted.finish_reason(), FinishReason::kAbort);
  EXPECT_EQ(aborted.take_stream_delta(), "S");  // finished: nothing can change any more
  EXPECT_STREQ(finish_reason_name(FinishReason::kAbort), "abort");
}

// Splits `text` into random pieces of 0..4 bytes (fixed seed).
std::vector<std::string> random_split(const std::string& text, std::mt19937& rng) {
  std::vector<std::string> pieces;
  for (size_t pos = 0; pos < text.size();) {
    size_t len = std::min<size_t>(rng() % 5, text.size() - pos);
    pieces.push_back(text.substr(pos, len));
    pos += len;
  }
  return pieces;
}

TEST(StopChecker, StreamedTextNeverShowsTheStopAndAddsUpToTheFinalText) {
  std::mt19937 rng(42);
  SamplingParams params;
  params.stop = {"<end>", "ee"};
  const std::string text = "the <en<e>d> tree is <end> gone";  // "ee" comes first, in "tree"
  for (int trial = 0; trial < 200; ++trial) {
    StopChecker checker(params, kEos);
    std::string streamed;
    for (const std::string& piece : random_split(text, rng)) {
      if (checker.append(kToken, piece) != FinishReason::kNone) break;
      streamed += checker.take_stream_delta();
      EXPECT_EQ(streamed.find("ee"), std::string::npos) << streamed;
    }
    ASSERT_EQ(checker.finish_reason(), FinishReason::kStop);
    streamed += checker.take_stream_delta();
    EXPECT_EQ(streamed, "the <en<e>d> tr");
    EXPECT_EQ(checker.text(), streamed);
  }
}

}  // namespace
}  // namespace tandem
