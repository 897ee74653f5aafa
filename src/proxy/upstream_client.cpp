// UpstreamCall over Beast's tcp_stream: deadlines through expires_at, failures classified.
#include "proxy/upstream_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <limits>

namespace tandem {
namespace {

constexpr size_t kPieceBytes = 16 << 10;  // the most one read_body_some returns

}  // namespace

UpstreamCall::UpstreamCall(const net::any_io_executor& executor, HttpEndpoint endpoint,
                           std::string name)
    : endpoint_(std::move(endpoint)), name_(std::move(name)), stream_(executor) {}

void UpstreamCall::fail(const boost::system::error_code& ec, const char* step) const {
  if (aborted_) throw UpstreamFailure(UpstreamFailureKind::kAborted, name_ + ": closed (client left)");
  if (ec == beast::error::timeout) {
    throw UpstreamFailure(UpstreamFailureKind::kTimeout,
                          fmt::format("{} did not answer in time ({})", name_, step));
  }
  bool unreachable = std::string_view(step) == "connect" || std::string_view(step) == "resolve";
  throw UpstreamFailure(unreachable ? UpstreamFailureKind::kUnreachable : UpstreamFailureKind::kBroken,
                        fmt::format("{}: {} failed: {}", name_, step, ec.message()));
}

Task<void> UpstreamCall::connect(SteadyClock::time_point deadline) {
  boost::system::error_code ec;
  net::ip::tcp::resolver resolver(stream_.get_executor());
  auto endpoints = co_await resolver.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port), net::redirect_error(net::use_awaitable, ec));
  if (ec) fail(ec, "resolve");
  if (aborted_) fail(ec, "connect");
  stream_.expires_at(deadline);
  co_await stream_.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec || aborted_) fail(ec, "connect");
  stream_.socket().set_option(net::ip::tcp::no_delay(true), ec);
}

Task<void> UpstreamCall::send(http::verb method, const std::string& target,
                              const std::string& body, const HeaderList& headers,
                              SteadyClock::time_point deadline) {
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, fmt::format("{}:{}", endpoint_.host, endpoint_.port));
  request.set(http::field::user_agent, "tandem-proxy");
  for (const auto& [name, value] : headers) request.set(name, value);
  if (method == http::verb::post) request.set(http::field::content_type, "application/json");
  request.keep_alive(false);
  request.body() = body;
  request.prepare_payload();
  boost::system::error_code ec;
  stream_.expires_at(deadline);
  co_await http::async_write(stream_, request, net::redirect_error(net::use_awaitable, ec));
  if (ec || aborted_) fail(ec, "sending the request");
}

Task<UpstreamResponse> UpstreamCall::read_response(SteadyClock::time_point deadline,
                                                   size_t max_body) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  boost::system::error_code ec;
  stream_.expires_at(deadline);
  co_await http::async_read(stream_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec || aborted_) fail(ec, "reading the answer");
  auto& message = parser.get();
  co_return UpstreamResponse{message.result_int(),
                             std::string(message[http::field::content_type]),
                             std::move(message.body())};
}

Task<UpstreamResponse> UpstreamCall::read_header(SteadyClock::time_point deadline) {
  parser_.emplace();
  // (Boost 1.74 compares the length with an empty optional as larger: no limit = max.)
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::system::error_code ec;
  stream_.expires_at(deadline);
  co_await http::async_read_header(stream_, buffer_, *parser_,
                                   net::redirect_error(net::use_awaitable, ec));
  if (ec || aborted_) fail(ec, "reading the answer's header");
  const auto& message = parser_->get();
  co_return UpstreamResponse{message.result_int(),
                             std::string(message[http::field::content_type]), ""};
}

Task<std::optional<std::string>> UpstreamCall::read_body_some(SteadyClock::time_point deadline) {
  TANDEM_CHECK(parser_, "UpstreamCall::read_body_some before read_header");
  std::string piece(kPieceBytes, '\0');
  while (!parser_->is_done()) {
    auto& body = parser_->get().body();
    body.data = piece.data();
    body.size = piece.size();
    boost::system::error_code ec;
    stream_.expires_at(deadline);
    co_await http::async_read_some(stream_, buffer_, *parser_,
                                   net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec || aborted_) fail(ec, "reading the answer");
    size_t got = piece.size() - parser_->get().body().size;
    if (got > 0) {
      piece.resize(got);
      co_return piece;
    }
  }
  co_return std::nullopt;
}

void UpstreamCall::abort() {
  aborted_ = true;
  boost::system::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

}  // namespace tandem
