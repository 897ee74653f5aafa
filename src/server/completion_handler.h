// POST /v1/completions: prompts (text or token ids) x n choices, whole or streamed.
#pragma once
#include <httplib.h>

#include "server/serving_context.h"

namespace tandem {

// Default max_tokens of /v1/completions (OpenAI's).
inline constexpr int kDefaultCompletionMaxTokens = 16;

class CompletionHandler {
 public:
  explicit CompletionHandler(const ServingContext& ctx) : ctx_(ctx) {}
  // Throws ApiError for bad requests (before any byte of a stream is sent).
  void handle(const httplib::Request& req, httplib::Response& res) const;

 private:
  const ServingContext& ctx_;
};

}  // namespace tandem
