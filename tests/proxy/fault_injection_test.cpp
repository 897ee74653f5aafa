// Fault injection on the real 1p1d system (CPU, stories260K): clients run a steady load through
// the proxy while one fault is injected — kill -9 of the prefiller during transfers, of the
// decoder mid-stream, of the proxy; SIGSTOP of either engine (a hung peer); the transfer
// connection cut; the decoder's buffer too small for a request, or for many at once. For each:
// every client gets a correct answer or a clear error (502/503/504, an error event; no answer
// at all only when the proxy itself dies) within the configured timeouts; survivors keep
// serving; a restarted or resumed process rejoins without restarting the others; every
// engine's running requests, KV blocks and transfer buffer return to zero (/metrics); and a
// hung peer is found by heartbeat (the proxy's health probe, the transfer channel's heartbeat),
// not only by a request timing out.
#include <gtest/gtest.h>
#include <signal.h>

#include <mutex>

#include "connection_cutter.h"
#include "disagg_system.h"

namespace tandem::test {
namespace {

using Clock = std::chrono::steady_clock;

// Short timeouts and fast heartbeats, so that each fault resolves in seconds.
DisaggOptions fault_options() {
  const std::vector<std::string> engine_env = {
      "LMCACHE_PD_TRANSFER_TIMEOUT_SEC=6", "LMCACHE_PD_HEARTBEAT_INTERVAL_SEC=0.2",
      "LMCACHE_PD_HEARTBEAT_TIMEOUT_SEC=2"};
  DisaggOptions o;
  o.prefiller_env = engine_env;
  o.decoder_env = engine_env;
  o.proxy_args = {"--prefill-timeout", "6", "--transfer-timeout", "6", "--decode-timeout", "6",
                  "--health-check-interval", "0.3", "--health-check-timeout", "2"};
  o.plain_server = false;
  return o;
}
// The slowest a request may take under these timeouts: prefill, transfer and decode silence.
constexpr double kWorstCaseMs = 20000;

std::vector<json> load_prompts() {
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She liked to play outside in the "
      "park with her dog Max. One day the sun was warm and the sky was blue, so they ran to the "
      "big tree and sang a happy song together. ";
  return {story.substr(0, 60), story.substr(0, 150), story, story + story};
}

struct Outcome {
  int status = 0;
  bool stream_error = false;
  bool correct = false;
  double ms = 0;
  std::string raw;
};

// Client threads sending the prompts in turn (streamed and not) through the proxy until stopped.
class Load {
 public:
  Load(int port, int clients, int max_tokens = 24) : port_(port), max_tokens_(max_tokens) {
    prompts_ = load_prompts();
    for (const json& p : prompts_) {
      Answer a = ask(port_, false, p, false, max_tokens_, {{"ignore_eos", true}});
      EXPECT_EQ(a.status, 200) << a.raw;
      expected_.push_back(a.text);
    }
    for (int c = 0; c < clients; ++c) threads_.emplace_back([this, c] { run(c); });
  }
  ~Load() { stop(); }

  void stop() {
    running_ = false;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  // Waits until `n` more requests have succeeded (at most `limit`); whether they did.
  bool wait_for_successes(int n, std::chrono::seconds limit = std::chrono::seconds(60)) {
    int target = ok_ + n;
    return eventually([&] { return ok_ >= target; }, limit);
  }
  // Every outcome was right or a clear error within the timeouts; "" or what was not.
  // `no_answer_ok`: a request may get no HTTP answer at all (the proxy was killed).
  std::string problems(bool no_answer_ok = false) {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const Outcome& o : outcomes_) {
      bool clear_error = o.status == 502 || o.status == 503 || o.status == 504 ||
                         (o.status == 200 && o.stream_error) || (o.status == 0 && no_answer_ok);
      if (o.ms > kWorstCaseMs) {
        out += fmt::format("a request took {:.0f} ms\n", o.ms);
      } else if (!o.correct && !clear_error) {
        out += fmt::format("status {} (stream error {}): {}\n", o.status, o.stream_error,
                           o.raw.substr(0, 300));
      }
    }
    return out;
  }
  std::string summary() const {
    return fmt::format("{} correct, {} clear errors", ok_.load(), failed_.load());
  }

