// StopChecker: decides, token by token, when one sequence is finished and what its output text
// is, with vLLM's rules: EOS (unless ignore_eos), stop_token_ids and stop strings finish with
// `stop` once more than min_tokens tokens exist; max_tokens (or the context budget) with
// `length`. It works on the text pieces an incremental detokenizer produces, cuts the text
// before a stop string, and tells a streamer how much text is final (never part of a stop).
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/request.h"  // FinishReason, finish_reason_name
#include "engine/sampling_params.h"

namespace tandem {

// What matched for kStop (vLLM's stop_reason): nothing for EOS, the token id for
// stop_token_ids, the string for stop strings.
using StopReason = std::variant<std::monostate, int32_t, std::string>;

class StopChecker {
 public:
  // eos_token_ids: the model's (from its config). output_token_budget: the most tokens the
  // context leaves for the output (>= 1); it caps max_tokens and replaces it when unset.
  StopChecker(const SamplingParams& params, std::span<const int32_t> eos_token_ids,
              int output_token_budget = std::numeric_limits<int>::max());

  // Feeds one generated token and the text it added (the detokenizer's delta, maybe empty).
  // Returns the finish reason (kNone: keep going). Throws tandem::Error once finished.
  FinishReason append(int32_t token_id, std::string_view text_piece);
  // Finishes with kAbort (no-op when already finished).
  void abort();

  FinishReason finish_reason() const { return reason_; }
  bool finished() const { return reason_ != FinishReason::kNone; }
  const StopReason& stop_reason() const { return stop_reason_; }
  int num_tokens() const { return num_tokens_; }

  // The output text so far; the final text (cut at the stop string) once finished.
  const std::string& text() const { return text_; }
  // The length of the prefix of text() that can no longer change or turn out to be part of a
  // stop string: all of it once finished, else text() minus the longest suffix that begins a
  // stop string (nothing is held back with include_stop_str_in_output).
  size_t safe_text_length() const;
  // Returns text()[streamed, safe_text_length()) and marks it streamed.
  std::string take_stream_delta();

 private:
  // Finishes with kStop if token_id is an EOS or stop token; returns whether it did.
  bool stop_on_token(int32_t token_id);
  // Looks for a stop string that ends in the text after `old_length`; cuts the text and
  // finishes if one does.
  void check_stop_strings(size_t old_length);

  std::vector<std::string> stop_strings_;  // params.stop
  std::vector<int32_t> stop_token_ids_;    // EOS ids (unless ignore_eos) then stop_token_ids
  size_t num_eos_ids_ = 0;                 // the first num_eos_ids_ of stop_token_ids_ are EOS
  bool include_stop_str_ = false;
  int min_tokens_ = 0;
  int max_tokens_ = 0;  // min(params.max_tokens, output_token_budget)

  std::string text_;     // the output text, UTF-8
  size_t streamed_ = 0;  // bytes of text_ handed out by take_stream_delta()
  int num_tokens_ = 0;
  FinishReason reason_ = FinishReason::kNone;
  StopReason stop_reason_;
};

}  // namespace tandem
