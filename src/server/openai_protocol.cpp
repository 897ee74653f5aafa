// Parsing the OpenAI/vLLM request bodies into native structs (see openai_protocol.h).
#include "server/openai_protocol.h"

#include <limits>

#include "core/error.h"
#include "core/json_nesting.h"
#include "server/kv_transfer_request.h"
#include "server/openai_errors.h"
#include "server/request_fields.h"

namespace tandem {
namespace {

constexpr int64_t kMaxTokenId = std::numeric_limits<int32_t>::max();
constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// Fields Tandem does not implement: a non-null value is a 400, never silently ignored.
void reject_unsupported(const RequestFields& f) {
  for (const char* key : {"suffix", "prompt_logprobs", "guided_json", "guided_regex",
                          "guided_choice", "guided_grammar", "structured_outputs",
                          "truncate_prompt_tokens", "prompt_embeds", "chat_template"}) {
    if (f.has(key)) fail_param(key, "'{}' is not supported by this server", key);
  }
  if (auto bias = f.object("logit_bias"); bias && !bias->empty()) {
    fail_param("logit_bias", "'logit_bias' is not supported by this server");
  }
  if (auto format = f.object("response_format")) {
    auto type = RequestFields(*format, "response_format.").string("type");
    if (type && *type != "text") {
      fail_param("response_format", "response_format type '{}' is not supported (only 'text')",
                 *type);
    }
  }
}

void parse_sampling_fields(const RequestFields& f, SamplingParams& p) {
  if (auto v = f.number_f("temperature")) p.temperature = *v;
  if (auto v = f.number_f("top_p")) p.top_p = *v;
  if (auto v = f.bounded_int("top_k", std::numeric_limits<int>::min(), kIntMax)) p.top_k = *v;
  if (auto v = f.number_f("min_p")) p.min_p = *v;
  if (auto v = f.integer("seed")) p.seed = *v;
  if (auto v = f.number_f("presence_penalty")) p.presence_penalty = *v;
  if (auto v = f.number_f("frequency_penalty")) p.frequency_penalty = *v;
  if (auto v = f.number_f("repetition_penalty")) p.repetition_penalty = *v;
  if (auto v = f.bounded_int("min_tokens", std::numeric_limits<int>::min(), kIntMax)) {
    p.min_tokens = *v;
  }
  if (auto v = f.boolean("ignore_eos")) p.ignore_eos = *v;
  if (auto v = f.string_or_list("stop")) p.stop = std::move(*v);
  if (auto v = f.int_list("stop_token_ids", 0, kMaxTokenId)) p.stop_token_ids = std::move(*v);
  if (auto v = f.boolean("include_stop_str_in_output")) p.include_stop_str_in_output = *v;
}

// max_tokens (or, for chat, max_completion_tokens, which wins).
void parse_max_tokens(const RequestFields& f, SamplingParams& p, bool chat) {
  const char* key = chat && f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  std::optional<int64_t> v = f.integer(key);
  if (!v) return;
  if (*v < 1) fail_param(key, "'{}' must be at least 1, got {}", key, *v);
  p.max_tokens = int(std::min<int64_t>(*v, kIntMax));
}

void parse_stream_fields(const RequestFields& f, GenerationRequest& r) {
  r.stream = f.boolean("stream").value_or(false);
  if (auto options = f.object("stream_options")) {
    if (!r.stream) {
      fail_param("stream_options", "'stream_options' can only be set when 'stream' is true");
    }
    RequestFields o(*options, "stream_options.");
    r.include_usage = o.boolean("include_usage").value_or(false);
  }
}

GenerationRequest parse_common(const RequestFields& f, const SamplingParams& defaults, bool chat) {
  reject_unsupported(f);
  GenerationRequest r;
  r.model = f.string("model");
  r.params = defaults;
  r.params.max_tokens.reset();
  parse_sampling_fields(f, r.params);
  parse_max_tokens(f, r.params, chat);
  r.n = f.bounded_int("n", 1, kMaxChoices).value_or(1);
  if (auto best_of = f.integer("best_of"); best_of && *best_of != r.n) {
    fail_param("best_of", "'best_of' is not supported (it must equal n = {}), got {}", r.n,
               *best_of);
  }
  parse_stream_fields(f, r);
  r.skip_special_tokens = f.boolean("skip_special_tokens").value_or(true);
  r.echo = f.boolean("echo").value_or(false);
  r.return_token_ids = f.boolean("return_token_ids").value_or(false);
  if (chat && r.return_token_ids) {
    fail_param("return_token_ids",
               "'return_token_ids' is supported on /v1/completions only on this server");
  }
  r.add_special_tokens = f.boolean("add_special_tokens");
  r.user = f.string("user").value_or("");
  r.kv_transfer = parse_kv_transfer_params(f);
  return r;
}

std::vector<int32_t> parse_token_list(const OrderedJson& list, const char* what) {
  std::vector<int32_t> ids;
  ids.reserve(list.size());
  for (const OrderedJson& item : list) {
    if (!item.is_number_integer() ||
        (item.is_number_unsigned() && item.get<uint64_t>() > uint64_t(kMaxTokenId)) ||
        item.get<int64_t>() < 0 || item.get<int64_t>() > kMaxTokenId) {
      fail_param("prompt", "{} must contain token ids (non-negative integers), got {}", what,
                 brief_json(item));
    }
    ids.push_back(int32_t(item.get<int64_t>()));
  }
  return ids;
}

// "prompt": a string, a list of strings, a list of token ids, or a list of token-id lists.
std::vector<PromptInput> parse_prompts(const RequestFields& f) {
  const OrderedJson* v = f.get("prompt");
  if (!v) fail_param("prompt", "'prompt' is required");
  auto non_empty_text = [](const OrderedJson& s) {
    if (s.get_ref<const std::string&>().empty()) fail_param("prompt", "prompt cannot be empty");
    return s.get<std::string>();
  };
  if (v->is_string()) return {non_empty_text(*v)};
  if (!v->is_array() || v->empty()) {
    fail_param("prompt",
               "'prompt' must be a non-empty string, list of strings, list of token "
               "ids or list of token-id lists, got {}",
               brief_json(*v));
  }
  const OrderedJson& first = v->front();
  std::vector<PromptInput> prompts;
  if (first.is_number()) return {parse_token_list(*v, "'prompt'")};
  for (const OrderedJson& item : *v) {
    if (first.is_string() && item.is_string()) {
      prompts.emplace_back(non_empty_text(item));
    } else if (first.is_array() && item.is_array()) {
      if (item.empty()) fail_param("prompt", "prompt cannot be empty");
      prompts.emplace_back(parse_token_list(item, "each list in 'prompt'"));
    } else {
      fail_param("prompt",
                 "'prompt' must be a list of strings or a list of token-id lists, not "
                 "a mix; got {}",
                 brief_json(item));
    }
  }
  return prompts;
}

// A message's content: a string stays; a list of text parts becomes their texts joined with
// "\n" (what vLLM hands string-content templates); other part types are rejected.
OrderedJson flatten_content(const OrderedJson& content, size_t index) {
  if (content.is_null() || content.is_string()) return content;
  if (!content.is_array()) {
    fail_param("messages",
               "messages[{}].content must be a string, null or a list of content "
               "parts, got {}",
               index, brief_json(content));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const OrderedJson& part = content[i];
    auto is_text_part = [&] {
      if (!part.is_object()) return false;
      auto type = part.find("type"), text = part.find("text");
      return type != part.end() && *type == "text" && text != part.end() && text->is_string();
    };
    if (!is_text_part()) {
      fail_param("messages",
                 "messages[{}].content[{}] must be a text part "
                 "({{\"type\": \"text\", \"text\": \"...\"}}); other content types are "
                 "not supported, got {}",
                 index, i, brief_json(part));
    }
    if (i) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

// vLLM hands templates tool-call arguments as objects: a JSON string argument is parsed.
void parse_tool_call_arguments(OrderedJson& message) {
  auto calls = message.find("tool_calls");
  if (calls == message.end() || !calls->is_array()) return;
  for (OrderedJson& call : *calls) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
    OrderedJson& function = call["function"];
    auto args = function.find("arguments");
    if (args == function.end() || !args->is_string()) continue;
    OrderedJson parsed = OrderedJson::parse(args->get<std::string>(), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) *args = std::move(parsed);
  }
}

// The roles of OpenAI's chat API, plus Llama 3.1's "ipython" (tool results in its template).
// Anything else is a 400: templates branch on the role, and an unknown one would be rendered
// as whatever their fallback is (or break them).
void check_role(const std::string& role, size_t index) {
  for (const char* known : {"system", "developer", "user", "assistant", "tool", "function",
                            "ipython"}) {
    if (role == known) return;
  }
  fail_param("messages",
             "messages[{}].role must be one of 'system', 'developer', 'user', 'assistant', "
             "'tool', 'function' or 'ipython', got {}",
             index, brief_json(role));
}

OrderedJson parse_messages(const RequestFields& f) {
  const OrderedJson* v = f.get("messages");
  if (!v) fail_param("messages", "'messages' is required");
  if (!v->is_array() || v->empty()) {
    fail_param("messages", "'messages' must be a non-empty list of messages, got {}",
               brief_json(*v));
  }
  OrderedJson messages = *v;
  for (size_t i = 0; i < messages.size(); ++i) {
    OrderedJson& m = messages[i];
    if (!m.is_object()) {
      fail_param("messages", "messages[{}] must be an object, got {}", i, brief_json(m));
    }
    RequestFields mf(m, fmt::format("messages[{}].", i));
    if (!mf.has("role")) fail_param("messages", "messages[{}].role is required", i);
    check_role(*mf.string("role"), i);
    if (m.contains("content")) m["content"] = flatten_content(m["content"], i);
    parse_tool_call_arguments(m);
  }
  return messages;
}

OrderedJson parse_tools(const RequestFields& f) {
  const OrderedJson* v = f.get("tools");
  if (const OrderedJson* choice = f.get("tool_choice")) {
    bool plain = choice->is_string() && (*choice == "none" || *choice == "auto");
    if (!plain) {
      fail_param("tool_choice", "tool_choice {} is not supported (only \"auto\" and \"none\")",
                 brief_json(*choice));
    }
    if (!v && *choice == "auto") {
      fail_param("tool_choice", "When using 'tool_choice', 'tools' must be set");
    }
  }
  if (!v) return nullptr;
  if (!v->is_array()) fail_param("tools", "'tools' must be a list, got {}", brief_json(*v));
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_object()) {
      fail_param("tools", "tools[{}] must be an object, got {}", i, brief_json((*v)[i]));
    }
  }
  return *v;
}

OrderedJson parse_template_kwargs(const RequestFields& f) {
  return f.object("chat_template_kwargs").value_or(OrderedJson::object());
}

}  // namespace