 private:
  void run(int c) {
    for (int i = 0; running_; ++i) {
      size_t which = size_t(c + i) % prompts_.size();
      bool stream = (c + i) % 2 == 0;
      Clock::time_point start = Clock::now();
      Answer a = ask(port_, false, prompts_[which], stream, max_tokens_, {{"ignore_eos", true}});
      Outcome o;
      o.status = a.status;
      o.stream_error = a.stream_error;
      o.correct = a.status == 200 && !a.stream_error && a.text == expected_[which];
      o.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      o.raw = a.raw;
      (o.correct ? ok_ : failed_)++;
      if (!o.correct && o.status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::lock_guard lock(mutex_);
      outcomes_.push_back(std::move(o));
    }
  }

  int port_;
  int max_tokens_;
  std::vector<json> prompts_;
  std::vector<std::string> expected_;
  std::atomic<bool> running_{true};
  std::atomic<int> ok_{0}, failed_{0};
  std::mutex mutex_;
  std::vector<Outcome> outcomes_;
  std::vector<std::thread> threads_;
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Whether the proxy's /health says the engine on `port` is healthy.
bool proxy_says_healthy(DisaggSystem& system, const std::string& role, int port) {
  RawReply reply = raw_request(system.proxy_port(), "GET", "/health", "");
  json j = json::parse(reply.body, nullptr, false);
  return j.is_object() && j["engines"].value(role + " 127.0.0.1:" + std::to_string(port), "") == "healthy";
}

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    system_ = std::make_unique<DisaggSystem>(1, 1, fault_options());
    ASSERT_EQ(system_->wait_ready(), "");
  }
  // Load, then the fault, then recovery; every request checked, everything drained.
  void TearDown() override {
    if (load_) {
      load_->stop();
      std::printf("%s\n", load_->summary().c_str());
      EXPECT_EQ(load_->problems(no_answer_ok_), "") << logs();
    }
    EXPECT_EQ(wait_until_drained(*system_), "") << logs();
    // Nothing hangs: after the fault, every process still shuts down cleanly and promptly.
    EXPECT_EQ(system_->stop_all(), "") << logs();
  }
  std::string logs() {
    return "\n--- proxy:\n" + tail(system_->proxy().log()) + "\n--- prefiller:\n" +
           tail(system_->prefiller(0).log()) + "\n--- decoder:\n" + tail(system_->decoder(0).log());
  }
  static std::string tail(const std::string& text) {
    return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
  }
  // After the fault is over: new requests succeed again through every process.
  void expect_recovered() {
    ASSERT_TRUE(load_->wait_for_successes(8)) << load_->summary() << logs();
  }

  std::unique_ptr<DisaggSystem> system_;
  std::unique_ptr<Load> load_;
  bool no_answer_ok_ = false;
};

TEST_F(FaultInjection, PrefillerKilledDuringTransfersAndRestarted) {
  load_ = std::make_unique<Load>(system_->proxy_port(), 4);
  ASSERT_TRUE(load_->wait_for_successes(8));
  system_->prefiller(0).kill_now();
  int failed = load_->failed();
  // While it is down: clear errors, promptly (a refused connection, then 503 while it rests).
  ASSERT_TRUE(eventually([&] { return load_->failed() >= failed + 4; }));
  system_->start_prefiller(0);
  ASSERT_GT(system_->prefiller(0).wait_for_port(), 0) << system_->prefiller(0).log();
  expect_recovered();
}

TEST_F(FaultInjection, DecoderKilledMidStreamAndRestarted) {
  load_ = std::make_unique<Load>(system_->proxy_port(), 4, /*max_tokens=*/200);
  ASSERT_TRUE(load_->wait_for_successes(8));
  system_->decoder(0).kill_now();
  int failed = load_->failed();
  ASSERT_TRUE(eventually([&] { return load_->failed() >= failed + 4; }));
  system_->start_decoder(0);
  ASSERT_GT(system_->decoder(0).wait_for_port(), 0) << system_->decoder(0).log();
  expect_recovered();
}

TEST_F(FaultInjection, ProxyKilledAndRestartedWithoutTheEngines) {
  load_ = std::make_unique<Load>(system_->proxy_port(), 4, /*max_tokens=*/100);
  ASSERT_TRUE(load_->wait_for_successes(8));
  no_answer_ok_ = true;
  system_->proxy().kill_now();
  // The engines notice their callers are gone and free everything, with no proxy at all.
  EXPECT_EQ(wait_until_drained(*system_), "") << logs();
  system_->start_proxy();
  ASSERT_GT(system_->proxy().wait_for_port(), 0) << system_->proxy().log();
  expect_recovered();
}

// SIGSTOP: the decoder is alive but answers nothing. The proxy's health probe takes it out of
// service (new requests: a prompt 503), the prefiller's sender finds it silent on the transfer
// channel; after SIGCONT it serves again.
TEST_F(FaultInjection, HungDecoderIsFoundByHeartbeatAndRejoinsWhenResumed) {
  load_ = std::make_unique<Load>(system_->proxy_port(), 4, /*max_tokens=*/100);
  ASSERT_TRUE(load_->wait_for_successes(8));
  const int port = system_->decoder_port(0);
  system_->decoder(0).send_signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return !proxy_says_healthy(*system_, "decoder", port); }))
      << logs();
  EXPECT_TRUE(eventually([&] {
    return system_->prefiller(0).log().find("hung or dead") != std::string::npos;
  })) << "the prefiller's sender did not notice the silent decoder" << logs();
  Clock::time_point start = Clock::now();
  Answer refused = ask(system_->proxy_port(), false, "Once upon a time", false);
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 1.0);
  system_->decoder(0).send_signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return proxy_says_healthy(*system_, "decoder", port); })) << logs();
  expect_recovered();
}

