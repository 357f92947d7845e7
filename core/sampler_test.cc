#include "core/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm {
namespace {

TEST(SamplerTest, GreedyPicksLargestLowestIdOnTies) {
  Sampler s({0.0, 1.0, 1});
  EXPECT_EQ(s.Sample(std::vector<float>{1, 3, 2}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{5, 1, 5}), 0);
  EXPECT_EQ(Argmax(std::vector<float>{NAN, -1, 2}), 2);
}

TEST(SamplerTest, SameSeedSameTokens) {
  std::vector<float> logits = {0.1f, 0.5f, 0.2f, 1.0f, -0.3f, 0.0f};
  Sampler a({1.0, 1.0, 123}), b({1.0, 1.0, 123}), c({1.0, 1.0, 124});
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(a.Sample(logits));
    tb.push_back(b.Sample(logits));
    tc.push_back(c.Sample(logits));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(SamplerTest, FrequenciesFollowSoftmax) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f)};  // probs 1/6, 2/6, 3/6
  Sampler s({1.0, 1.0, 7});
  std::map<int32_t, int> counts;
  const int n = 60000;
  for (int i = 0; i < n; ++i) counts[s.Sample(logits)]++;
  EXPECT_NEAR(counts[0] / double(n), 1.0 / 6, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 2.0 / 6, 0.01);
  EXPECT_NEAR(counts[2] / double(n), 3.0 / 6, 0.01);
}

TEST(SamplerTest, TopPCutsTheTail) {
  // probs ~ 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps ids 0 and 1 only.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  Sampler s({1.0, 0.7, 9});
  for (int i = 0; i < 5000; ++i) {
    const int32_t t = s.Sample(logits);
    EXPECT_TRUE(t == 0 || t == 1) << t;
  }
}

TEST(SamplerTest, LowTemperatureIsNearlyGreedy) {
  std::vector<float> logits = {1.0f, 2.0f, 1.5f};
  Sampler s({0.01, 1.0, 3});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(s.Sample(logits), 1);
}

TEST(SamplerTest, TopKCutsToTheMostLikely) {
  // Nearly flat logits: without a cut every id would show up.
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = 0.01f * i;
  Sampler s({1.0, 1.0, 11, 5});
  std::map<int32_t, int> counts;
  for (int i = 0; i < 5000; ++i) counts[s.Sample(logits)]++;
  ASSERT_EQ(counts.size(), 5u);
  EXPECT_EQ(counts.begin()->first, 95);
}

TEST(SamplerTest, TopKZeroKeepsEveryToken) {
  std::vector<float> logits(60, 0.0f);
  Sampler s({1.0, 1.0, 13, 0});
  std::map<int32_t, int> counts;
  for (int i = 0; i < 20000; ++i) counts[s.Sample(logits)]++;
  EXPECT_EQ(counts.size(), 60u);
}

TEST(SamplerTest, TopCandidatesOrderTiesAndNan) {
  const std::vector<float> logits = {1.0f, NAN, 3.0f, 1.0f, 2.0f};
  const std::vector<Candidate> top = TopCandidates(logits, 0, 10);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0].id, 12);
  EXPECT_EQ(top[1].id, 14);
  EXPECT_EQ(top[2].id, 10);  // tie with 13: lowest id first
  EXPECT_EQ(top[3].id, 13);
  EXPECT_EQ(top[4].id, 11);  // NaN last
  EXPECT_EQ(TopCandidates(logits, 2).size(), 2u);
}

TEST(SamplerTest, SampleCandidatesEqualsSampleOnSplitLogits) {
  // Logits split in three vocabulary slices, as ranks hold them; each slice
  // proposes its top-k, the merge must give the same draws as full logits.
  uint64_t state = 5;
  std::vector<float> logits(300);
  for (float& l : logits) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    l = static_cast<float>((state >> 40) % 1000) / 200.0f;  // many ties
  }
  for (int top_k : {0, 1, 7, 40, 300}) {
    const SamplerOptions o{0.9, 0.95, 7, top_k};
    Sampler full(o), split(o);
    const int64_t bounds[] = {0, 90, 170, 300};
    std::vector<std::vector<Candidate>> lists;
    for (int r = 0; r < 3; ++r) {
      absl::Span<const float> slice(logits.data() + bounds[r], bounds[r + 1] - bounds[r]);
      lists.push_back(TopCandidates(slice, top_k, static_cast<int32_t>(bounds[r])));
    }
    const std::vector<Candidate> merged = MergeCandidates(lists, top_k);
    for (int i = 0; i < 500; ++i) {
      ASSERT_EQ(full.Sample(logits), split.SampleCandidates(merged)) << "top_k " << top_k;
    }
  }
}

TEST(SamplerTest, RejectsBadOptions) {
  EXPECT_FALSE(ValidateSamplerOptions({1.0, 0.9, 1, -1}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({-1.0, 0.9, 1}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({NAN, 0.9, 1}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({1.0, 0.0, 1}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({1.0, 1.5, 1}).ok());
  EXPECT_TRUE(ValidateSamplerOptions({0.0, 1.0, 1}).ok());
}

}  // namespace
}  // namespace shardlm
