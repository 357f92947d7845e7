#include "transport/tcp/frame.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace tcp {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

TEST(FrameTest, RoundTrip) {
  const std::vector<uint8_t> payload = Bytes("hello, shard");
  const std::vector<uint8_t> bytes = EncodeFrame(kFrameData, 0xABCD1234u, payload);
  ASSERT_EQ(bytes.size(), kFrameHeaderSize + payload.size());
  // Little-endian magic "SLMF" and version 1.
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "SLMF");
  EXPECT_EQ(bytes[4], 1);
  EXPECT_EQ(bytes[5], 0);
  absl::StatusOr<Frame> f = DecodeFrame(bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, kFrameData);
  EXPECT_EQ(f->tag, 0xABCD1234u);
  EXPECT_EQ(f->payload, payload);
}

TEST(FrameTest, EmptyPayloadRoundTrip) {
  absl::StatusOr<Frame> f = DecodeFrame(EncodeFrame(kFrameAuth, 7, {}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->tag, 7u);
  EXPECT_TRUE(f->payload.empty());
}

TEST(FrameTest, BadMagicRejected) {
  std::vector<uint8_t> bytes = EncodeFrame(kFrameData, 1, Bytes("x"));
  bytes[0] = 'G';
  absl::StatusOr<Frame> f = DecodeFrame(bytes);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("not a shardlm peer (bad magic)"));
}

TEST(FrameTest, BadVersionRejected) {
  std::vector<uint8_t> bytes = EncodeFrame(kFrameData, 1, Bytes("x"));
  bytes[4] = 2;
  absl::StatusOr<Frame> f = DecodeFrame(bytes);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("protocol version 2, expected 1"));
}

TEST(FrameTest, BadChecksumRejected) {
  std::vector<uint8_t> bytes = EncodeFrame(kFrameData, 1, Bytes("payload"));
  bytes.back() ^= 0x01;
  absl::StatusOr<Frame> f = DecodeFrame(bytes);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("frame checksum mismatch"));
}

TEST(FrameTest, OversizedFrameRejected) {
  const std::vector<uint8_t> bytes = EncodeFrame(kFrameData, 1, std::vector<uint8_t>(17, 0));
  absl::StatusOr<Frame> f = DecodeFrame(bytes, /*max_frame_size=*/16);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr("frame of 17 bytes exceeds the maximum 16"));
  EXPECT_TRUE(DecodeFrame(bytes, 17).ok());
}

TEST(FrameTest, HugeLengthRejectedByDefaultMaximum) {
  std::vector<uint8_t> header = EncodeFrame(kFrameData, 1, {});
  for (int i = 12; i < 16; ++i) header[i] = 0xFF;
  absl::StatusOr<FrameHeader> h = DecodeFrameHeader(header);
  EXPECT_THAT(std::string(h.status().message()),
              HasSubstr("frame of 4294967295 bytes exceeds the maximum 268435456"));
}

TEST(FrameTest, TruncatedHeaderRejected) {
  const std::vector<uint8_t> bytes = EncodeFrame(kFrameData, 1, {});
  EXPECT_FALSE(DecodeFrameHeader(absl::MakeConstSpan(bytes).subspan(0, 10)).ok());
}

}  // namespace
}  // namespace tcp
}  // namespace shardlm
