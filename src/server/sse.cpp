// SSE framing and parsing (the subset of the WHATWG event-stream format OpenAI uses).
#include "server/sse.h"

#include "core/error.h"

namespace tandem {

std::string sse_event(std::string_view payload) {
  TANDEM_CHECK(payload.find('\n') == std::string_view::npos,
               "an SSE data payload must be a single line");
  std::string out;
  out.reserve(payload.size() + 8);
  out += "data: ";
  out += payload;
  out += "\n\n";
  return out;
}

std::vector<std::string> SseParser::feed(std::string_view bytes) {
  buffer_ += bytes;
  std::vector<std::string> events;
  size_t start = 0;
  for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(buffer_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    take_line(line, events);
  }
  buffer_.erase(0, start);
  return events;
}

void SseParser::take_line(std::string_view line, std::vector<std::string>& events) {
  if (line.empty()) {  // a blank line dispatches the event
    if (has_data_) events.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.substr(0, 5) != "data:") return;  // comments (":...") and other fields
  line.remove_prefix(5);
  if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_ += line;
  has_data_ = true;
}

}  // namespace tandem
