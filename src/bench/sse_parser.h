// SseParser: splits a text/event-stream body, fed in arbitrary byte pieces as they arrive, into
// the data payloads of its events (the "data:" lines of one event joined by "\n"). Comment lines
// (":" pings), other fields and CR/LF variants are handled per the HTML SSE spec.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tandem::bench {

class SseParser {
 public:
  // Appends bytes; returns the data of every event completed by them, in order.
  std::vector<std::string> feed(std::string_view bytes);
  // At the end of the stream: the data of an event left unterminated, if it has any.
  std::vector<std::string> finish();

 private:
  void take_line(std::string_view line, std::vector<std::string>& events);

  std::string pending_;  // bytes after the last complete line
  std::string data_;     // data lines of the event being read
  bool has_data_ = false;
  bool skip_lf_ = false;  // the last byte seen was a CR ending a line
};

}  // namespace tandem::bench
