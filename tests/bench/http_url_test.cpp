// HttpUrl: host, port and target of http:// URLs; clear errors for the rest.
#include "bench/http_url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem::bench {
namespace {

TEST(HttpUrl, ParsesHostPortAndTarget) {
  HttpUrl u = parse_http_url("http://127.0.0.1:9100/v1/completions");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, "9100");
  EXPECT_EQ(u.target, "/v1/completions");
  EXPECT_EQ(u.str(), "http://127.0.0.1:9100/v1/completions");
  u = parse_http_url("http://example.com");
  EXPECT_EQ(u.port, "80");
  EXPECT_EQ(u.target, "/");
  u = parse_http_url("http://[::1]:8000/x");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.host_header(), "[::1]:8000");
}

TEST(HttpUrl, RejectsWhatItCannotConnectTo) {
  EXPECT_THROW((void)parse_http_url("https://a:1/"), Error);
  EXPECT_THROW((void)parse_http_url("ftp://a/"), Error);
  EXPECT_THROW((void)parse_http_url("http://:80/"), Error);
  EXPECT_THROW((void)parse_http_url("http://a:99999/"), Error);
  EXPECT_THROW((void)parse_http_url("http://a:8x/"), Error);
}

}  // namespace
}  // namespace tandem::bench
