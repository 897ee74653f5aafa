// Response and chunk bodies in OpenAI's field order, with vLLM's extras (stop_reason).
#include "server/openai_responses.h"

#include <algorithm>
#include <cmath>

namespace tandem {
namespace {

// OpenAI sends -9999.0 for -inf (JSON has no infinities).
double json_logprob(float logprob) {
  if (std::isnan(logprob)) return -9999.0;
  return std::max(double(logprob), -9999.0);
}

OrderedJson utf8_bytes(const std::string& text) {
  OrderedJson bytes = OrderedJson::array();
  for (unsigned char c : text) bytes.push_back(int(c));
  return bytes;
}

OrderedJson header_json(const ResponseHeader& header, const char* object) {
  return OrderedJson{
      {"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

const char* finish_json_name(FinishReason reason) {
  return reason == FinishReason::kNone ? nullptr : finish_reason_name(reason);
}

OrderedJson finish_json(FinishReason reason) {
  const char* name = finish_json_name(reason);
  return name ? OrderedJson(name) : OrderedJson(nullptr);
}

}  // namespace

void ChoiceResult::add(const ChoiceDelta& delta) {
  text += delta.text;
  if (delta.token_id >= 0) token_ids.push_back(delta.token_id);
  if (delta.logprob) logprobs.push_back(*delta.logprob);
  if (delta.finish != FinishReason::kNone) {
    finish = delta.finish;
    stop_reason = delta.stop_reason;
  }
}

int64_t count_code_points(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;  // count non-continuation bytes
  return n;
}

OrderedJson usage_json(const Usage& usage) {
  return OrderedJson{{"prompt_tokens", usage.prompt_tokens},
                     {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
                     {"completion_tokens", usage.completion_tokens}};
}

OrderedJson stop_reason_json(const StopReason& reason) {
  if (const auto* id = std::get_if<int32_t>(&reason)) return *id;
  if (const auto* text = std::get_if<std::string>(&reason)) return *text;
  return nullptr;
}

OrderedJson completion_logprobs_json(const std::vector<DecodedLogprob>& logprobs, int num_top,
                                     int64_t initial_offset) {
  OrderedJson tokens = OrderedJson::array(), token_logprobs = OrderedJson::array(),
              top_logprobs = OrderedJson::array(), text_offset = OrderedJson::array();
  int64_t offset = initial_offset;
  for (const DecodedLogprob& lp : logprobs) {
    tokens.push_back(lp.token);
    token_logprobs.push_back(json_logprob(lp.logprob));
    OrderedJson top = {{lp.token, json_logprob(lp.logprob)}};  // the sampled token first
    for (const auto& [text, value] : lp.top) {
      if (int(top.size()) > num_top) break;
      if (!top.contains(text)) top[text] = json_logprob(value);
    }
    top_logprobs.push_back(std::move(top));
    text_offset.push_back(offset);
    offset += count_code_points(lp.token);
  }
  return OrderedJson{{"text_offset", std::move(text_offset)},
                     {"token_logprobs", std::move(token_logprobs)},
                     {"tokens", std::move(tokens)},
                     {"top_logprobs", std::move(top_logprobs)}};
}

OrderedJson chat_logprobs_json(const std::vector<DecodedLogprob>& logprobs) {
  OrderedJson content = OrderedJson::array();
  for (const DecodedLogprob& lp : logprobs) {
    OrderedJson top = OrderedJson::array();
    for (const auto& [text, value] : lp.top) {
      top.push_back(
          {{"token", text}, {"logprob", json_logprob(value)}, {"bytes", utf8_bytes(text)}});
    }
    content.push_back({{"token", lp.token},
                       {"logprob", json_logprob(lp.logprob)},
                       {"bytes", utf8_bytes(lp.token)},
                       {"top_logprobs", std::move(top)}});
  }
  return OrderedJson{{"content", std::move(content)}};
}

OrderedJson completion_response(const ResponseHeader& header,
                                const std::vector<ChoiceResult>& choices, int logprobs_top,
                                const Usage& usage,
                                const std::vector<std::vector<int32_t>>* prompt_token_ids) {
  OrderedJson out = header_json(header, "text_completion");
  OrderedJson list = OrderedJson::array();
  for (const ChoiceResult& c : choices) {
    list.push_back(
        {{"index", c.index},
         {"text", c.text},
         {"logprobs", logprobs_top >= 0 ? completion_logprobs_json(c.logprobs, logprobs_top, 0)
                                        : OrderedJson(nullptr)},
         {"finish_reason", finish_json(c.finish)},
         {"stop_reason", stop_reason_json(c.stop_reason)}});
    if (prompt_token_ids) {
      list.back()["token_ids"] = c.token_ids;
      list.back()["prompt_token_ids"] = prompt_token_ids->at(size_t(c.index));
    }
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

OrderedJson chat_response(const ResponseHeader& header, const std::vector<ChoiceResult>& choices,
                          bool with_logprobs, const Usage& usage) {
  OrderedJson out = header_json(header, "chat.completion");
  OrderedJson list = OrderedJson::array();
  for (const ChoiceResult& c : choices) {
    list.push_back(
        {{"index", c.index},
         {"message", {{"role", "assistant"}, {"content", c.text}}},
         {"logprobs", with_logprobs ? chat_logprobs_json(c.logprobs) : OrderedJson(nullptr)},
         {"finish_reason", finish_json(c.finish)},
         {"stop_reason", stop_reason_json(c.stop_reason)}});
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

OrderedJson completion_chunk(const ResponseHeader& header, const ChoiceDelta& delta,
                             int logprobs_top, int64_t text_offset, bool include_usage,
                             bool return_token_ids, const std::vector<int32_t>* prompt_token_ids) {
  OrderedJson logprobs = nullptr;
  if (logprobs_top >= 0) {
    std::vector<DecodedLogprob> one;
    if (delta.logprob) one.push_back(*delta.logprob);
    logprobs = completion_logprobs_json(one, logprobs_top, text_offset);
  }
  OrderedJson out = header_json(header, "text_completion");
  out["choices"] = OrderedJson::array({{{"index", delta.index},
                                        {"text", delta.text},
                                        {"logprobs", std::move(logprobs)},
                                        {"finish_reason", finish_json(delta.finish)},
                                        {"stop_reason", stop_reason_json(delta.stop_reason)}}});
  if (return_token_ids) {
    OrderedJson& choice = out["choices"][0];
    choice["token_ids"] = OrderedJson::array();
    if (delta.token_id >= 0) choice["token_ids"].push_back(delta.token_id);
    if (prompt_token_ids) choice["prompt_token_ids"] = *prompt_token_ids;
  }
  if (include_usage) out["usage"] = nullptr;
  return out;
}

OrderedJson chat_role_chunk(const ResponseHeader& header, int index, bool include_usage) {
  OrderedJson out = header_json(header, "chat.completion.chunk");
  out["choices"] = OrderedJson::array({{{"index", index},
                                        {"delta", {{"role", "assistant"}, {"content", ""}}},
                                        {"logprobs", nullptr},
                                        {"finish_reason", nullptr}}});
  if (include_usage) out["usage"] = nullptr;
  return out;
}

OrderedJson chat_chunk(const ResponseHeader& header, const ChoiceDelta& delta, bool with_logprobs,
                       bool include_usage) {
  OrderedJson logprobs = nullptr;
  if (with_logprobs) {
    std::vector<DecodedLogprob> one;
    if (delta.logprob) one.push_back(*delta.logprob);
    logprobs = chat_logprobs_json(one);
  }
  OrderedJson choice = {{"index", delta.index},
                        {"delta", {{"content", delta.text}}},
                        {"logprobs", std::move(logprobs)},
                        {"finish_reason", finish_json(delta.finish)}};
  if (delta.finish != FinishReason::kNone)
    choice["stop_reason"] = stop_reason_json(delta.stop_reason);
  OrderedJson out = header_json(header, "chat.completion.chunk");
  out["choices"] = OrderedJson::array({std::move(choice)});
  if (include_usage) out["usage"] = nullptr;
  return out;
}

OrderedJson usage_chunk(const ResponseHeader& header, const char* object, const Usage& usage) {
  OrderedJson out = header_json(header, object);
  out["choices"] = OrderedJson::array();
  out["usage"] = usage_json(usage);
  return out;
}

}  // namespace tandem
