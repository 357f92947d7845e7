#include "core/weight_cache.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm {
namespace {

std::vector<std::pair<uint64_t, uint64_t>> Pairs(const std::vector<ByteRange>& rs) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const ByteRange& r : rs) out.push_back({r.offset, r.size});
  return out;
}

using PairList = std::vector<std::pair<uint64_t, uint64_t>>;

TEST(ByteRangeSetTest, MergesOverlappingAndTouchingRanges) {
  ByteRangeSet s({{10, 5}, {30, 10}, {15, 5}, {0, 0}, {35, 10}, {100, 1}});
  EXPECT_EQ(Pairs(s.ranges()), (PairList{{10, 10}, {30, 15}, {100, 1}}));
  EXPECT_EQ(s.bytes(), 26u);
}

TEST(ByteRangeSetTest, MissingKeepsTheOrderOfTheQuery) {
  const ByteRangeSet s({{10, 10}, {30, 10}});
  EXPECT_EQ(Pairs(s.Missing({{50, 5}, {0, 45}, {12, 3}})),
            (PairList{{50, 5}, {0, 10}, {20, 10}, {40, 5}}));
  EXPECT_TRUE(s.Missing({{31, 4}}).empty());
  EXPECT_EQ(Pairs(ByteRangeSet().Missing({{7, 3}})), (PairList{{7, 3}}));
}

TEST(ByteRangeSetTest, AgreesWithABitmapOnRandomRanges) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::vector<bool> held(256, false), asked(256, false);
    std::vector<ByteRange> add, query;
    for (int i = 0; i < 6; ++i) {
      const uint64_t a = rng() % 250, n = rng() % 20;
      add.push_back({a, std::min<uint64_t>(n, 256 - a)});
      const uint64_t b = rng() % 250, m = rng() % 20;
      query.push_back({b, std::min<uint64_t>(m, 256 - b)});
    }
    for (const ByteRange& r : add) {
      for (uint64_t i = r.offset; i < r.offset + r.size; ++i) held[i] = true;
    }
    const ByteRangeSet s(add);
    std::vector<bool> missing(256, false);
    for (const ByteRange& r : s.Missing(query)) {
      for (uint64_t i = r.offset; i < r.offset + r.size; ++i) missing[i] = true;
    }
    for (const ByteRange& r : query) {
      for (uint64_t i = r.offset; i < r.offset + r.size; ++i) asked[i] = true;
    }
    uint64_t count = 0;
    for (int i = 0; i < 256; ++i) {
      ASSERT_EQ(missing[i], asked[i] && !held[i]) << "round " << round << " byte " << i;
      count += held[i];
    }
    EXPECT_EQ(s.bytes(), count);
    const ByteRangeSet rest = s.Minus(ByteRangeSet(query));
    for (const ByteRange& r : rest.ranges()) {
      for (uint64_t i = r.offset; i < r.offset + r.size; ++i) {
        ASSERT_TRUE(held[i] && !asked[i]);
      }
    }
  }
}

}  // namespace
}  // namespace shardlm
