// GgufImageBuilder (core/gguf_image.h): a sparse image rebuilt from the
// header and some byte ranges parses like the real file, unwritten bytes read
// as zero, bad input gives clear errors, and untouched memory costs nothing.
#include "core/gguf_image.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "core/gguf_test_util.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

using gguf_testing::Bytes;
using gguf_testing::HasError;
using gguf_testing::kSrc;

absl::Span<const uint8_t> Span(const std::string& s, size_t offset = 0,
                               size_t n = std::string::npos) {
  n = std::min(n, s.size() - offset);
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()) + offset, n);
}

class GgufImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = gguf_testing::MakeImage(gguf_testing::StandardSpec()).bytes;
    auto real = GgufFile::FromBytes(bytes_, "real.gguf");
    ASSERT_TRUE(real.ok()) << real.status();
    real_ = std::move(*real);
    ASSERT_GT(real_->tensors().size(), 1u);
  }
  absl::Span<const uint8_t> Header() const { return Span(bytes_, 0, real_->data_offset()); }
  std::unique_ptr<GgufImageBuilder> Builder() const {
    auto b = GgufImageBuilder::Create(Header(), bytes_.size(), kSrc);
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? std::move(*b) : nullptr;
  }

  std::string bytes_;
  std::unique_ptr<GgufFile> real_;
};

TEST_F(GgufImageTest, EveryTensorWrittenGivesTheRealFile) {
  auto b = Builder();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->data_offset(), real_->data_offset());
  EXPECT_EQ(b->file_size(), bytes_.size());
  for (const GgufTensorInfo& t : real_->tensors()) {
    const uint64_t at = real_->data_offset() + t.offset;
    ASSERT_TRUE(b->Write(at, Span(bytes_, at, t.size_bytes)).ok()) << t.name;
  }
  auto image = b->Finish();
  ASSERT_TRUE(image.ok()) << image.status();
  const GgufFile& f = **image;
  EXPECT_EQ(f.source(), kSrc);
  EXPECT_EQ(f.file_size(), real_->file_size());
  EXPECT_EQ(f.version(), real_->version());
  EXPECT_EQ(f.metadata().size(), real_->metadata().size());
  ASSERT_EQ(f.tensors().size(), real_->tensors().size());
  for (size_t k = 0; k < f.tensors().size(); ++k) {
    const GgufTensorInfo& got = f.tensors()[k];
    const GgufTensorInfo& want = real_->tensors()[k];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.dims, want.dims);
    EXPECT_EQ(got.offset, want.offset);
    ASSERT_EQ(got.size_bytes, want.size_bytes);
    EXPECT_EQ(std::memcmp(got.data, want.data, want.size_bytes), 0) << want.name;
  }
}

TEST_F(GgufImageTest, UnwrittenBytesReadAsZero) {
  auto b = Builder();
  ASSERT_NE(b, nullptr);
  const GgufTensorInfo& first = real_->tensors()[0];
  const uint64_t at = real_->data_offset() + first.offset;
  ASSERT_TRUE(b->Write(at, Span(bytes_, at, first.size_bytes)).ok());
  auto image = b->Finish();
  ASSERT_TRUE(image.ok()) << image.status();
  const GgufFile& f = **image;
  EXPECT_EQ(std::memcmp(f.tensors()[0].data, first.data, first.size_bytes), 0);
  for (size_t k = 1; k < f.tensors().size(); ++k) {
    const GgufTensorInfo& t = f.tensors()[k];
    for (uint64_t i = 0; i < t.size_bytes; ++i) ASSERT_EQ(t.data[i], 0) << t.name << " byte " << i;
  }
}

TEST_F(GgufImageTest, NothingWrittenStillParses) {
  auto b = Builder();
  ASSERT_NE(b, nullptr);
  auto image = b->Finish();
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ((*image)->tensors().size(), real_->tensors().size());
}

TEST_F(GgufImageTest, WritePastTheEndIsOutOfRange) {
  auto b = Builder();
  ASSERT_NE(b, nullptr);
  const uint64_t size = bytes_.size();
  const std::string four(4, 'x');
  EXPECT_TRUE(HasError(b->Write(size - 3, Span(four)), absl::StatusCode::kOutOfRange,
                       {"past the end"}));
  EXPECT_TRUE(HasError(b->Write(size + 1, {}), absl::StatusCode::kOutOfRange, {"past the end"}));
  EXPECT_TRUE(HasError(b->Write(std::numeric_limits<uint64_t>::max() - 1, Span(four)),
                       absl::StatusCode::kOutOfRange, {"past the end"}));
  EXPECT_TRUE(b->Write(size - 4, Span(four)).ok());
  EXPECT_TRUE(b->Write(size, {}).ok());
}

TEST_F(GgufImageTest, HeaderIsFixed) {
  auto b = Builder();
  ASSERT_NE(b, nullptr);
  // The same bytes again (even spilling into the data section) are fine.
  EXPECT_TRUE(b->Write(4, Span(bytes_, 4, real_->data_offset() + 8)).ok());
  const std::string other = "GGUF";
  EXPECT_TRUE(HasError(b->Write(4, Span(other)), absl::StatusCode::kInvalidArgument,
                       {"would change the GGUF header"}));
  auto image = b->Finish();
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ((*image)->version(), real_->version());
}

TEST_F(GgufImageTest, FinishOnce) {
  auto b = Builder();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Finish().ok());
  EXPECT_TRUE(
      HasError(b->Finish().status(), absl::StatusCode::kFailedPrecondition, {"already finished"}));
  EXPECT_TRUE(HasError(b->Write(real_->data_offset(), Span(bytes_, 0, 4)),
                       absl::StatusCode::kFailedPrecondition, {"after Finish"}));
}

