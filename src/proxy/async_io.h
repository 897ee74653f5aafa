// The proxy's Boost.Asio/Beast vocabulary: namespace aliases, the coroutine type, and AsyncEvent
// (a timer used as a wake-up that a coroutine can wait on with a deadline). Everything of one
// client connection runs on that connection's strand, so these objects need no locks; another
// thread reaches them only through net::post onto the strand.
#pragma once
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace tandem {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using SteadyClock = std::chrono::steady_clock;

template <typename T = void>
using Task = net::awaitable<T>;

// Wakes a waiting coroutine: wait() returns when poke() is called or the deadline passes; the
// caller then checks its own condition. One waiter at a time; call only on the owner's strand.
class AsyncEvent {
 public:
  explicit AsyncEvent(const net::any_io_executor& executor) : timer_(executor) {}
  void poke() { timer_.cancel(); }
  Task<void> wait(SteadyClock::time_point deadline) {
    timer_.expires_at(deadline);
    boost::system::error_code ignored;
    co_await timer_.async_wait(net::redirect_error(net::use_awaitable, ignored));
  }

 private:
  net::steady_timer timer_;
};

}  // namespace tandem
