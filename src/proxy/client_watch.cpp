// ClientWatch: the watcher coroutine and its orderly stop.
#include "proxy/client_watch.h"

namespace tandem {
namespace {

constexpr size_t kMaxPipelinedBytes = 1 << 20;  // stop reading ahead past this
constexpr size_t kReadBytes = 4096;

}  // namespace

void ClientWatch::start(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
  stream_ = &stream;
  watching_ = true;
  net::co_spawn(executor_, watch(shared_from_this(), stream, buffer), net::detached);
}

Task<void> ClientWatch::watch(std::shared_ptr<ClientWatch> self, beast::tcp_stream& stream,
                              beast::flat_buffer& buffer) {
  while (!self->stopping_ && buffer.size() < kMaxPipelinedBytes) {
    boost::system::error_code ec;
    size_t n = co_await stream.socket().async_read_some(
        buffer.prepare(kReadBytes), net::redirect_error(net::use_awaitable, ec));
    buffer.commit(n);
    if (ec) {
      if (!self->stopping_) self->client_left();
      break;
    }
  }
  self->watching_ = false;
  self->watcher_done_.poke();
}

void ClientWatch::client_left() {
  client_gone_ = true;
  if (upstream_) upstream_->abort();
  wake_.poke();
}

Task<void> ClientWatch::stop() {
  stopping_ = true;
  if (watching_ && stream_) {
    boost::system::error_code ignored;
    stream_->socket().cancel(ignored);
  }
  while (watching_) co_await watcher_done_.wait(SteadyClock::now() + std::chrono::seconds(1));
}

}  // namespace tandem
