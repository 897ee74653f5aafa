// The SSE parser: events split across arbitrary byte pieces, CRLF / CR line ends, comments,
// multi-line data, fields other than data, and an unterminated last event.
#include "bench/sse_parser.h"

#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

using Events = std::vector<std::string>;

TEST(SseParser, EventsSplitAcrossPiecesComeOutWhole) {
  const std::string stream = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    SseParser p;
    Events all;
    for (size_t i = 0; i < stream.size(); i += piece) {
      for (auto& e : p.feed(std::string_view(stream).substr(i, piece))) all.push_back(e);
    }
    EXPECT_EQ(all, (Events{"{\"a\":1}", "{\"b\":2}", "[DONE]"})) << "piece " << piece;
    EXPECT_TRUE(p.finish().empty());
  }
}

TEST(SseParser, LineEndsCommentsAndFields) {
  SseParser p;
  EXPECT_EQ(p.feed(": ping\r\n\r\nevent: x\r\ndata:first\r\ndata: second\r\nid: 7\r\n\r\n"),
            (Events{"first\nsecond"}));
  EXPECT_EQ(p.feed("data: cr\r\rdata: lf\n\n"), (Events{"cr", "lf"}));
  EXPECT_EQ(p.feed("data\n\n"), (Events{""}));  // a bare "data" field is empty data
}

TEST(SseParser, FinishFlushesAnUnterminatedEvent) {
  SseParser p;
  EXPECT_TRUE(p.feed("data: {\"x\":1}").empty());
  EXPECT_EQ(p.finish(), (Events{"{\"x\":1}"}));
  EXPECT_TRUE(p.finish().empty());
}

}  // namespace
}  // namespace tandem::bench
