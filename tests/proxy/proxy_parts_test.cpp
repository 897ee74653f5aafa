// The proxy's plain parts: TTFT statistics (numpy's percentile), backend choice (round-robin,
// least-loaded, resting after a failure) and the notification hub (early arrivals kept, then
// dropped), plus the UCX notification listener answering Hello and delivering TransferDone.
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>

#include "proxy/backend_pool.h"
#include "proxy/request_rewrite.h"
#include "proxy/transfer_notifications.h"
#include "proxy/ttft_stats.h"
#include "server/openai_errors.h"
#include "transfer/ucx_transport.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

TEST(TtftStats, PercentileMatchesNumpy) {
  // numpy.percentile([1, 2, 3, 4], 99) = 3.97, median 2.5
  EXPECT_DOUBLE_EQ(TtftStats::percentile({4, 1, 3, 2}, 99), 3.97);
  EXPECT_DOUBLE_EQ(TtftStats::percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(TtftStats::percentile({7}, 99), 7);
}

TEST(TtftStats, ReportsOnlyWhenSomethingArrived) {
  TtftStats s;
  EXPECT_FALSE(s.take_report());
  s.add_prefill(10);
  s.add_prefill(20);
  s.add_end_to_end(30);
  s.add_end_to_end(50);
  auto report = s.take_report();
  ASSERT_TRUE(report);
  EXPECT_EQ(*report,
            "=============================== \nNum requests: 2\nPrefill node TTFT stats:\n"
            " - Average (ms): 15\n - Median (ms): 15\n - 99th Percentile (ms): 19.9\n"
            "End-to-end TTFT stats:\n - Average (ms): 40\n - Median (ms): 40\n"
            " - 99th Percentile (ms): 49.8\n ===============================\n");
  EXPECT_FALSE(s.take_report());
}

TEST(TtftStats, KeepsABoundedWindowForMedianAndP99AndCountsEverySample) {
  TtftStats s(/*window=*/100);
  for (int i = 1; i <= 100000; ++i) {
    s.add_prefill(double(i));
    s.add_end_to_end(double(i));
    ASSERT_LE(s.num_held_prefill(), s.window());
    ASSERT_LE(s.num_held_end_to_end(), s.window());
  }
  EXPECT_EQ(s.num_held_prefill(), 100u);
  EXPECT_EQ(s.num_held_end_to_end(), 100u);
  auto report = s.take_report();
  ASSERT_TRUE(report);
  // Count and average over all 100,000; median and p99 over the last 100 (99,901 .. 100,000):
  // numpy.percentile(range(99901, 100001), [50, 99]) = 99950.5, 99999.01.
  std::vector<double> last;
  for (int i = 99901; i <= 100000; ++i) last.push_back(double(i));
  const std::string p99 = fmt::format(" - 99th Percentile (ms): {}\n", TtftStats::percentile(last, 99));
  EXPECT_NEAR(TtftStats::percentile(last, 99), 99999.01, 1e-6);
  EXPECT_NE(report->find("Num requests: 100000\n"), std::string::npos) << *report;
  EXPECT_NE(report->find(" - Average (ms): 50000.5\n"), std::string::npos) << *report;
  EXPECT_NE(report->find(" - Median (ms): 99950.5\n"), std::string::npos) << *report;
  EXPECT_NE(report->find(p99), std::string::npos) << *report;
}

TEST(TtftStats, TheDefaultWindowIsBounded) {
  TtftStats s;
  for (size_t i = 0; i < TtftStats::kDefaultWindow + 5000; ++i) s.add_prefill(1.0);
  EXPECT_EQ(s.num_held_prefill(), TtftStats::kDefaultWindow);
  EXPECT_EQ(s.num_held_end_to_end(), 0u);
}

TEST(BackendPool, RoundRobinSkipsARestingBackendUntilItsRestEnds) {
  BackendPool pool({"a", "b", "c"}, RoutingPolicy::kRoundRobin, 100ms);
  std::vector<size_t> order;
  for (int i = 0; i < 4; ++i) order.push_back(pool.pick()->index());
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 0}));
  pool.mark_failed(1);
  EXPECT_EQ(pool.pick()->index(), 2u);
  EXPECT_EQ(pool.pick()->index(), 0u);
  EXPECT_EQ(pool.pick()->index(), 2u);
  std::this_thread::sleep_for(120ms);
  EXPECT_EQ(pool.pick()->index(), 0u);
  EXPECT_EQ(pool.pick()->index(), 1u);
  pool.mark_failed(0);
  pool.mark_failed(1);
  pool.mark_failed(2);
  EXPECT_FALSE(pool.pick());
}

