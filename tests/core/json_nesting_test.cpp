// json_nesting_depth: objects and arrays count, brackets in strings (escaped quotes included)
// do not, and counting stops past the limit.
#include "core/json_nesting.h"

#include <gtest/gtest.h>

#include <string>

namespace tandem {
namespace {

TEST(JsonNesting, CountsObjectsAndArraysOutsideStrings) {
  EXPECT_EQ(json_nesting_depth(""), 0u);
  EXPECT_EQ(json_nesting_depth("12"), 0u);
  EXPECT_EQ(json_nesting_depth("{}"), 1u);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": []}], "c": {}})"), 4u);
  EXPECT_EQ(json_nesting_depth(R"({"a": "[[[[{{{{"})"), 1u);
  EXPECT_EQ(json_nesting_depth(R"({"a": "\"[[[", "b": [[]]})"), 3u);
  EXPECT_EQ(json_nesting_depth(R"({"a": "\\", "b": [[]]})"), 3u);
  EXPECT_EQ(json_nesting_depth("]]]]{"), 1u);  // invalid JSON still gets a number
}

TEST(JsonNesting, StopsPastTheLimit) {
  std::string deep(10'000'000, '[');
  EXPECT_EQ(json_nesting_depth(deep), kMaxJsonNesting + 1);
  EXPECT_EQ(json_nesting_depth(deep, 5), 6u);
  EXPECT_EQ(json_nesting_depth(std::string(kMaxJsonNesting, '[')), kMaxJsonNesting);
}

}  // namespace
}  // namespace tandem
