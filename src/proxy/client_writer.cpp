// ClientWriter: whole and chunked responses to the proxy's client.
#include "proxy/client_writer.h"

#include <boost/asio/write.hpp>

namespace tandem {

Task<void> ClientWriter::write_full(unsigned status, const std::string& content_type,
                                    const std::string& body, bool keep_alive) {
  http::response<http::string_body> response{http::int_to_status(status), 11};
  response.result(status);
  response.set(http::field::server, "tandem-proxy");
  if (!content_type.empty()) response.set(http::field::content_type, content_type);
  response.keep_alive(keep_alive);
  response.body() = body;
  response.prepare_payload();
  started_ = true;
  stream_.expires_after(write_timeout_);
  co_await http::async_write(stream_, response, net::use_awaitable);
}

Task<void> ClientWriter::write_error(const ApiError& error, bool keep_alive) {
  const std::string content_type = "application/json";
  const std::string body = error.to_json();
  co_await write_full(unsigned(error.status()), content_type, body, keep_alive);
}

Task<void> ClientWriter::begin_stream(unsigned status, const std::string& content_type) {
  started_ = true;
  std::string reason(http::obsolete_reason(http::int_to_status(status)));
  const std::string header = fmt::format(
      "HTTP/1.1 {} {}\r\nServer: tandem-proxy\r\nContent-Type: {}\r\nCache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
      status, reason, content_type);
  co_await write_raw(header);
}

Task<void> ClientWriter::write_piece(const std::string& bytes) {
  if (bytes.empty()) co_return;
  tail_ = (tail_ + bytes.substr(bytes.size() >= 2 ? bytes.size() - 2 : 0));
  if (tail_.size() > 2) tail_.erase(0, tail_.size() - 2);
  const std::string chunk = fmt::format("{:x}\r\n{}\r\n", bytes.size(), bytes);
  co_await write_raw(chunk);
}

Task<void> ClientWriter::end_stream() {
  const std::string last_chunk = "0\r\n\r\n";
  co_await write_raw(last_chunk);
}

bool ClientWriter::at_event_boundary() const { return tail_.empty() || tail_ == "\n\n"; }

Task<void> ClientWriter::write_raw(const std::string& bytes) {
  stream_.expires_after(write_timeout_);
  co_await net::async_write(stream_, net::buffer(bytes), net::use_awaitable);
}

}  // namespace tandem