OrderedJson parse_json_object(std::string_view body) {
  if (json_nesting_depth(body) > kMaxJsonNesting) {
    throw ApiError(HttpStatus::kBadRequest,
                   fmt::format("The request body nests objects and arrays more than {} levels deep",
                               kMaxJsonNesting));
  }
  OrderedJson json = OrderedJson::parse(body, nullptr, /* allow_exceptions = */ false);
  if (json.is_discarded()) {
    throw ApiError(HttpStatus::kBadRequest, "The request body is not valid JSON");
  }
  if (!json.is_object()) {
    throw ApiError(HttpStatus::kBadRequest,
                   "The request body must be a JSON object, got " + brief_json(json));
  }
  return json;
}

std::string dump_json(const OrderedJson& json) {
  return json.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string dump_json(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void validate_sampling_params(const SamplingParams& params) {
  try {
    params.validate();
  } catch (const Error& e) {
    // validate()'s messages start with the field name ("top_p must be in (0, 1], got 2").
    std::string message = e.what();
    std::string field = message.substr(0, message.find_first_of(" ["));
    throw ApiError(HttpStatus::kBadRequest, message, field);
  }
}

CompletionRequest parse_completion_request(std::string_view body, const SamplingParams& defaults) {
  return parse_completion_object(parse_json_object(body), defaults);
}

CompletionRequest parse_completion_object(const OrderedJson& json, const SamplingParams& defaults) {
  RequestFields f(json);
  CompletionRequest r;
  r.common = parse_common(f, defaults, /* chat = */ false);
  if (f.has("logprobs")) r.common.params.logprobs = f.bounded_int("logprobs", 0, kMaxLogprobs);
  r.prompts = parse_prompts(f);
  // Checked here too (not only when planning): the proxy parses bodies before any prefill.
  int64_t num_choices = int64_t(r.prompts.size()) * r.common.n;
  if (num_choices > kMaxChoices) {
    fail_param("n", "The request asks for {} choices ({} prompts x n = {}); at most {} are allowed",
               num_choices, r.prompts.size(), r.common.n, kMaxChoices);
  }
  validate_sampling_params(r.common.params);
  return r;
}

}  // namespace tandem

namespace tandem {

ChatCompletionRequest parse_chat_completion_request(std::string_view body,
                                                    const SamplingParams& defaults) {
  return parse_chat_completion_object(parse_json_object(body), defaults);
}

ChatCompletionRequest parse_chat_completion_object(const OrderedJson& json,
                                                   const SamplingParams& defaults) {
  RequestFields f(json);
  ChatCompletionRequest r;
  r.common = parse_common(f, defaults, /* chat = */ true);
  r.logprobs = f.boolean("logprobs").value_or(false);
  std::optional<int> top = f.bounded_int("top_logprobs", 0, kMaxLogprobs);
  if (top && !r.logprobs) {
    fail_param("top_logprobs", "when using 'top_logprobs', 'logprobs' must be set to true");
  }
  if (r.logprobs) r.common.params.logprobs = top.value_or(0);
  r.messages = parse_messages(f);
  r.tools = parse_tools(f);
  r.template_kwargs = parse_template_kwargs(f);
  r.add_generation_prompt = f.boolean("add_generation_prompt").value_or(true);
  r.continue_final_message = f.boolean("continue_final_message").value_or(false);
  if (r.add_generation_prompt && r.continue_final_message) {
    fail_param("continue_final_message",
               "'continue_final_message' and "
               "'add_generation_prompt' cannot both be true");
  }
  validate_sampling_params(r.common.params);
  return r;
}

TokenizeRequest parse_tokenize_request(std::string_view body) {
  OrderedJson json = parse_json_object(body);
  RequestFields f(json);
  TokenizeRequest r;
  r.model = f.string("model");
  bool has_prompt = f.has("prompt"), has_messages = f.has("messages");
  if (has_prompt == has_messages) {
    fail_param(has_prompt ? "messages" : "prompt",
               "exactly one of 'prompt' and 'messages' must be given");
  }
  if (has_prompt) {
    r.prompt = f.string("prompt");
  } else {
    r.messages = parse_messages(f);
    r.tools = parse_tools(f);
    r.template_kwargs = parse_template_kwargs(f);
    r.add_generation_prompt = f.boolean("add_generation_prompt").value_or(true);
    r.continue_final_message = f.boolean("continue_final_message").value_or(false);
  }
  r.add_special_tokens = f.boolean("add_special_tokens").value_or(has_prompt);
  r.return_token_strs = f.boolean("return_token_strs").value_or(false);
  return r;
}

DetokenizeRequest parse_detokenize_request(std::string_view body) {
  OrderedJson json = parse_json_object(body);
  RequestFields f(json);
  DetokenizeRequest r;
  r.model = f.string("model");
  if (!f.has("tokens")) fail_param("tokens", "'tokens' is required");
  r.tokens = *f.int_list("tokens", 0, kMaxTokenId);
  return r;
}

}  // namespace tandem
