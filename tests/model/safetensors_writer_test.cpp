// Tests of write_safetensors and the streaming SafetensorsWriter against the safetensors spec:
// header length and padding, __metadata__, contiguous offsets, data order, contents, errors.
#include "model/safetensors_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <tuple>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/safetensors.h"
#include "parsed_safetensors.h"

namespace tandem {
namespace {

using test::parse_safetensors;
using ::testing::HasSubstr;

std::vector<uint8_t> iota_bytes(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

class SafetensorsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("tandem-st-writer"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(SafetensorsWriterTest, FollowsTheSpec) {
  std::vector<TensorToWrite> tensors = {
      {"b.half", DType::kBF16, {3}, iota_bytes(6, 10)},
      {"a.float", DType::kF32, {2, 3}, iota_bytes(24, 100)},
      {"c.scalar", DType::kF16, {}, iota_bytes(2, 200)},
      {"d.empty", DType::kF32, {0, 5}, {}},
  };
  auto path = dir_ / "t.safetensors";
  write_safetensors(path, tensors);
  auto st = parse_safetensors(path);

  EXPECT_EQ((8 + st.header_length) % 8, 0u);
  std::string trimmed = st.header_text.substr(0, st.header_text.find_last_not_of(' ') + 1);
  EXPECT_EQ(trimmed.back(), '}');  // only spaces pad the JSON
  EXPECT_EQ(st.header.at("__metadata__"), nlohmann::json({{"format", "pt"}}));
  EXPECT_EQ(st.header.size(), tensors.size() + 1);

  // Data order: f32 tensors first (alignment), then by name; offsets contiguous from 0.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> order;  // (begin, end, name)
  for (const auto& t : tensors) {
    const auto& entry = st.header.at(t.name);
    EXPECT_EQ(entry.at("dtype"), std::string(dtype_name(t.dtype))) << t.name;
    EXPECT_EQ(entry.at("shape").get<std::vector<int64_t>>(), t.shape) << t.name;
    uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    EXPECT_EQ(end - begin, t.bytes.size()) << t.name;
    order.push_back({begin, end, t.name});
    std::string got = st.bytes(t.name);
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), t.bytes) << t.name;
  }
  std::sort(order.begin(), order.end());
  EXPECT_EQ(std::get<2>(order[0]), "a.float");
  EXPECT_EQ(std::get<2>(order[1]), "d.empty");
  EXPECT_EQ(std::get<2>(order[2]), "b.half");
  EXPECT_EQ(std::get<2>(order[3]), "c.scalar");
  EXPECT_EQ(std::get<0>(order[0]), 0u);
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_EQ(std::get<0>(order[i]), std::get<1>(order[i - 1])) << "hole before " << i;
  }
  EXPECT_EQ(st.raw.size(), 8 + st.header_length + 24 + 6 + 2);
  EXPECT_EQ(safetensors_file_size({{"b.half", DType::kBF16, {3}},
                                   {"a.float", DType::kF32, {2, 3}},
                                   {"c.scalar", DType::kF16, {}},
                                   {"d.empty", DType::kF32, {0, 5}}}),
            st.raw.size());
}

TEST_F(SafetensorsWriterTest, StreamsChunksFromManyThreads) {
  const int64_t n = 100003;  // f32 elements of the big tensor
  std::vector<float> expected(n);
  for (int64_t i = 0; i < n; ++i) expected[i] = float(i) * 0.5f - 7.0f;
  auto path = dir_ / "big.safetensors";
  SafetensorsWriter writer(path, {{"big", DType::kF32, {n}}, {"small", DType::kBF16, {2, 2}}});
  ThreadPool pool(3);
  const size_t chunk = 1000;  // elements per write
  pool.parallel_for((n + chunk - 1) / chunk, [&](size_t b, size_t e) {
    for (size_t c = b; c < e; ++c) {
      size_t first = c * chunk, count = std::min<size_t>(chunk, n - first);
      writer.write(0, first * 4, &expected[first], count * 4);
    }
  });
  uint16_t small[4] = {1, 2, 3, 4};
  writer.write(1, 4, small + 2, 4);  // the second half first
  writer.write(1, 0, small, 4);
  writer.finish();

  auto st = parse_safetensors(path);
  EXPECT_EQ(st.values("big"), expected);
  std::string got = st.bytes("small");
  EXPECT_EQ(std::memcmp(got.data(), small, 8), 0);
  EXPECT_EQ(st.raw.size(), writer.file_size());
}

TEST_F(SafetensorsWriterTest, RejectsBadDeclarations) {
  auto path = dir_ / "bad.safetensors";
  auto expect_error = [&](std::vector<TensorDecl> decls, const std::string& message) {
    try {
      SafetensorsWriter writer(path, decls);
      ADD_FAILURE() << "no error for " << message;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(message));
      EXPECT_THAT(e.what(), HasSubstr(path.string()));
    }
    EXPECT_FALSE(std::filesystem::exists(path));
  };
  expect_error({{"x", DType::kF32, {2}}, {"x", DType::kF32, {3}}}, "duplicate tensor 'x'");
  expect_error({{"", DType::kF32, {2}}}, "empty tensor name");
  expect_error({{"__metadata__", DType::kF32, {2}}}, "'__metadata__' is not a tensor name");
  expect_error({{"neg", DType::kF32, {2, -1}}}, "tensor 'neg' has a negative dimension -1");
  expect_error({{"huge", DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}}},
               "tensor 'huge' is too large");
}

TEST_F(SafetensorsWriterTest, RejectsBadWritesAndIncompleteTensors) {
  auto path = dir_ / "partial.safetensors";
  {
    SafetensorsWriter writer(path, {{"w", DType::kF32, {4}}});
    float v[4] = {1, 2, 3, 4};
    EXPECT_THAT([&] { writer.write(0, 8, v, 12); },
                ::testing::ThrowsMessage<Error>(HasSubstr("outside tensor 'w' (16 bytes)")));
    EXPECT_THAT([&] { writer.write(1, 0, v, 4); },
                ::testing::ThrowsMessage<Error>(HasSubstr("tensor index 1 out of range")));
    writer.write(0, 0, v, 12);
    EXPECT_THAT([&] { writer.finish(); },
                ::testing::ThrowsMessage<Error>(HasSubstr("tensor 'w' got 12 of its 16 bytes")));
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // an unfinished file does not survive
}

TEST_F(SafetensorsWriterTest, WriteSafetensorsChecksByteCounts) {
  auto path = dir_ / "count.safetensors";
  EXPECT_THAT(
      [&] {
        write_safetensors(path, {{"w", DType::kBF16, {3}, iota_bytes(4, 0)}});
      },
      ::testing::ThrowsMessage<Error>(
          HasSubstr("tensor 'w' has 4 bytes, its shape and dtype need 6")));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(SafetensorsWriterTest, UnwritablePathNamesTheFile) {
  auto path = dir_ / "no-such-dir" / "x.safetensors";
  EXPECT_THAT(
      [&] {
        write_safetensors(path, {{"w", DType::kF32, {1}, iota_bytes(4, 0)}});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr(path.string() + ": cannot create file")));
}

}  // namespace
}  // namespace tandem
