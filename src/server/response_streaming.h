// Delivering a Generation to the client: collected into whole choices (non-streaming), or as
// server-sent events through httplib's chunked content provider, one event per token and
// choice, flushed as it is made. A failed write (the client went away) ends the provider, which
// destroys the Generation and so aborts its engine requests.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include <httplib.h>

#include "server/generation.h"
#include "server/openai_responses.h"

namespace tandem {

// Polls the generation to its end on the calling thread; the choices in index order.
std::vector<ChoiceResult> collect_choices(Generation& generation, int num_choices);

struct StreamFormat {
  const char* object = "";     // of the usage chunk: "text_completion" / "chat.completion.chunk"
  bool include_usage = false;  // end with a usage chunk
  // Chunks sent before any token (chat's role chunks); may be empty.
  std::function<std::vector<OrderedJson>()> opening;
  // The chunk for one delta.
  std::function<OrderedJson(const ChoiceDelta&)> chunk;
};

// Makes `res` an SSE stream of the generation: opening chunks, one chunk per delta, the usage
// chunk when asked, then `data: [DONE]`. An engine error mid-stream is sent as an
// {"error": {...}} event before [DONE].
void stream_generation(httplib::Response& res, std::shared_ptr<Generation> generation,
                       ResponseHeader header, StreamFormat format);

}  // namespace tandem
