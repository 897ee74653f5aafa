// Disaggregated prefill end to end through the real `tandem proxy`: prefillers and decoders are
// `tandem serve` processes with the example's CPU LMCache configs and the reference
// --kv-transfer-config flags (chunk_size 16 so that short prompts span many chunks). Greedy
// answers for 20 prompts (1 token to past several chunks, chunk-aligned and not) equal a single
// `tandem serve` — completions and chat, streamed and not, greedy and seeded — while the decoder
// computes no prompt token of a completion (it starts from the prefiller's token) and only the
// skip_last_n_tokens prompt token of a chat, and its buffer empties; 2 prefillers + 2 decoders
// serve 100 concurrent requests; and killing a decoder or a prefiller mid-run gives the affected
// clients an error within the timeout while the survivors keep serving and the restarted
// process rejoins.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <regex>

#include "disagg_system.h"

namespace tandem::test {
namespace {

using Clock = std::chrono::steady_clock;

// 20 prompts: 10 texts of growing length, 10 token-id prompts of exact lengths around chunks.
std::vector<json> twenty_prompts() {
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She liked to play outside in the "
      "park with her dog Max. One day the sun was warm and the sky was blue, so they ran to the "
      "big tree and sang a happy song together. ";
  std::vector<json> prompts;
  for (size_t chars : {1u, 4u, 16u, 40u, 70u, 120u, 200u, 300u, 450u, 700u}) {
    std::string text;
    while (text.size() < chars) text += story;
    prompts.push_back(text.substr(0, chars));
  }
  for (int length : {1, 15, 16, 17, 32, 33, 64, 100, 256, 300}) {
    std::vector<int> ids;
    for (int i = 0; i < length; ++i) ids.push_back(3 + (i * 37 + 11) % 480);
    prompts.push_back(ids);
  }
  return prompts;
}

TEST(DisaggE2E, TwentyPromptsThroughTheProxyEqualASingleServer) {
  DisaggSystem system(1, 1);
  ASSERT_EQ(system.wait_ready(), "");
  std::string page = get_metrics(system.decoder_port(0));
  double computed0 = metric(page, "tandem:pd_prompt_tokens_computed_total");
  double received0 = metric(page, "tandem:pd_prompt_tokens_received_total");
  ASSERT_GE(computed0, 0) << page;
  // What the decoder should compute and receive: a completion starts from the prefiller's token,
  // so the decoder loads its whole prompt and computes none of it; chat computes its
  // skip_last_n_tokens (1) last prompt token and loads the rest.
  int computed = 0, received = 0;
  auto count = [&](bool chat, const Answer& a) {
    const int p = a.usage["prompt_tokens"].get<int>();
    computed += chat ? 1 : 0;
    received += chat ? p - 1 : p;
  };
  std::vector<json> prompts = twenty_prompts();
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (bool chat : {false, true}) {
      if (chat && !prompts[i].is_string()) continue;  // chat content is text
      SCOPED_TRACE(testing::Message() << "prompt " << i << (chat ? " (chat)" : ""));
      Answer single = ask(system.plain_port(), chat, prompts[i], /*stream=*/false);
      ASSERT_EQ(single.status, 200) << single.raw;
      for (bool stream : {false, true}) {
        Answer split = ask(system.proxy_port(), chat, prompts[i], stream);
        ASSERT_EQ(split.status, 200) << split.raw << "\nproxy:\n" << system.proxy().log();
        EXPECT_FALSE(split.stream_error) << split.raw;
        EXPECT_EQ(split.text, single.text) << (stream ? "streamed" : "whole");
        EXPECT_EQ(split.finish_reason, single.finish_reason);
        EXPECT_EQ(split.usage, single.usage);
        count(chat, split);
      }
    }
  }
  // Seeded sampling: the decoder continues the prefiller's token with the numbers one server
  // draws next.
  for (size_t i : {3u, 6u, 9u, 15u}) {
    SCOPED_TRACE(testing::Message() << "seeded prompt " << i);
    const json extra = {{"temperature", 1.0}, {"top_p", 0.9}, {"seed", 1234 + int(i)}};
    Answer single = ask(system.plain_port(), false, prompts[i], false, 24, extra);
    ASSERT_EQ(single.status, 200) << single.raw;
    Answer split = ask(system.proxy_port(), false, prompts[i], true, 24, extra);
    ASSERT_EQ(split.status, 200) << split.raw;
    EXPECT_EQ(split.text, single.text);
    EXPECT_EQ(split.usage, single.usage);
    count(false, split);
  }
  // max_tokens 1: the prefiller's token is the whole answer; the decoder computes and loads
  // nothing and frees the transfer's pages.
  Answer one = ask(system.proxy_port(), false, "Once upon a time", false, /*max_tokens=*/1);
  EXPECT_EQ(one.status, 200) << one.raw;
  EXPECT_EQ(one.usage["completion_tokens"], 1);