TEST_F(FaultInjection, HungPrefillerIsFoundByHeartbeatAndRejoinsWhenResumed) {
  load_ = std::make_unique<Load>(system_->proxy_port(), 4);
  ASSERT_TRUE(load_->wait_for_successes(8));
  const int port = system_->prefiller_port(0);
  system_->prefiller(0).send_signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return !proxy_says_healthy(*system_, "prefiller", port); }))
      << logs();
  EXPECT_TRUE(eventually([&] {
    return system_->decoder(0).log().find("has been silent") != std::string::npos;
  })) << "the decoder's receiver did not notice the silent sender" << logs();
  system_->prefiller(0).send_signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return proxy_says_healthy(*system_, "prefiller", port); }))
      << logs();
  expect_recovered();
}

// The prefiller's TCP connections to the decoder (the UCX connection manager's and any data
// lane's) are cut under load: the transfers on them fail with a clear error, the sender
// reconnects, and later requests succeed.
TEST_F(FaultInjection, TransferConnectionCutUnderLoad) {
  load_ = std::make_unique<Load>(system_->proxy_port(), 4);
  ASSERT_TRUE(load_->wait_for_successes(8));
  int cut = cut_tcp_connections(system_->prefiller(0).pid(), system_->decoder(0).pid());
  ASSERT_GT(cut, 0) << "no prefiller -> decoder TCP connection found";
  std::printf("cut %d connection(s)\n", cut);
  expect_recovered();
  // The sender opened new connections to the decoder after the cut.
  EXPECT_GE(count_of(system_->prefiller(0).log(), "kv sender: connected to decoder"), 2) << logs();
}

// The decoder's transfer buffer holds 3 chunks (64 KiB): a request needing more gets a clear
// 502 at once (no endless retry), and 16 requests at once that fit only one or two at a time
// all get their answers — the sender waits for room instead of failing.
class SmallDecoderBuffer : public FaultInjection {
 protected:
  void SetUp() override {
    DisaggOptions o = fault_options();
    o.decoder_env.push_back("LMCACHE_PD_BUFFER_SIZE=65536");
    o.prefiller_env.push_back("LMCACHE_PD_TRANSFER_TIMEOUT_SEC=20");
    o.proxy_args = with_flags(o.proxy_args, {"--transfer-timeout", "30"});
    system_ = std::make_unique<DisaggSystem>(1, 1, o);
    ASSERT_EQ(system_->wait_ready(), "");
  }
};

TEST_F(SmallDecoderBuffer, ARequestBiggerThanTheBufferFailsClearlyAndOthersKeepServing) {
  std::vector<int> ids(300);
  for (int i = 0; i < 300; ++i) ids[i] = 3 + (i * 37 + 11) % 480;
  Clock::time_point start = Clock::now();
  Answer big = ask(system_->proxy_port(), false, ids, false);
  EXPECT_EQ(big.status, 502) << big.raw;
  EXPECT_NE(big.raw.find("exceed the whole transfer buffer"), std::string::npos) << big.raw;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5.0);
  Answer small = ask(system_->proxy_port(), false, "Once upon a time", false);
  EXPECT_EQ(small.status, 200) << small.raw;
}

TEST_F(SmallDecoderBuffer, ManyRequestsAtOnceWaitForRoomAndAllSucceed) {
  const json prompt = load_prompts()[0];  // 2 chunks: 10 of the buffer's 16 pages
  Answer expected = ask(system_->proxy_port(), false, prompt, false, 24);
  ASSERT_EQ(expected.status, 200) << expected.raw;
  constexpr int kRequests = 16;
  std::vector<Answer> got(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { got[i] = ask(system_->proxy_port(), false, prompt, i % 2 == 0, 24); });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(got[i].status, 200) << got[i].raw << logs();
    EXPECT_FALSE(got[i].stream_error) << got[i].raw;
    EXPECT_EQ(got[i].text, expected.text) << i;
  }
}

}  // namespace
}  // namespace tandem::test
