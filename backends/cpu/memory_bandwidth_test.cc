#include "backends/cpu/memory_bandwidth.h"

#include "gtest/gtest.h"

namespace shardlm {
namespace {

TEST(MemoryBandwidthTest, MeasuresAPositiveRate) {
  for (int threads : {1, 2, 3}) {
    auto gbps = MeasureReadBandwidth(threads, size_t{64} << 20);
    ASSERT_TRUE(gbps.ok()) << gbps.status();
    EXPECT_GT(*gbps, 0.1) << threads << " threads";
    EXPECT_LT(*gbps, 100000.0) << threads << " threads";
  }
}

TEST(MemoryBandwidthTest, OddSizesAndDefaultThreads) {
  auto gbps = MeasureReadBandwidth(0, (size_t{3} << 20) + 17);
  ASSERT_TRUE(gbps.ok()) << gbps.status();
  EXPECT_GT(*gbps, 0.1);
}

TEST(MemoryBandwidthTest, AProbeMeasuresRepeatedly) {
  auto probe = ReadBandwidthProbe::Create(2, (size_t{8} << 20) + 100);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ((*probe)->threads(), 2);
  EXPECT_EQ((*probe)->bytes() % 128, 0u);  // whole 64-byte steps per thread
  for (int i = 0; i < 3; ++i) {
    auto gbps = (*probe)->Measure(1);
    ASSERT_TRUE(gbps.ok()) << gbps.status();
    EXPECT_GT(*gbps, 0.1);
  }
  EXPECT_EQ((*probe)->Measure(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MemoryBandwidthTest, RejectsBadArguments) {
  EXPECT_EQ(MeasureReadBandwidth(-1, size_t{8} << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MeasureReadBandwidth(1, 4096).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadBandwidthProbe::Create(-2).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shardlm
