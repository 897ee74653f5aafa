// Server-sent events as OpenAI streams them: each event is `data: <json>\n\n` and the stream
// ends with `data: [DONE]\n\n`. The parser splits such a body back into its data payloads
// (for clients of a Tandem server: the tests and the disaggregation proxy).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// `data: <payload>\n\n`. The payload must not contain a newline (compact JSON never does).
[[nodiscard]] std::string sse_event(std::string_view payload);

// Incrementally splits an SSE byte stream into the `data` payloads of complete events
// (multi-line data joined with '\n'; comments and other fields ignored).
class SseParser {
 public:
  // Feeds bytes; returns the payloads of the events completed by them.
  std::vector<std::string> feed(std::string_view bytes);
  // Bytes of an incomplete trailing event.
  [[nodiscard]] bool has_partial_event() const { return !buffer_.empty() || !data_.empty(); }

 private:
  void take_line(std::string_view line, std::vector<std::string>& events);

  std::string buffer_;  // bytes after the last complete line
  std::string data_;    // data lines of the event being read
  bool has_data_ = false;
};

}  // namespace tandem
