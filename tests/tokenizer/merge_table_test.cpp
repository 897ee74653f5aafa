// The merge table against std::map on the same inserts: lookups of present and absent pairs,
// later duplicates replacing earlier rules, growth from empty through many rehashes, and pairs
// that differ only in which side an id is on.
#include "tokenizer/merge_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace tandem::tokenizer {
namespace {

TEST(MergeTable, FindsWhatStdMapFinds) {
  MergeTable table;
  std::map<std::pair<int, int>, MergeTable::Rule> want;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> id(0, 3000);
  for (int rank = 0; rank < 50000; ++rank) {  // ~20% of pairs come again
    const int left = id(rng), right = id(rng), merged = id(rng);
    table.insert_or_assign(left, right, {rank, merged});
    want[{left, right}] = {rank, merged};
  }
  EXPECT_EQ(table.size(), want.size());
  for (const auto& [pair, rule] : want) {
    const MergeTable::Rule* got = table.find(pair.first, pair.second);
    ASSERT_NE(got, nullptr) << pair.first << " " << pair.second;
    EXPECT_EQ(got->rank, rule.rank);
    EXPECT_EQ(got->new_id, rule.new_id);
  }
  int absent = 0;
  for (int i = 0; i < 20000; ++i) {
    const int left = id(rng), right = id(rng);
    const bool present = want.count({left, right}) > 0;
    EXPECT_EQ(table.find(left, right) != nullptr, present);
    absent += !present;
  }
  EXPECT_GT(absent, 1000);
}

TEST(MergeTable, KeepsSidesApartAndStartsEmpty) {
  MergeTable table;
  EXPECT_EQ(table.find(1, 2), nullptr);
  table.reserve(4);
  EXPECT_EQ(table.find(1, 2), nullptr);
  table.insert_or_assign(1, 2, {0, 10});
  table.insert_or_assign(2, 1, {1, 11});
  table.insert_or_assign(0, 0, {2, 12});
  ASSERT_NE(table.find(1, 2), nullptr);
  EXPECT_EQ(table.find(1, 2)->new_id, 10);
  EXPECT_EQ(table.find(2, 1)->new_id, 11);
  EXPECT_EQ(table.find(0, 0)->new_id, 12);
  EXPECT_EQ(table.find(1, 1), nullptr);
  table.insert_or_assign(1, 2, {3, 13});  // a later duplicate wins
  EXPECT_EQ(table.find(1, 2)->rank, 3);
  EXPECT_EQ(table.size(), 3u);
}

}  // namespace
}  // namespace tandem::tokenizer
