// StopChecker: token-level stops first (EOS, stop_token_ids), then stop strings searched only
// where the new piece can complete them, then the length limit; plus the streaming holdback.
#include "engine/stop_checker.h"

#include <algorithm>

#include "core/error.h"

namespace tandem {

StopChecker::StopChecker(const SamplingParams& params, std::span<const int32_t> eos_token_ids,
                         int output_token_budget)
    : stop_strings_(params.stop),
      include_stop_str_(params.include_stop_str_in_output),
      min_tokens_(params.min_tokens) {
  params.validate();
  TANDEM_CHECK(output_token_budget >= 1,
               "stop checker: output_token_budget must be at least 1, got {}", output_token_budget);
  max_tokens_ = std::min(params.max_tokens.value_or(output_token_budget), output_token_budget);
  if (!params.ignore_eos) stop_token_ids_.assign(eos_token_ids.begin(), eos_token_ids.end());
  num_eos_ids_ = stop_token_ids_.size();
  stop_token_ids_.insert(stop_token_ids_.end(), params.stop_token_ids.begin(),
                         params.stop_token_ids.end());
}

bool StopChecker::stop_on_token(int32_t token_id) {
  auto it = std::find(stop_token_ids_.begin(), stop_token_ids_.end(), token_id);
  if (it == stop_token_ids_.end()) return false;
  if (size_t(it - stop_token_ids_.begin()) >= num_eos_ids_) stop_reason_ = token_id;
  reason_ = FinishReason::kStop;
  return true;
}

FinishReason StopChecker::append(int32_t token_id, std::string_view text_piece) {
  TANDEM_CHECK(!finished(), "stop checker: token {} appended after the sequence finished ({})",
               token_id, finish_reason_name(reason_));
  ++num_tokens_;
  bool stops_armed = num_tokens_ > min_tokens_;  // min_tokens tokens come before any stop
  if (stops_armed && stop_on_token(token_id)) {
    if (include_stop_str_) text_.append(text_piece);  // else the stop token's text is dropped
    return reason_;
  }
  size_t old_length = text_.size();
  text_.append(text_piece);
  if (stops_armed) check_stop_strings(old_length);
  if (!finished() && num_tokens_ >= max_tokens_) reason_ = FinishReason::kLength;
  return reason_;
}

void StopChecker::check_stop_strings(size_t old_length) {
  size_t best_pos = std::string::npos;
  const std::string* best = nullptr;
  for (const std::string& stop : stop_strings_) {
    // A match must end in the new text: it starts at or after old_length + 1 - |stop|.
    size_t from = old_length + 1 > stop.size() ? old_length + 1 - stop.size() : 0;
    size_t pos = text_.find(stop, from);
    if (pos < best_pos) {  // the earliest match wins; at equal positions, the first listed
      best_pos = pos;
      best = &stop;
    }
  }
  if (!best) return;
  size_t end = include_stop_str_ ? best_pos + best->size() : best_pos;
  text_.resize(std::min(end, text_.size()));
  stop_reason_ = *best;
  reason_ = FinishReason::kStop;
}

void StopChecker::abort() {
  if (!finished()) reason_ = FinishReason::kAbort;
}

size_t StopChecker::safe_text_length() const {
  if (finished() || include_stop_str_) return text_.size();
  size_t held = 0;  // the longest suffix of text_ that is a proper prefix of a stop string
  std::string_view text(text_);
  for (const std::string& stop : stop_strings_) {
    size_t longest = std::min(stop.size() - 1, text.size());
    for (size_t len = longest; len > held; --len) {
      if (text.ends_with(std::string_view(stop).substr(0, len))) {
        held = len;
        break;
      }
    }
  }
  return text_.size() - held;
}

std::string StopChecker::take_stream_delta() {
  size_t safe = safe_text_length();
  std::string delta = safe > streamed_ ? text_.substr(streamed_, safe - streamed_) : "";
  streamed_ = std::max(streamed_, safe);
  return delta;
}

}  // namespace tandem