TEST(BackendPool, LeastLoadedPicksTheBackendWithFewestInFlight) {
  BackendPool pool({"a", "b"}, RoutingPolicy::kLeastLoaded, 1s);
  auto first = pool.pick();
  auto second = pool.pick();
  EXPECT_NE(first->index(), second->index());
  auto third = pool.pick();
  EXPECT_EQ(pool.in_flight(0) + pool.in_flight(1), 3u);
  size_t busy = third->index();
  second.reset();
  first.reset();
  EXPECT_NE(pool.pick()->index(), busy);
  third.reset();
  EXPECT_EQ(pool.in_flight(0) + pool.in_flight(1), 0u);
}

TEST(NotificationHub, MatchesWaitersAndKeepsEarlyArrivalsForAWhile) {
  NotificationHub hub(100ms);
  std::vector<std::string> got;
  hub.expect("a", [&](const TransferOutcome& o) { got.push_back("a:" + o.reason); });
  hub.deliver("a", {TransferResult::kAborted, "why"});
  hub.deliver("b", {TransferResult::kDone, ""});  // before its waiter
  hub.expect("b", [&](const TransferOutcome& o) {
    got.push_back(o.result == TransferResult::kDone ? "b:done" : "b:?");
  });
  EXPECT_EQ(got, (std::vector<std::string>{"a:why", "b:done"}));
  hub.expect("c", [&](const TransferOutcome&) { got.push_back("c"); });
  hub.forget("c");
  hub.deliver("c", {});
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(hub.num_waiting(), 0u);
  std::this_thread::sleep_for(150ms);
  hub.deliver("d", {});  // drops the expired "c"
  EXPECT_EQ(hub.num_unclaimed(), 1u);
}

