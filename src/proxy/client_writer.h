// ClientWriter: what the proxy writes back to its client — whole responses (JSON, errors,
// Prometheus text) and streamed ones (chunked transfer encoding, each upstream piece forwarded
// as it arrives, byte for byte). Every write has a deadline so a client that stops reading
// cannot hold a request forever.
#pragma once
#include <string>

#include "proxy/async_io.h"
#include "server/openai_errors.h"

namespace tandem {

class ClientWriter {
 public:
  ClientWriter(beast::tcp_stream& stream, std::chrono::milliseconds write_timeout)
      : stream_(stream), write_timeout_(write_timeout) {}

  // One complete response. Throws boost::system::system_error when the client is gone.
  // (Coroutine parameters here are references: callers pass named objects, never temporaries,
  // which GCC 12 can destroy twice when they appear inside a co_await expression.)
  Task<void> write_full(unsigned status, const std::string& content_type, const std::string& body,
                        bool keep_alive);
  Task<void> write_error(const ApiError& error, bool keep_alive);

  // A streamed response: the header, then pieces, then end_stream().
  Task<void> begin_stream(unsigned status, const std::string& content_type);
  Task<void> write_piece(const std::string& bytes);
  Task<void> end_stream();

  bool started() const { return started_; }
  // Whether the streamed bytes so far end at an SSE event boundary ("\n\n") or are empty.
  bool at_event_boundary() const;

 private:
  Task<void> write_raw(const std::string& bytes);

  beast::tcp_stream& stream_;
  std::chrono::milliseconds write_timeout_;
  bool started_ = false;
  std::string tail_;  // the last two bytes streamed
};

}  // namespace tandem
