#include "core/sha256.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace shardlm {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Sha256Test, KnownVectors) {
  Sha256 empty;
  EXPECT_EQ(HexDigest(empty.Finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.Update(Bytes("a"));
  abc.Update(Bytes("bc"));  // incremental == one piece
  EXPECT_EQ(HexDigest(abc.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileMatchesInMemoryAndReportsProgress) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/data.bin";
  std::string data(5 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + (i >> 12));
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  std::fclose(f);
  uint64_t last_done = 0, last_total = 0;
  auto digest = Sha256File(path, [&](uint64_t done, uint64_t total) {
    EXPECT_GT(done, last_done);
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(digest.ok()) << digest.status();
  Sha256 mem;
  mem.Update(Bytes(data));
  EXPECT_EQ(*digest, mem.Finish());
  EXPECT_EQ(last_done, data.size());
  EXPECT_EQ(last_total, data.size());
  auto missing = Sha256File(path + ".absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(".absent"), std::string::npos);
}

}  // namespace
}  // namespace shardlm
