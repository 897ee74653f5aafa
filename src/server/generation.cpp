// Generation: engine outputs -> detokenized, stop-checked per-token deltas for each choice.
#include "server/generation.h"

#include <algorithm>

#include "core/error.h"
#include "core/logging.h"
#include "server/openai_errors.h"

namespace tandem {

using Clock = std::chrono::steady_clock;

namespace {

// How long poll() waits on one stream at a time when several choices are running.
constexpr std::chrono::milliseconds kMultiStreamWait{2};

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

struct Generation::Choice {
  Choice(const ServingContext& ctx, ChoiceSpec choice_spec, std::string id, bool skip_special)
      : spec(std::move(choice_spec)),
        engine_id(std::move(id)),
        stream(std::make_shared<RequestStream>()),
        detokenizer(*ctx.tokenizer, skip_special,
                    std::span<const int>(spec.prompt_ids.data(), spec.prompt_ids.size())),
        stop(spec.params, ctx.model.eos_token_ids, output_budget(ctx, spec)),
        max_tokens(std::min(spec.params.max_tokens.value_or(output_budget(ctx, spec)),
                            output_budget(ctx, spec))) {}

  static int output_budget(const ServingContext& ctx, const ChoiceSpec& spec) {
    return std::max(1, ctx.model.max_model_len - int(spec.prompt_ids.size()));
  }

