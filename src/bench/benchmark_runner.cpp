// BenchmarkRunner: one io_context, a dispatcher coroutine that sleeps until each arrival time,
// a coroutine per request, and a slot counter standing in for vLLM's asyncio.Semaphore.
#include "bench/benchmark_runner.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <memory>

#include "bench/progress_bar.h"
#include "core/error.h"

namespace tandem::bench {
namespace {

namespace asio = boost::asio;

constexpr std::chrono::milliseconds kProgressPeriod{200};

// A counting semaphore for coroutines on one single-threaded io_context: a waiter parks on a
// timer that never expires and is woken by cancel() when a slot is handed to it.
class Slots {
 public:
  Slots(asio::io_context& io, std::optional<int> count) : io_(io), free_(count) {}

  asio::awaitable<void> acquire() {
    if (!free_) co_return;  // unlimited
    if (*free_ > 0) {
      --*free_;
      co_return;
    }
    auto waiter = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    waiters_.push_back(waiter);
    boost::system::error_code ec;
    co_await waiter->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  void release() {
    if (!free_) return;
    if (waiters_.empty()) {
      ++*free_;
      return;
    }
    waiters_.front()->cancel();  // the slot passes straight to the first waiter
    waiters_.pop_front();
  }

 private:
  asio::io_context& io_;
  std::optional<int> free_;  // nullopt: no limit
  std::deque<std::shared_ptr<asio::steady_timer>> waiters_;
};

struct RunState {
  const BenchmarkPlan& plan;
  const StreamingClient& client;
  Slots& slots;
  Clock::time_point origin;
  std::vector<RequestOutput>& outputs;
  int done = 0;
  Clock::time_point finished{};                  // when the last request completed
  asio::steady_timer* progress_timer = nullptr;  // woken early when the last one completes
};

asio::awaitable<void> run_request(RunState& s, size_t i) {
  RequestOutput& out = s.outputs[i];
  out.prompt_len = s.plan.prompt_lens[i];
  out.arrival_time = std::chrono::duration<double>(Clock::now() - s.origin).count();
  bool holds_slot = false;
  try {
    co_await s.slots.acquire();
    holds_slot = true;
    co_await s.client.send(s.plan.bodies[i], s.origin, out);
  } catch (const std::exception& e) {  // out of memory and the like: still counted, never lost
    out.success = false;
    out.error = e.what();
  }
  if (holds_slot) s.slots.release();
  if (++s.done == int(s.outputs.size())) {
    s.finished = Clock::now();
    if (s.progress_timer) s.progress_timer->cancel();
  }
}

asio::awaitable<void> dispatch(RunState& s, asio::io_context& io) {
  asio::steady_timer timer(io);
  for (size_t i = 0; i < s.plan.bodies.size(); ++i) {
    const auto due = s.origin + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(s.plan.arrivals[i]));
    if (due > Clock::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(asio::use_awaitable);
    }
    asio::co_spawn(io, run_request(s, i), asio::detached);
  }
}

asio::awaitable<void> show_progress(RunState& s, asio::io_context& io, ProgressBar& bar) {
  asio::steady_timer timer(io);
  s.progress_timer = &timer;
  const int total = int(s.plan.bodies.size());
  while (s.done < total) {
    bar.update(s.done, std::chrono::duration<double>(Clock::now() - s.origin).count());
    timer.expires_after(kProgressPeriod);
    boost::system::error_code ec;  // operation_aborted: the run just finished
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  s.progress_timer = nullptr;
}

}  // namespace

BenchmarkRun run_benchmark(const BenchmarkPlan& plan) {
  TANDEM_CHECK(
      plan.bodies.size() == plan.arrivals.size() && plan.bodies.size() == plan.prompt_lens.size(),
      "benchmark plan: {} bodies, {} arrival times, {} prompt lengths", plan.bodies.size(),
      plan.arrivals.size(), plan.prompt_lens.size());
  TANDEM_CHECK(!plan.max_concurrency || *plan.max_concurrency > 0,
               "--max-concurrency must be greater than 0");
  asio::io_context io(1);
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(plan.api_url.host, plan.api_url.port, ec);
  TANDEM_CHECK(!ec, "cannot resolve host '{}': {}", plan.api_url.host, ec.message());
  StreamingClient client(plan.api_url, endpoints, plan.api, plan.headers);
  Slots slots(io, plan.max_concurrency);

  BenchmarkRun run;
  if (plan.bodies.empty()) return run;
  run.outputs.resize(plan.bodies.size());
  RunState state{plan, client, slots, Clock::now(), run.outputs};
  ProgressBar bar(int(plan.bodies.size()), stderr);
  asio::co_spawn(io, dispatch(state, io), asio::detached);
  if (plan.progress == ProgressDisplay::kShown) {
    asio::co_spawn(io, show_progress(state, io, bar), asio::detached);
  }
  io.run();
  run.duration_s = std::chrono::duration<double>(state.finished - state.origin).count();
  if (plan.progress == ProgressDisplay::kShown) bar.finish(state.done, run.duration_s);
  return run;
}

}  // namespace tandem::bench
