#include "core/mapped_file.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

std::string Write(const std::string& name, const std::string& bytes) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return path;
}

std::string Contents(const MappedFile& f) {
  return std::string(reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size());
}

TEST(MappedFileTest, MapAndCopyGiveTheFileBytes) {
  std::string bytes(3 * 1024 * 1024 + 17, '\0');  // more than a huge page, odd size
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + (i >> 12));
  const std::string path = Write("f.bin", bytes);
  for (FileMemory memory : {FileMemory::kMap, FileMemory::kCopy}) {
    auto file = MappedFile::Open(path, "test file", memory);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->size(), bytes.size());
    EXPECT_EQ(Contents(**file), bytes);
  }
}

TEST(MappedFileTest, EmptyFilesAndErrors) {
  const std::string empty = Write("empty.bin", "");
  for (FileMemory memory : {FileMemory::kMap, FileMemory::kCopy}) {
    auto file = MappedFile::Open(empty, "test file", memory);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->size(), 0u);
    auto missing = MappedFile::Open(empty + ".nope", "model file", memory);
    EXPECT_THAT(std::string(missing.status().message()), HasSubstr("cannot open model file"));
    auto dir = MappedFile::Open(std::getenv("TEST_TMPDIR"), "model file", memory);
    EXPECT_THAT(std::string(dir.status().message()), HasSubstr("not a regular file"));
  }
}

TEST(MappedFileTest, ReadWholeFile) {
  const std::string path = Write("t.json", "{\"a\": 1}");
  EXPECT_EQ(*ReadWholeFile(path, "json"), "{\"a\": 1}");
  EXPECT_FALSE(ReadWholeFile(path + "x", "json").ok());
}

}  // namespace
}  // namespace shardlm