TEST(NotificationListener, AnswersHelloAndDeliversTransferDoneAndAbort) {
  auto transport = make_ucx_transport();
  NotificationHub hub(10s);
  NotificationListener listener(*transport, "127.0.0.1", 0, hub);
  auto connection = transport->connect("127.0.0.1", listener.port(), 5s);
  send_message(*connection, Hello{kWireVersion, PeerRole::kSender, "test"});
  auto ack = recv_message(*connection, 5s);
  ASSERT_TRUE(ack && std::holds_alternative<HelloAck>(*ack));
  EXPECT_EQ(std::get<HelloAck>(*ack).status, HelloStatus::kOk);
  EXPECT_EQ(std::get<HelloAck>(*ack).buffer_size, 0u);
  send_message(*connection, Heartbeat{1});
  send_message(*connection, TransferDone{"r1", {}});
  send_message(*connection, Abort{"r2", "no room"});
  std::atomic<int> seen{0};
  std::string reason;
  hub.expect("r1", [&](const TransferOutcome& o) { seen += o.result == TransferResult::kDone; });
  hub.expect("r2", [&](const TransferOutcome& o) {
    reason = o.reason;
    seen += o.result == TransferResult::kAborted;
  });
  for (int i = 0; i < 500 && seen < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(reason, "no room");
}

TEST(RequestRewrite, ChatPrefillDropsMaxCompletionTokens) {
  nlohmann::json body = {{"messages", nlohmann::json::array()}, {"max_completion_tokens", 9},
                         {"stream", true}, {"stream_options", {{"include_usage", true}}},
                         {"n", 2}, {"best_of", 3}};
  DecoderEndpoint d{{"dec", 7200}, 7300, 7400};
  nlohmann::json p = make_prefill_body(body, ApiEndpoint::kChatCompletions, "id1", d);
  EXPECT_EQ(p["max_tokens"], 1);
  EXPECT_FALSE(p.contains("max_completion_tokens"));
  EXPECT_FALSE(p.contains("stream_options"));
  EXPECT_FALSE(p.contains("best_of"));
  EXPECT_EQ(p["n"], 1);
  EXPECT_EQ(p["stream"], false);
  EXPECT_EQ(p["kv_transfer_params"]["disagg_spec"]["receiver_host"], "dec");
  nlohmann::json q = make_decode_body(body, "id1");
  EXPECT_EQ(q["n"], 2);
  EXPECT_EQ(q["kv_transfer_params"], (nlohmann::json{{"disagg_spec", {{"req_id", "id1"}}}}));
  EXPECT_FALSE(p.contains("return_token_ids"));  // chat: the decoder renders its template

  nlohmann::json completion = {{"prompt", "Once upon"}, {"max_tokens", 4}};
  EXPECT_EQ(make_prefill_body(completion, ApiEndpoint::kCompletions, "id2", d)["return_token_ids"],
            true);
  for (const nlohmann::json& other :
       {nlohmann::json{{"prompt", {"a", "b"}}}, nlohmann::json{{"prompt", {{1, 2}, {3}}}},
        nlohmann::json{{"prompt", nlohmann::json::array()}}, nlohmann::json{{"prompt", {1, "b"}}},
        nlohmann::json{{"prompt", "a"}, {"echo", true}}}) {
    EXPECT_FALSE(prompt_ids_reusable(other, ApiEndpoint::kCompletions)) << other;
  }
  EXPECT_TRUE(prompt_ids_reusable({{"prompt", {1, 2}}}, ApiEndpoint::kCompletions));
  EXPECT_TRUE(prompt_ids_reusable({{"prompt", "a"}, {"echo", false}}, ApiEndpoint::kCompletions));
  const nlohmann::json ids =
      handover_of(R"({"choices":[{"prompt_token_ids":[1,2,3]}]})", false).prompt_ids;
  EXPECT_EQ(ids, nlohmann::json::array({1, 2, 3}));
  EXPECT_EQ(make_decode_body(completion, "id2", {ids, std::nullopt})["prompt"], ids);
  EXPECT_FALSE(
      make_decode_body(completion, "id2", {ids, std::nullopt})["kv_transfer_params"].contains(
          "first_token_id"));
  EXPECT_EQ(make_decode_body(completion, "id2", {ids, 7})["kv_transfer_params"]["first_token_id"],
            7);
  EXPECT_EQ(make_decode_body(completion, "id2")["prompt"], "Once upon");
  for (const char* bad : {"", "[]", R"({"choices":[]})", R"({"choices":[{"text":"A"}]})",
                          R"({"choices":[{"prompt_token_ids":[]}]})",
                          R"({"choices":[{"prompt_token_ids":[1,-2]}]})",
                          R"({"choices":[{"prompt_token_ids":[1,"2"]}]})",
                          R"({"choices":[{"prompt_token_ids":[1,4294967296]}]})",
                          R"({"choices":[{"prompt_token_ids":{"a":1}}]})"}) {
    EXPECT_TRUE(handover_of(bad, false).prompt_ids.is_null()) << bad;
  }
  // The first token: one id beside the prompt ids, for one plain choice.
  const char* answer = R"({"choices":[{"prompt_token_ids":[1,2],"token_ids":[9]}]})";
  EXPECT_EQ(handover_of(answer, true).first_token_id, 9);
  EXPECT_EQ(handover_of(answer, false).first_token_id, std::nullopt);
  EXPECT_EQ(handover_of(answer, true).prompt_ids, nlohmann::json::array({1, 2}));
  for (const char* bad : {R"({"choices":[{"token_ids":[9]}]})",  // no prompt ids
                          R"({"choices":[{"prompt_token_ids":[1],"token_ids":[]}]})",
                          R"({"choices":[{"prompt_token_ids":[1],"token_ids":[9,10]}]})",
                          R"({"choices":[{"prompt_token_ids":[1],"token_ids":[-1]}]})",
                          R"({"choices":[{"prompt_token_ids":[1],"token_ids":["9"]}]})",
                          R"({"choices":[{"prompt_token_ids":[1],"token_ids":9}]})"}) {
    EXPECT_EQ(handover_of(bad, true).first_token_id, std::nullopt) << bad;
  }
  EXPECT_TRUE(first_token_reusable(completion, ApiEndpoint::kCompletions));
  EXPECT_TRUE(first_token_reusable({{"prompt", "a"}, {"n", 1}, {"logprobs", nullptr}},
                                   ApiEndpoint::kCompletions));
  for (const nlohmann::json& other :
       {nlohmann::json{{"prompt", "a"}, {"n", 2}}, nlohmann::json{{"prompt", "a"}, {"best_of", 3}},
        nlohmann::json{{"prompt", "a"}, {"min_tokens", 1}},
        nlohmann::json{{"prompt", "a"}, {"logprobs", 0}},
        nlohmann::json{{"prompt", "a"}, {"echo", true}}, nlohmann::json{{"prompt", {"a", "b"}}}}) {
    EXPECT_FALSE(first_token_reusable(other, ApiEndpoint::kCompletions)) << other;
  }
  EXPECT_FALSE(
      first_token_reusable({{"messages", nlohmann::json::array()}}, ApiEndpoint::kChatCompletions));
  EXPECT_THROW(parse_client_body("[]"), ApiError);
  EXPECT_THROW(parse_client_body("{"), ApiError);
  EXPECT_THROW(parse_client_body("{\"a\": " + std::string(1000, '[') + "}"), ApiError);
  // What only the decoder would see (the prefiller gets max_tokens 1, no stream) fails first.
  EXPECT_NO_THROW(check_client_request(R"({"prompt": "a", "max_tokens": 3, "n": 2})",
                                       ApiEndpoint::kCompletions));
  for (const char* bad : {R"({"prompt": "a", "max_tokens": -1})",
                          R"({"prompt": "a", "stream": "yes"})",
                          R"({"prompt": "a", "stream_options": {"include_usage": true}})",
                          R"({"prompt": "a", "n": 0})", R"({"prompt": "a", "min_tokens": -2})"}) {
    EXPECT_THROW(check_client_request(bad, ApiEndpoint::kCompletions), ApiError) << bad;
  }
  EXPECT_THROW(check_client_request(R"({"messages": [{"role": "x", "content": "a"}]})",
                                    ApiEndpoint::kChatCompletions),
               ApiError);
  EXPECT_NE(new_request_id(), new_request_id());
}

}  // namespace
}  // namespace tandem
