#include "core/safetensors.h"

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

// A file from a literal JSON header and `data` bytes.
std::string Raw(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string Error(const std::string& bytes) {
  auto file = SafetensorsFile::FromBytes(bytes, "t.safetensors");
  EXPECT_FALSE(file.ok());
  return file.ok() ? "" : std::string(file.status().message());
}

TEST(SafetensorsTest, RoundTripsEncodedTensorsAndMetadata) {
  std::string a(6 * 4, '\0'), b(3 * 2, '\0');
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>(i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(100 + i);
  const std::string bytes =
      EncodeSafetensors({{"w", "F32", {2, 3}, a}, {"n", "BF16", {3}, b}, {"e", "F16", {0, 4}, ""}},
                        {{"format", "pt"}});
  auto file = SafetensorsFile::FromBytes(bytes, "t.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 3u);
  const SafetensorsTensor* w = (*file)->Find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, "F32");
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w->num_elements(), 6);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(w->data), w->size), a);
  const SafetensorsTensor* n = (*file)->Find("n");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(n->data), n->size), b);
  EXPECT_EQ((*file)->Find("e")->size, 0u);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
}

TEST(SafetensorsTest, OpensAFileFromDisk) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/m.safetensors";
  FILE* f = fopen(path.c_str(), "wb");
  const std::string bytes = EncodeSafetensors({{"x", "I64", {2}, std::string(16, '\1')}});
  fwrite(bytes.data(), 1, bytes.size(), f);
  fclose(f);
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("x")->size, 16u);
  EXPECT_THAT(std::string(SafetensorsFile::Open(path + ".nope").status().message()),
              HasSubstr("cannot open safetensors file"));
}

TEST(SafetensorsTest, RejectsBadFraming) {
  EXPECT_THAT(Error("abc"), HasSubstr("too short"));
  std::string huge(8, '\xff');
  EXPECT_THAT(Error(huge + "{}"), HasSubstr("header length"));
  EXPECT_THAT(Error(Raw("{}", "") .substr(0, 9)), HasSubstr("header length"));
  EXPECT_THAT(Error(Raw("[1]", "")), HasSubstr("does not start with '{'"));
  EXPECT_THAT(Error(Raw("{\"a\":", "")), HasSubstr("not valid JSON"));
  EXPECT_THAT(Error(Raw("", "")), HasSubstr("does not start"));
}

TEST(SafetensorsTest, RejectsHeaderLies) {
  const std::string four(4, '\0');
  // Offsets past the data section.
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", four)),
              HasSubstr("outside the data section"));
  // begin > end.
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", four)),
              HasSubstr("outside the data section"));
  // Byte count that does not match dtype x shape (F16 needs 2 bytes each).
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}})", four)),
              HasSubstr("4 bytes for F16 shape [1], which needs 2"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four)),
              HasSubstr("which needs 8"));
  // Overlapping tensors.
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}})",
                        four)),
              HasSubstr("overlaps"));
  // A hole before a tensor, and bytes after the last one.
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}})", four)),
              HasSubstr("belong to no tensor"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", four)),
              HasSubstr("cover 2"));
  // Unknown dtype, negative or fractional shapes, missing fields, duplicates.
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", four)),
              HasSubstr("unknown dtype 'Q4'"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four)),
              HasSubstr("shape must hold non-negative integers"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four)),
              HasSubstr("non-negative integers"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[1]}})", four)),
              HasSubstr("has no \"data_offsets\""));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", four)),
              HasSubstr("data_offsets must be [begin, end]"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},)"
                        R"("a":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}})",
                        four)),
              HasSubstr("'a' is listed twice"));
  EXPECT_THAT(Error(Raw(R"({"__metadata__":{"k":1}})", "")), HasSubstr("is not a string"));
  EXPECT_THAT(Error(Raw(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],)"
                        R"("data_offsets":[0,4]}})",
                        four)),
              HasSubstr("overflows"));
}

TEST(SafetensorsTest, EveryTruncationFailsCleanly) {
  const std::string bytes =
      EncodeSafetensors({{"w", "F32", {3, 5}, std::string(60, 'x')}, {"b", "U8", {7}, "abcdefg"}});
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto file = SafetensorsFile::FromBytes(bytes.substr(0, n), "t");
    EXPECT_FALSE(file.ok()) << "length " << n;
  }
  EXPECT_TRUE(SafetensorsFile::FromBytes(bytes, "t").ok());
}

}  // namespace
}  // namespace shardlm
