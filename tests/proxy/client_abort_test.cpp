// A client that hangs up reaches both engines within 1 s, whatever the phase of its request at
// the proxy: while the prefiller computes, while the KV transfer is awaited, while the decoder
// streams, and while the decoder computes a whole answer. The proxy closes the upstream call in
// progress and posts /tandem/abort_transfer {"req_id"} to the prefiller and the decoder (fake
// engines here, which record when it arrived; the real engines' side is in
// disagg_abort_test.cpp). A client that hangs up once it has read the stream's data: [DONE], before
// the stream has ended (as vLLM's benchmark client does), had its whole answer: no error, no abort.
#include <gtest/gtest.h>

#include "fake_engines.h"
#include "test_support.h"

namespace tandem::test {
namespace {

using Clock = std::chrono::steady_clock;

json completion(bool stream) {
  return {{"model", "m"}, {"prompt", "Once upon"}, {"max_tokens", 16}, {"stream", stream}};
}

// The transfer id the prefiller was given (waits for the prefill to arrive); "" if none came.
std::string prefill_id(ProxyRig& rig) {
  if (!eventually([&] { return !rig.prefillers[0]->received().empty(); })) return "";
  return rig.prefillers[0]->received()[0].request_id;
}

// Both engines got the abort of `id` within 1 s of `left` (stretched only in the sanitizer
// builds: kLatencyScale).
void expect_both_told(ProxyRig& rig, const std::string& id, Clock::time_point left) {
  for (AbortLog* log : {&rig.prefillers[0]->aborts, &rig.decoders[0]->aborts}) {
    const char* engine = log == &rig.prefillers[0]->aborts ? "prefiller" : "decoder";
    ASSERT_TRUE(eventually([&] { return log->when(id).has_value(); }, std::chrono::seconds(5)))
        << engine << " never told";
    double ms = std::chrono::duration<double, std::milli>(*log->when(id) - left).count();
    EXPECT_LT(ms, 1000 * kLatencyScale) << engine;
  }
}

TEST(ClientAbort, WhilePrefillingReachesBothEngines) {
  ProxyRig rig(1, 1);
  rig.prefillers[0]->mode = PrefillMode::kSlow;
  LeavingClient client(rig.port(), "/v1/completions", completion(false));
  std::string id = prefill_id(rig);
  ASSERT_FALSE(id.empty());
  client.leave();
  expect_both_told(rig, id, Clock::now());
  EXPECT_TRUE(rig.decoders[0]->received().empty()) << "the decoder got the request anyway";
}

TEST(ClientAbort, WhileTheTransferIsAwaitedReachesBothEngines) {
  ProxyRig rig(1, 1);
  rig.prefillers[0]->mode = PrefillMode::kSilent;  // answers; no TransferDone comes
  LeavingClient client(rig.port(), "/v1/completions", completion(true));
  std::string id = prefill_id(rig);
  ASSERT_FALSE(id.empty());
  std::this_thread::sleep_for(200ms);  // the prefiller's answer is in; the proxy waits
  client.leave();
  expect_both_told(rig, id, Clock::now());
  EXPECT_TRUE(rig.decoders[0]->received().empty());
}

TEST(ClientAbort, WhileDecodingAStreamReachesBothEngines) {
  ProxyRig rig(1, 1);
  rig.decoders[0]->mode = DecodeMode::kSlowStream;
  LeavingClient client(rig.port(), "/v1/completions", completion(true));
  ASSERT_TRUE(client.wait_for_answer_start());
  client.leave();
  Clock::time_point left = Clock::now();
  expect_both_told(rig, prefill_id(rig), left);
  EXPECT_TRUE(eventually([&] { return rig.decoders[0]->upstream_closed.load(); }));
}

TEST(ClientAbort, WhileDecodingAWholeAnswerReachesBothEngines) {
  ProxyRig rig(1, 1);
  rig.decoders[0]->mode = DecodeMode::kStall;  // answers after 3 s
  LeavingClient client(rig.port(), "/v1/completions", completion(false));
  ASSERT_TRUE(eventually([&] { return !rig.decoders[0]->received().empty(); }));
  client.leave();
  expect_both_told(rig, prefill_id(rig), Clock::now());
}

TEST(ClientAbort, AfterTheDoneEventIsNoErrorAndAbortsNothing) {
  ProxyRig rig(1, 1);
  rig.decoders[0]->mode = DecodeMode::kLingerAfterDone;
  LeavingClient client(rig.port(), "/v1/completions", completion(true));
  ASSERT_TRUE(client.read_until("data: [DONE]"));
  client.leave();
  std::this_thread::sleep_for(1500ms);  // the decoder's stream has ended
  std::string id = prefill_id(rig);
  ASSERT_FALSE(id.empty());
  EXPECT_FALSE(rig.prefillers[0]->aborts.when(id).has_value());
  EXPECT_FALSE(rig.decoders[0]->aborts.when(id).has_value());
  RawReply metrics = raw_request(rig.port(), "GET", "/metrics", "");
  EXPECT_NE(metrics.body.find("tandem:proxy_requests_total{endpoint=\"/v1/completions\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_EQ(metrics.body.find("client_disconnected"), std::string::npos) << metrics.body;
}

}  // namespace
}  // namespace tandem::test
