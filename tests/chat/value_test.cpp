// Value basics: Python float repr, str()/repr() of containers, equality across kinds, and
// JSON -> Value conversion (key order kept, depth bounded).
#include "chat/value.h"

#include <string>

#include <gtest/gtest.h>

#include "chat/template_error.h"

namespace tandem::chat {
namespace {

TEST(ChatValue, FloatReprMatchesPython) {
  // Expected strings are Python's repr() of the same doubles.
  const std::pair<double, const char*> cases[] = {
      {0.1, "0.1"},
      {1.0 / 3, "0.3333333333333333"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {1.5e-5, "1.5e-05"},
      {0.0001, "0.0001"},
      {-0.0, "-0.0"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {100.0, "100.0"},
      {1e22, "1e+22"},
      {12345.678, "12345.678"},
  };
  for (const auto& [d, expected] : cases) EXPECT_EQ(format_python_float(d), expected) << d;
  EXPECT_EQ(format_python_float(1.0 / 0.0), "inf");
  EXPECT_EQ(format_python_float(-1.0 / 0.0), "-inf");
}

TEST(ChatValue, StrAndReprOfContainers) {
  const Value v = Value::from_json(
      nlohmann::ordered_json::parse(R"([1, "it's", null, true, 2.0, {"k": ["a\nb"]}])"));
  EXPECT_EQ(to_python_str(v), R"([1, "it's", None, True, 2.0, {'k': ['a\nb']}])");
  EXPECT_EQ(python_repr(Value::tuple({Value::integer(1)})), "(1,)");
  EXPECT_EQ(to_python_str(Value()), "");
  EXPECT_EQ(python_repr(Value::string("a'b\"c")), R"('a\'b"c')");
}

TEST(ChatValue, EqualityFollowsPython) {
  EXPECT_TRUE(values_equal(Value::integer(1), Value::floating(1.0)));
  EXPECT_TRUE(values_equal(Value::boolean(true), Value::integer(1)));
  EXPECT_FALSE(values_equal(Value::string("1"), Value::integer(1)));
  EXPECT_FALSE(values_equal(Value::list({Value::integer(1)}), Value::tuple({Value::integer(1)})));
  EXPECT_TRUE(values_equal(Value(), Value()));
  EXPECT_FALSE(values_equal(Value(), Value::none()));
  const auto a = Value::from_json(nlohmann::ordered_json::parse(R"({"x": 1, "y": [2]})"));
  const auto b = Value::from_json(nlohmann::ordered_json::parse(R"({"y": [2], "x": 1})"));
  EXPECT_TRUE(values_equal(a, b));
}

TEST(ChatValue, JsonKeepsKeyOrderAndTypes) {
  const auto v = Value::from_json(nlohmann::ordered_json::parse(
      R"({"z": 1, "a": 2.5, "m": "s", "big": 18446744073709551615})"));
  ASSERT_TRUE(v.is_dict());
  const auto& entries = v.as_dict().entries();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].first.as_string(), "z");
  EXPECT_EQ(entries[1].first.as_string(), "a");
  EXPECT_TRUE(entries[0].second.is_int());
  EXPECT_TRUE(entries[1].second.is_float());
  EXPECT_TRUE(entries[3].second.is_float());  // beyond int64: kept as a float
}

TEST(ChatValue, DictLookupWithManyKeys) {
  Dict d;
  for (int i = 0; i < 100; ++i) d.set(Value::string(fmt::format("k{}", i)), Value::integer(i));
  d.set(Value::string("k7"), Value::integer(-7));  // replaces in place
  ASSERT_EQ(d.size(), 100u);
  EXPECT_EQ(d.find("k7")->as_int(), -7);
  EXPECT_EQ(d.entries()[7].second.as_int(), -7);
  EXPECT_EQ(d.find("k99")->as_int(), 99);
  EXPECT_EQ(d.find("nope"), nullptr);
  EXPECT_EQ(d.find(Value::integer(3)), nullptr);
}

TEST(ChatValue, DeepJsonIsRejected) {
  std::string deep(kMaxValueDepth + 10, '[');
  deep += std::string(kMaxValueDepth + 10, ']');
  EXPECT_THROW((void)Value::from_json(nlohmann::ordered_json::parse(deep)), TemplateError);
}

}  // namespace
}  // namespace tandem::chat