TEST_F(GgufImageTest, BadSizes) {
  const uint64_t size = bytes_.size();
  EXPECT_TRUE(HasError(GgufImageBuilder::Create({}, size, kSrc).status(),
                       absl::StatusCode::kInvalidArgument, {"empty GGUF header"}));
  EXPECT_TRUE(HasError(GgufImageBuilder::Create(Header(), real_->data_offset() - 1, kSrc).status(),
                       absl::StatusCode::kInvalidArgument, {"larger than the file size"}));
  EXPECT_TRUE(HasError(GgufImageBuilder::Create(Header(), uint64_t{1} << 41, kSrc).status(),
                       absl::StatusCode::kInvalidArgument, {"exceeds the sparse image limit"}));
  // Room for the header but not for the tensors it describes.
  EXPECT_TRUE(HasError(GgufImageBuilder::Create(Header(), size - 1, kSrc).status(),
                       absl::StatusCode::kInvalidArgument, {"lies outside the file"}));
}

TEST_F(GgufImageTest, GarbageHeader) {
  const std::string garbage(64, '\x5a');
  EXPECT_TRUE(HasError(GgufImageBuilder::Create(Span(garbage), 1 << 20, kSrc).status(),
                       absl::StatusCode::kInvalidArgument, {"not a GGUF file"}));
  std::string bad_version = bytes_.substr(0, real_->data_offset());
  gguf_testing::Patch<uint32_t>(&bad_version, 4, 77);
  EXPECT_TRUE(HasError(GgufImageBuilder::Create(Span(bad_version), size_t{1} << 20, kSrc).status(),
                       absl::StatusCode::kInvalidArgument, {"unsupported GGUF version 77"}));
}

TEST_F(GgufImageTest, TruncatedHeader) {
  for (uint64_t n : {uint64_t{1}, uint64_t{24}, real_->data_offset() / 2,
                     real_->data_offset() - 1}) {
    SCOPED_TRACE(n);
    auto b = GgufImageBuilder::Create(Header().subspan(0, n), bytes_.size(), kSrc);
    EXPECT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
    EXPECT_NE(b.status().message().find(kSrc), absl::string_view::npos) << b.status();
  }
}

// Resident memory of this process in bytes.
uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// A header with one f32 tensor filling a file of `size` bytes.
std::string OneTensorHeader(uint64_t size) {
  Bytes h;
  h.Put<uint32_t>(0x46554747);
  h.Put<uint32_t>(3);
  h.Put<uint64_t>(1);  // tensors
  h.Put<uint64_t>(0);  // metadata
  h.PutStr("big");
  h.Put<uint32_t>(1);
  const size_t dim_at = h.Put<uint64_t>(0);
  h.Put<uint32_t>(0);  // f32
  h.Put<uint64_t>(0);
  h.PadTo(32);
  std::string header = h.str();
  gguf_testing::Patch<uint64_t>(&header, dim_at, (size - header.size()) / 4);
  return header;
}

TEST(GgufImageLargeTest, EightGiBImageCostsOnlyWhatIsWritten) {
  constexpr uint64_t kSize = uint64_t{8} << 30;
  const std::string header = OneTensorHeader(kSize);
  const uint64_t elements = (kSize - header.size()) / 4;

  const uint64_t before = ResidentBytes();
  auto b = GgufImageBuilder::Create(Span(header), kSize, kSrc);
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string chunk(4096, '\x7f');
  const uint64_t offsets[] = {header.size(), kSize / 2, kSize - chunk.size()};
  for (uint64_t at : offsets) ASSERT_TRUE((*b)->Write(at, Span(chunk)).ok());
  auto image = (*b)->Finish();
  ASSERT_TRUE(image.ok()) << image.status();
  const GgufFile& f = **image;
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].num_elements, static_cast<int64_t>(elements));
  const uint8_t* base = f.tensors()[0].data - f.data_offset();
  for (uint64_t at : offsets) EXPECT_EQ(std::memcmp(base + at, chunk.data(), chunk.size()), 0);
  EXPECT_EQ(base[kSize / 4], 0);
  EXPECT_LT(ResidentBytes(), before + (uint64_t{64} << 20));
}

}  // namespace
}  // namespace shardlm

namespace shardlm {
namespace {

// A shared image stays writable, and released pages go back to the system
// (reading as zero) without touching bytes outside the released range.
TEST(GgufImageLargeTest, SharedImageWritesOnAndReleasesWholePagesOnly) {
  constexpr uint64_t kSize = uint64_t{1} << 30;
  const std::string header = OneTensorHeader(kSize);
  auto b = GgufImageBuilder::Create(Span(header), kSize, kSrc);
  ASSERT_TRUE(b.ok()) << b.status();
  auto shared = (*b)->Share();
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->get(), (*b)->Share()->get());  // the same file every time
  EXPECT_FALSE((*b)->Finish().ok());
  const uint64_t at = kSize / 2 + 100;
  const std::string chunk(32u << 20, '\x5a');
  const uint64_t before = ResidentBytes();
  ASSERT_TRUE((*b)->Write(at, Span(chunk)).ok());
  EXPECT_GT(ResidentBytes(), before + (uint64_t{24} << 20));
  const uint8_t* base = (*shared)->tensors()[0].data - (*shared)->data_offset();
  EXPECT_EQ(base[at + 5], 0x5a);
  // Release all but 1000 bytes at each end of the chunk.
  (*b)->Release(at + 1000, chunk.size() - 2000);
  EXPECT_LT(ResidentBytes(), before + (uint64_t{8} << 20));
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(base[at + i], 0x5a) << i;
    ASSERT_EQ(base[at + chunk.size() - 1 - i], 0x5a) << i;
  }
  EXPECT_EQ(base[at + chunk.size() / 2], 0);
}

}  // namespace
}  // namespace shardlm
