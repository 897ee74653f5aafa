// StreamingClient: connect, POST, read the header, then read the body piece by piece with a
// buffer_body parser, timing each piece at its arrival and feeding it to the SSE parser.
#include "bench/streaming_client.h"

#include <fmt/format.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <nlohmann/json.hpp>

#include "bench/sse_parser.h"
#include "core/error.h"

namespace tandem::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// vLLM's aiohttp session allows a request 6 hours in all.
constexpr std::chrono::hours kRequestTimeout{6};
// How much of an error response's body goes into the error message.
constexpr size_t kErrorBodyChars = 2000;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// The timing state of one stream, fed one SSE data payload at a time.
class StreamTimer {
 public:
  StreamTimer(ApiKind api, Clock::time_point sent, RequestOutput& out)
      : api_(api), sent_(sent), last_(sent), out_(out) {}

  void on_data(const std::string& data, Clock::time_point at) {
    if (data == "[DONE]") return;
    auto chunk = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
    TANDEM_CHECK(chunk.is_object(), "stream chunk is not a JSON object: {}",
                 data.substr(0, kErrorBodyChars));
    if (auto error = chunk.find("error"); error != chunk.end() && !error->is_null()) {
      fail("error event in the stream: {}", error->dump().substr(0, kErrorBodyChars));
    }
    auto choices = chunk.find("choices");
    if (choices != chunk.end() && choices->is_array() && !choices->empty()) {
      if (!first_) {
        first_ = true;
        out_.ttft = seconds_between(sent_, at);
      } else {
        out_.itl.push_back(seconds_between(last_, at));
      }
      last_ = at;
      append_text(choices->front());
      return;
    }
    auto usage = chunk.find("usage");
    if (usage != chunk.end() && usage->is_object()) {
      if (auto c = usage->find("completion_tokens"); c != usage->end() && c->is_number_integer())
        out_.output_tokens = c->get<int>();
      if (auto p = usage->find("prompt_tokens"); p != usage->end() && p->is_number_integer())
        out_.prompt_len = p->get<int>();
    }
  }

  // After the stream ended normally.
  void finish() {
    out_.latency = seconds_between(sent_, last_);
    out_.success = first_;
    if (!first_) out_.error = "Never received a valid chunk to calculate TTFT.";
  }

 private:
  void append_text(const nlohmann::json& choice) {
    const nlohmann::json* text = nullptr;
    if (api_ == ApiKind::kCompletions) {
      if (auto t = choice.find("text"); t != choice.end()) text = &*t;
    } else if (auto delta = choice.find("delta"); delta != choice.end() && delta->is_object()) {
      if (auto c = delta->find("content"); c != delta->end()) text = &*c;
    }
    if (text && text->is_string()) out_.generated_text += text->get<std::string>();
  }

  ApiKind api_;
  Clock::time_point sent_, last_;
  RequestOutput& out_;
  bool first_ = false;
};

}  // namespace

StreamingClient::StreamingClient(HttpUrl api_url,
                                 boost::asio::ip::tcp::resolver::results_type endpoints,
                                 ApiKind api, HttpHeaders headers)
    : url_(std::move(api_url)),
      endpoints_(std::move(endpoints)),
      api_(api),
      headers_(std::move(headers)) {}

asio::awaitable<void> StreamingClient::send(const std::string& body, Clock::time_point origin,
                                            RequestOutput& out) const {
  const Clock::time_point sent = Clock::now();
  out.start_time = seconds_between(origin, sent);
  StreamTimer timer(api_, sent, out);
  try {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(kRequestTimeout);
    co_await stream.async_connect(endpoints_, asio::use_awaitable);

    http::request<http::string_body> request{http::verb::post, url_.target, 11};
    request.set(http::field::host, url_.host_header());
    request.set(http::field::user_agent, "tandem-bench");
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, "text/event-stream");
    for (const auto& [name, value] : headers_) request.set(name, value);
    request.keep_alive(false);
    request.body() = body;
    request.prepare_payload();
    co_await http::async_write(stream, request, asio::use_awaitable);

    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    // No limit on a stream's length (boost::none trips a Boost 1.74 comparison bug).
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    co_await http::async_read_header(stream, buffer, parser, asio::use_awaitable);
    const unsigned status = parser.get().result_int();
    char piece[16384];
    std::string error_body;
    SseParser sse;
    while (!parser.is_done()) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof piece;
      beast::error_code ec;
      co_await http::async_read_some(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) throw beast::system_error(ec);
      const Clock::time_point at = Clock::now();
      const std::string_view bytes(piece, sizeof piece - parser.get().body().size);
      if (status != 200) {
        error_body.append(
            bytes.substr(0, kErrorBodyChars - std::min(kErrorBodyChars, error_body.size())));
        continue;
      }
      for (const std::string& data : sse.feed(bytes)) timer.on_data(data, at);
    }
    if (status != 200) {
      fail("HTTP {} {}: {}", status, std::string(parser.get().reason()), error_body);
    }
    for (const std::string& data : sse.finish()) timer.on_data(data, Clock::now());
    timer.finish();
  } catch (const std::exception& e) {
    out.success = false;
    out.error = e.what();
  }
  out.end_time = seconds_between(origin, Clock::now());
}

}  // namespace tandem::bench
