#include "transport/tcp/crc32c.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace shardlm {
namespace tcp {
namespace {

uint32_t Crc(const std::string& s) {
  return Crc32c(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// Bit-at-a-time reference.
uint32_t Reference(const std::vector<uint8_t>& data) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : data) {
    c ^= b;
    for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc(""), 0u);
  EXPECT_EQ(Crc("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc("a"), 0xC1D04330u);
  // RFC 3720 (iSCSI) appendix B.4.
  EXPECT_EQ(Crc(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, MatchesBitwiseReferenceAndExtends) {
  std::mt19937 rng(7);
  for (int len = 0; len < 300; len += 7) {
    std::vector<uint8_t> data(len);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    const uint32_t whole = Crc32c(data);
    EXPECT_EQ(whole, Reference(data)) << "len " << len;
    const size_t cut = len / 3;
    const uint32_t part = Crc32cExtend(Crc32cExtend(0, data.data(), cut), data.data() + cut,
                                       data.size() - cut);
    EXPECT_EQ(part, whole) << "len " << len;
  }
}

}  // namespace
}  // namespace tcp
}  // namespace shardlm
