// /tokenize and /detokenize.
#include "server/tokenize_handler.h"

#include "core/error.h"
#include "server/chat_handler.h"
#include "server/chat_prompt.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"
#include "server/request_planning.h"

namespace tandem {

void TokenizeHandler::tokenize(const httplib::Request& req, httplib::Response& res) const {
  TokenizeRequest request = parse_tokenize_request(req.body);
  resolve_model_name(ctx_.model, request.model);
  std::vector<int32_t> ids;
  if (request.prompt) {
    try {
      for (int id : ctx_.tokenizer->encode(*request.prompt, request.add_special_tokens)) {
        ids.push_back(id);
      }
    } catch (const Error& e) {
      fail_param("prompt", "The prompt cannot be tokenized: {}", e.what());
    }
  } else {
    ChatPromptInput input{request.messages, request.tools, request.template_kwargs,
                          request.add_generation_prompt, request.continue_final_message};
    ids = chat_prompt_ids(ctx_, input, request.add_special_tokens);
  }
  OrderedJson token_strs = nullptr;
  if (request.return_token_strs) {
    token_strs = OrderedJson::array();
    for (int32_t id : ids) token_strs.push_back(ctx_.tokenizer->id_to_token(id).value_or(""));
  }
  OrderedJson body = {{"count", ids.size()},
                      {"max_model_len", ctx_.model.max_model_len},
                      {"tokens", ids},
                      {"token_strs", std::move(token_strs)}};
  res.set_content(dump_json(body), "application/json");
}

void TokenizeHandler::detokenize(const httplib::Request& req, httplib::Response& res) const {
  DetokenizeRequest request = parse_detokenize_request(req.body);
  resolve_model_name(ctx_.model, request.model);
  check_token_ids(ctx_.model, request.tokens, "tokens");
  std::vector<int> ids(request.tokens.begin(), request.tokens.end());
  std::string text;
  try {
    text = ctx_.tokenizer->decode(ids, /* skip_special_tokens = */ false);
  } catch (const Error& e) {
    fail_param("tokens", "The tokens cannot be decoded: {}", e.what());
  }
  res.set_content(dump_json(OrderedJson{{"prompt", text}}), "application/json");
}

}  // namespace tandem
