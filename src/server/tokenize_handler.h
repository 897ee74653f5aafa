// POST /tokenize and POST /detokenize, with vLLM's request and response shapes. /tokenize takes
// a prompt, or chat messages rendered through the chat template.
#pragma once
#include <httplib.h>

#include "server/serving_context.h"

namespace tandem {

class TokenizeHandler {
 public:
  explicit TokenizeHandler(const ServingContext& ctx) : ctx_(ctx) {}
  // {"count", "max_model_len", "tokens", "token_strs"}.
  void tokenize(const httplib::Request& req, httplib::Response& res) const;
  // {"prompt": text}.
  void detokenize(const httplib::Request& req, httplib::Response& res) const;

 private:
  const ServingContext& ctx_;
};

}  // namespace tandem