  ChoiceSpec spec;
  std::string engine_id;
  std::shared_ptr<RequestStream> stream;
  IncrementalDetokenizer detokenizer;
  StopChecker stop;
  int max_tokens;  // the most tokens this choice can produce (max_tokens and the context)
  bool running = true;
  bool engine_finished = false;  // the engine sent its final output
  bool echoed = false;
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> first_token;
  Clock::time_point last_token;
  std::vector<double> inter_token_s;   // (num_tokens - 1) gaps between token arrivals
  std::optional<double> queue_time_s;  // from the engine's final output, when it says
};

Generation::Generation(const ServingContext& ctx, std::string request_id,
                       std::vector<ChoiceSpec> choices, GenerationOptions options)
    : ctx_(ctx), request_id_(std::move(request_id)), options_(options) {
  for (ChoiceSpec& spec : choices) {
    std::string engine_id = fmt::format("{}-{}", request_id_, spec.index);
    choices_.push_back(std::make_unique<Choice>(ctx_, std::move(spec), std::move(engine_id),
                                                options_.skip_special_tokens));
  }
  for (auto& choice : choices_) choice->running = false;
  try {
    for (auto& choice : choices_) {
      EngineRequest request;
      request.request_id = choice->engine_id;
      request.prompt_ids = choice->spec.prompt_ids;
      request.params = choice->spec.params;
      request.kv_transfer = choice->spec.kv_transfer;
      request.arrival = choice->arrival;
      ctx_.engine->add_request(std::move(request), choice->stream);
      choice->running = true;
      ++num_running_;
    }
  } catch (...) {
    abort();  // the destructor will not run: withdraw what was submitted
    throw;
  }
}

Generation::~Generation() { abort(); }

void Generation::abort() {
  for (auto& choice : choices_) {
    if (!choice->running) continue;
    choice->stop.abort();
    finish(*choice, FinishReason::kAbort);
  }
}

std::vector<ChoiceDelta> Generation::poll(std::chrono::milliseconds timeout) {
  std::vector<ChoiceDelta> deltas;
  auto deadline = Clock::now() + timeout;
  while (!done()) {
    bool progressed = false;
    for (auto& choice : choices_) progressed |= drain(*choice, deltas);
    if (progressed || Clock::now() >= deadline) break;
    // Block on one running stream: all the time left when it is the only one, else briefly.
    Choice* waiting = nullptr;
    for (auto& choice : choices_) {
      if (choice->running) waiting = waiting ? waiting : choice.get();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto wait = num_running_ == 1 ? left : std::min(left, kMultiStreamWait);
    if (auto output = waiting->stream->pop(std::max(wait, std::chrono::milliseconds(0)))) {
      process(*waiting, *output, deltas);
      break;
    }
  }
  return deltas;
}

bool Generation::drain(Choice& choice, std::vector<ChoiceDelta>& deltas) {
  bool any = false;
  while (choice.running) {
    std::optional<RequestOutput> output = choice.stream->pop(std::chrono::milliseconds(0));
    if (!output) break;
    process(choice, *output, deltas);
    any = true;
  }
  return any;
}

void Generation::process(Choice& choice, const RequestOutput& output,
                         std::vector<ChoiceDelta>& deltas) {
  if (!choice.running) return;
  if (output.finish != FinishReason::kNone) {
    choice.engine_finished = true;
    if (output.times && output.times->first_scheduled) {
      choice.queue_time_s = seconds_between(output.times->arrival, *output.times->first_scheduled);
    }
  }
  if (output.finish == FinishReason::kError) {
    finish(choice, FinishReason::kError);
    throw ApiError(
        HttpStatus::kInternalServerError,
        fmt::format("The engine failed on request {}: {}", choice.engine_id, output.error));
  }
  bool with_logprobs =
      options_.want_logprobs && output.logprobs.size() == output.new_token_ids.size();
  for (size_t i = 0; i < output.new_token_ids.size() && choice.running; ++i) {
    bool engine_last = output.finish != FinishReason::kNone && i + 1 == output.new_token_ids.size();
    deltas.push_back(token_delta(choice, output.new_token_ids[i],
                                 with_logprobs ? &output.logprobs[i] : nullptr, engine_last));
  }
  if (choice.running && output.finish != FinishReason::kNone) {
    // The engine ended the choice without a token the stop checker saw as last (an abort, or
    // a limit it applied): release the held-back text and end with the engine's reason.
    std::string tail = choice.detokenizer.flush();
    choice.stop.abort();
    ChoiceDelta delta;
    delta.index = choice.spec.index;
    delta.text = choice.stop.take_stream_delta() + tail;
    delta.finish = output.finish;
    deltas.push_back(std::move(delta));
    finish(choice, output.finish);
  }
}

bool Generation::ends_with_stop_token(const Choice& choice, int32_t token) const {
  const SamplingParams& p = choice.spec.params;
  if (p.include_stop_str_in_output || choice.stop.num_tokens() + 1 <= p.min_tokens) return false;
  auto is_in = [token](const auto& ids) {
    return std::find(ids.begin(), ids.end(), token) != ids.end();
  };
  return is_in(p.stop_token_ids) || (!p.ignore_eos && is_in(ctx_.model.eos_token_ids));
}

ChoiceDelta Generation::token_delta(Choice& choice, int32_t token, const TokenLogprob* logprob,
                                    bool engine_last) {
  auto now = Clock::now();
  if (choice.first_token) choice.inter_token_s.push_back(seconds_between(choice.last_token, now));
  if (!choice.first_token) choice.first_token = now;
  choice.last_token = now;

  // A stop token's own text is dropped (unless include_stop_str_in_output), but text the
  // detokenizer still holds from earlier tokens (a trailing byte run) must not go with it; it
  // is released as is (not searched for stop strings: the choice ends here anyway).
  bool drop_token_text = ends_with_stop_token(choice, token);
  std::string piece, held;
  try {
    if (drop_token_text) {
      held = choice.detokenizer.flush();
    } else {
      piece = choice.detokenizer.push(token);
      bool last = engine_last || choice.stop.num_tokens() + 1 >= choice.max_tokens;
      if (last) piece += choice.detokenizer.flush();
    }
  } catch (const Error& e) {  // a generated id the tokenizer does not know: a server fault
    finish(choice, FinishReason::kError);
    throw ApiError(HttpStatus::kInternalServerError,
                   fmt::format("Cannot detokenize generated token {}: {}", token, e.what()));
  }
  FinishReason reason = choice.stop.append(token, piece);

  ChoiceDelta delta;
  delta.index = choice.spec.index;
  delta.text = choice.stop.take_stream_delta() + held;
  delta.token_id = token;
  if (logprob) delta.logprob = decode_logprob(*logprob);
  if (!choice.echoed) {
    delta.text = choice.spec.echo_text + delta.text;
    choice.echoed = true;
  }
  if (reason != FinishReason::kNone) {
    delta.finish = reason;
    delta.stop_reason = choice.stop.stop_reason();
    finish(choice, reason);
  }
  return delta;
}

DecodedLogprob Generation::decode_logprob(const TokenLogprob& logprob) const {
  auto text_of = [this](int32_t id) {
    int token = id;
    return ctx_.tokenizer->decode(std::span<const int>(&token, 1),
                                  /* skip_special_tokens = */ false);
  };
  DecodedLogprob out;
  out.token_id = logprob.token;
  out.token = text_of(logprob.token);
  out.logprob = logprob.logprob;
  for (const auto& [id, value] : logprob.top) out.top.emplace_back(text_of(id), value);
  return out;
}

void Generation::finish(Choice& choice, FinishReason reason) {
  if (!choice.running) return;
  choice.running = false;
  --num_running_;
  if (!choice.engine_finished) ctx_.engine->abort_request(choice.engine_id);
  if (!ctx_.metrics) return;
  RequestTimings t;
  auto now = Clock::now();
  t.finish = reason;
  t.e2e_latency_s = seconds_between(choice.arrival, now);
  t.queue_time_s = choice.queue_time_s;
  if (choice.first_token)
    t.time_to_first_token_s = seconds_between(choice.arrival, *choice.first_token);
  t.inter_token_s = std::move(choice.inter_token_s);
  t.prompt_tokens = int(choice.spec.prompt_ids.size());
  t.generation_tokens = choice.stop.num_tokens();
  ctx_.metrics->observe_request(t);
}

int Generation::prompt_tokens() const {
  int total = 0, last_prompt = -1;
  for (const auto& choice : choices_) {  // choices of one prompt are adjacent
    if (choice->spec.prompt_index == last_prompt) continue;
    last_prompt = choice->spec.prompt_index;
    total += int(choice->spec.prompt_ids.size());
  }
  return total;
}

int Generation::completion_tokens() const {
  int total = 0;
  for (const auto& choice : choices_) total += choice->stop.num_tokens();
  return total;
}

}  // namespace tandem
