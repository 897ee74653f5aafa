// POST /v1/chat/completions: messages rendered by the chat template (tools passed through),
// n choices, whole or streamed (the first chunk of each choice carries the assistant role).
#pragma once
#include <cstdint>
#include <vector>

#include <httplib.h>

#include "server/serving_context.h"

namespace tandem {

class ChatHandler {
 public:
  explicit ChatHandler(const ServingContext& ctx) : ctx_(ctx) {}
  void handle(const httplib::Request& req, httplib::Response& res) const;

 private:
  const ServingContext& ctx_;
};

}  // namespace tandem

namespace tandem {

struct ChatPromptInput;

// The token ids of a chat prompt: rendered through ctx.chat (ApiError 400 when the server has
// no chat template or the template fails), then tokenized.
std::vector<int32_t> chat_prompt_ids(const ServingContext& ctx, const ChatPromptInput& input,
                                     bool add_special_tokens);

}  // namespace tandem
