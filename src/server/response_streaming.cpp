// Non-streaming collection and the SSE content provider.
#include "server/response_streaming.h"

#include "core/logging.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"
#include "server/sse.h"

namespace tandem {
namespace {

// How long one provider call waits for tokens before returning to httplib (which checks for
// shutdown between calls).
constexpr std::chrono::milliseconds kStreamPoll{100};

// The state one streaming response carries between provider calls.
struct StreamState {
  std::shared_ptr<Generation> generation;
  ResponseHeader header;
  StreamFormat format;
  bool opened = false;

  // An {"error": ...} event and the end of the stream.
  std::string error_event(const ApiError& error, bool& last) {
    log_error("{}: {}", header.id, error.what());
    generation->abort();
    last = true;
    return sse_event(error.to_json()) + std::string(kSseDone);
  }

  // The SSE bytes to send next (possibly empty); sets `last` when they end the stream.
  std::string next_bytes(bool& last) {
    std::string out;
    if (!opened) {
      opened = true;
      if (format.opening) {
        for (const OrderedJson& chunk : format.opening()) out += sse_event(dump_json(chunk));
      }
      return out;
    }
    try {
      for (const ChoiceDelta& delta : generation->poll(kStreamPoll)) {
        out += sse_event(dump_json(format.chunk(delta)));
      }
    } catch (const ApiError& e) {
      return out + error_event(e, last);
    } catch (const std::exception& e) {  // never let an exception escape into httplib
      return out + error_event(ApiError(HttpStatus::kInternalServerError, e.what()), last);
    }
    if (generation->done()) {
      last = true;
      if (format.include_usage) {
        Usage usage{generation->prompt_tokens(), generation->completion_tokens()};
        out += sse_event(dump_json(usage_chunk(header, format.object, usage)));
      }
      out += kSseDone;
    }
    return out;
  }
};

}  // namespace

std::vector<ChoiceResult> collect_choices(Generation& generation, int num_choices) {
  std::vector<ChoiceResult> results(num_choices);
  for (int i = 0; i < num_choices; ++i) results[i].index = i;
  while (!generation.done()) {
    for (const ChoiceDelta& delta : generation.poll(std::chrono::milliseconds(1000))) {
      results.at(delta.index).add(delta);
    }
  }
  return results;
}

void stream_generation(httplib::Response& res, std::shared_ptr<Generation> generation,
                       ResponseHeader header, StreamFormat format) {
  auto state = std::make_shared<StreamState>(
      StreamState{std::move(generation), std::move(header), std::move(format)});
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [state](size_t, httplib::DataSink& sink) {
        bool last = false;
        std::string bytes = state->next_bytes(last);
        // An empty write would end httplib's chunked stream: only write bytes.
        if (!bytes.empty() && !sink.write(bytes.data(), bytes.size())) return false;
        if (last) sink.done();
        return true;
      },
      [state](bool success) {
        if (!success) state->generation->abort();  // the client went away (or shutdown)
      });
}

}  // namespace tandem