  // The engine publishes its counters, and frees the last transfer's pages, a moment after the
  // last answer (CI once read one 8 KiB page still held).
  for (int i = 0; i < 50; ++i) {
    page = get_metrics(system.decoder_port(0));
    if (metric(page, "tandem:pd_prompt_tokens_computed_total") - computed0 >= computed &&
        metric(page, "tandem:pd_prompt_tokens_received_total") - received0 >= received &&
        metric(page, "tandem:pd_buffer_bytes_used") == 0) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_computed_total") - computed0, computed) << page;
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_received_total") - received0, received);
  EXPECT_EQ(metric(page, "tandem:pd_buffer_bytes_used"), 0);
  std::string proxy_metrics = get_metrics(system.proxy_port());
  EXPECT_EQ(metric(proxy_metrics, "tandem:proxy_errors_total"), -1) << proxy_metrics;
  std::this_thread::sleep_for(1200ms);
  EXPECT_NE(system.proxy().log().find("Prefill node TTFT stats:"), std::string::npos);
}

TEST(DisaggE2E, TwoPrefillersAndTwoDecodersServe100ConcurrentRequests) {
  DisaggSystem system(2, 2);
  ASSERT_EQ(system.wait_ready(), "");
  std::vector<json> prompts = twenty_prompts();
  std::vector<Answer> expected;
  for (const json& p : prompts) expected.push_back(ask(system.plain_port(), false, p, false));
  constexpr int kRequests = 100;
  std::vector<Answer> got(kRequests);
  std::vector<std::thread> clients;
  Clock::time_point start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      got[i] = ask(system.proxy_port(), false, prompts[i % prompts.size()], i % 2 == 1);
    });
  }
  for (auto& t : clients) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("2P2D: %d concurrent requests in %.2f s\n", kRequests, seconds);
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(got[i].status, 200) << i << ": " << got[i].raw;
    EXPECT_EQ(got[i].text, expected[i % prompts.size()].text) << i;
    EXPECT_FALSE(got[i].stream_error) << i;
  }
  for (int d = 0; d < 2; ++d) {
    std::string page = get_metrics(system.decoder_port(d));
    EXPECT_GE(metric(page, "tandem:pd_transfers_received_total"), kRequests / 2 - 1) << page;
    EXPECT_EQ(metric(page, "tandem:pd_buffer_bytes_used"), 0) << page;
  }
}

// Clients in a loop while an engine is killed and restarted: every request ends — correct, or
// an error within the timeout — and after the restart every request succeeds again.
TEST(DisaggE2E, KilledEnginesFailOnlyTheirRequestsAndRejoinWhenRestarted) {
  DisaggSystem system(2, 2);
  ASSERT_EQ(system.wait_ready(), "");
  const json prompt = "Once upon a time, there was a little girl named Lily.";
  Answer expected = ask(system.plain_port(), false, prompt, false, 24);
  ASSERT_EQ(expected.status, 200);

  std::atomic<bool> running{true};
  std::atomic<int> ok{0}, failed{0}, wrong{0};
  std::atomic<double> slowest_ms{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; running; ++i) {
        Clock::time_point t = Clock::now();
        Answer a = ask(system.proxy_port(), false, prompt, (i + c) % 2 == 0, 24);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
        if (ms > slowest_ms) slowest_ms = ms;
        if (a.status == 200 && !a.stream_error) {
          (a.text == expected.text ? ok : wrong)++;
        } else {
          EXPECT_TRUE(a.status == 502 || a.status == 503 || a.status == 504 || a.stream_error)
              << a.status << " " << a.raw;
          ++failed;
        }
      }
    });
  }
  auto phase = [&](const char* what, auto action) {
    std::this_thread::sleep_for(1500ms);
    action();
    std::printf("%s: ok %d, failed %d\n", what, ok.load(), failed.load());
  };
  phase("decoder 1 killed", [&] { system.decoder(1).kill_now(); });
  phase("decoder 1 restarted", [&] {
    system.start_decoder(1);
    EXPECT_GT(system.decoder(1).wait_for_port(), 0) << system.decoder(1).log();
  });
  phase("prefiller 0 killed", [&] { system.prefiller(0).kill_now(); });
  phase("prefiller 0 restarted", [&] {
    system.start_prefiller(0);
    EXPECT_GT(system.prefiller(0).wait_for_port(), 0) << system.prefiller(0).log();
  });
  std::this_thread::sleep_for(3s);  // past the proxy's 2 s rest for engines that refused
  running = false;
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(ok, 0);
  EXPECT_LT(slowest_ms, 15000 * kLatencyScale) << "every failure came within the timeouts";

  // Everyone is back: requests succeed, and both restarted engines take their share.
  std::string before_d1 = get_metrics(system.decoder_port(1));
  std::string before_p0 = get_metrics(system.prefiller_port(0));
  for (int i = 0; i < 8; ++i) {
    Answer a = ask(system.proxy_port(), false, prompt, i % 2 == 0, 24);
    EXPECT_EQ(a.status, 200) << a.raw << "\nproxy:\n" << system.proxy().log();
    EXPECT_EQ(a.text, expected.text);
  }
  EXPECT_GT(metric(get_metrics(system.decoder_port(1)), "tandem:pd_transfers_received_total"),
            metric(before_d1, "tandem:pd_transfers_received_total"));
  EXPECT_GT(metric(get_metrics(system.prefiller_port(0)), "tandem:pd_transfers_sent_total"),
            metric(before_p0, "tandem:pd_transfers_sent_total"));
}

}  // namespace
}  // namespace tandem::test
