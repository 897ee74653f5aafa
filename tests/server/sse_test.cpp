// SSE framing and the incremental parser (events split across reads, CRLF, comments, [DONE]).
#include "server/sse.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem {
namespace {

TEST(Sse, FramesOneEventPerPayload) {
  EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  EXPECT_THROW((void)sse_event("two\nlines"), Error);
}

TEST(Sse, ParserReassemblesEventsSplitAcrossReads) {
  std::string body = sse_event("{\"x\":1}") + ": keep-alive comment\n\n" + sse_event("[2]") +
                     std::string(kSseDone);
  for (size_t split = 0; split <= body.size(); ++split) {
    SseParser parser;
    auto events = parser.feed(body.substr(0, split));
    auto rest = parser.feed(body.substr(split));
    events.insert(events.end(), rest.begin(), rest.end());
    ASSERT_EQ(events.size(), 3u) << "split at " << split;
    EXPECT_EQ(events[0], "{\"x\":1}");
    EXPECT_EQ(events[1], "[2]");
    EXPECT_EQ(events[2], "[DONE]");
    EXPECT_FALSE(parser.has_partial_event());
  }
}

TEST(Sse, ParserHandlesCrlfAndMultiLineData) {
  SseParser parser;
  auto events = parser.feed("data: a\r\ndata:b\r\n\r\ndata: c");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "a\nb");
  EXPECT_TRUE(parser.has_partial_event());
}

}  // namespace
}  // namespace tandem
