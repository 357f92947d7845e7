#include "backends/cpu/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm::cpu {
namespace {

// The definition AttendHead promises to match bit for bit.
void ReferenceAttend(const float* q, const float* k, const float* v, int64_t stride, int64_t len,
                     int64_t hd, float scale, float* out) {
  std::vector<float> scores(len);
  float max = -INFINITY;
  for (int64_t t = 0; t < len; ++t) {
    scores[t] = DotF32(q, k + t * stride, hd) * scale;
    max = std::max(max, scores[t]);
  }
  float sum = 0.0f;
  for (int64_t t = 0; t < len; ++t) {
    scores[t] = std::exp(scores[t] - max);
    sum += scores[t];
  }
  std::fill(out, out + hd, 0.0f);
  const float inv = 1.0f / sum;
  for (int64_t t = 0; t < len; ++t) Axpy(scores[t] * inv, v + t * stride, out, hd);
}

TEST(AttendHeadTest, MatchesDefinitionBitForBit) {
  uint32_t s = 12345;
  const auto rand = [&s] {
    s = s * 1103515245u + 12345u;
    return static_cast<float>((s >> 8) & 0xffff) / 16384.0f - 2.0f;
  };
  for (int64_t hd : {4, 8, 24, 64, 128}) {
    for (int64_t len : {1, 3, 4, 7, 64, 131}) {
      const int64_t stride = 3 * hd;  // K/V heads of a wider cache row
      std::vector<float> q(hd), k(len * stride), v(len * stride);
      for (float& f : q) f = 3.0f * rand();
      for (float& f : k) f = rand();
      for (float& f : v) f = rand();
      std::vector<float> want(hd), got(hd), scores(len);
      ReferenceAttend(q.data(), k.data() + hd, v.data() + hd, stride, len, hd, 0.125f,
                      want.data());
      AttendHead(q.data(), k.data() + hd, v.data() + hd, stride, len, hd, 0.125f, scores.data(),
                 got.data());
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), hd * sizeof(float)))
          << "hd " << hd << " len " << len;
    }
  }
}

}  // namespace
}  // namespace shardlm::cpu
