// Malformed-file tests of the GGUF reader (core/gguf.h): a catalogue of
// corrupt images (each asserting the specific error), a truncation sweep and
// a seeded fuzz loop. Shared helpers are in core/gguf_test_util.h.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/gguf.h"
#include "core/gguf_test_util.h"
#include "gtest/gtest.h"

namespace shardlm::gguf_testing {
namespace {

constexpr uint64_t kTwo62 = uint64_t{1} << 62;
constexpr uint64_t kTwo60 = uint64_t{1} << 60;

// ---------------------------------------------------------------------------
// 1. Malformed files. Each test asserts the specific error.

using GgufMalformedTest = GgufFormatTest;

TEST_F(GgufMalformedTest, EmptyFile) {
  EXPECT_TRUE(IsInvalid(ParseStatus(""), {"not a GGUF file", "0 bytes"}));
}

TEST_F(GgufMalformedTest, ThreeByteFile) {
  EXPECT_TRUE(IsInvalid(ParseStatus("GGU"), {"not a GGUF file", "3 bytes"}));
}

TEST_F(GgufMalformedTest, BadMagic) {
  std::string b = Good();
  b[0] = 'g';
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"not a GGUF file", "bad magic"}));
  // Legacy GGML/GGJT files and plain text are not GGUF either.
  EXPECT_TRUE(IsInvalid(ParseStatus("GGJT\x03\0\0\0"), {"bad magic"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("{\"json\": true}"), {"bad magic"}));
  EXPECT_TRUE(IsInvalid(ParseStatus("GGUF"), {"truncated", "version"}));
}

// Every proper prefix of a valid image fails cleanly as truncated.
TEST_F(GgufMalformedTest, TruncationSweepEveryLength) {
  const std::string full = Good();
  ASSERT_TRUE(ParseStatus(full).ok());
  for (size_t len = 0; len < full.size(); ++len) {
    const absl::Status st = ParseStatus(full.substr(0, len));
    ASSERT_FALSE(st.ok()) << "prefix of " << len << " bytes parsed";
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << len << ": " << st;
    EXPECT_TRUE(absl::StrContains(st.message(), kSrc)) << st;
    if (len < 4) {
      EXPECT_TRUE(absl::StrContains(st.message(), "not a GGUF")) << len << ": " << st;
    } else {
      EXPECT_TRUE(absl::StrContains(st.message(), "truncated")) << len << ": " << st;
    }
  }
}

TEST_F(GgufMalformedTest, TruncatedInHeaderCounts) {
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, 6)), {"truncated", "version", "at offset 4"}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, 12)), {"truncated", "tensor count", "at offset 8"}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, 20)),
                        {"truncated", "metadata count", "at offset 16", "needs 8 bytes, only 4 remain"}));
  // Counts complete but nothing after them.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, 24)), {"truncated", "metadata count 10"}));
}

TEST_F(GgufMalformedTest, TruncatedInsideAKey) {
  const KvLayout& kv = Kv("test.last");
  // In the middle of the key bytes.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, kv.key_off + 8 + 4)),
                        {"truncated", "metadata key #9", absl::StrCat("at offset ", kv.key_off),
                         "claims length 9"}));
  // In the middle of the key length.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, kv.key_off + 3)),
                        {"truncated", "metadata key #9", absl::StrCat("at offset ", kv.key_off)}));
  // Between key and type.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, kv.type_off + 2)),
                        {"truncated", "type of key 'test.last'"}));
}

TEST_F(GgufMalformedTest, TruncatedInsideAStringValue) {
  const KvLayout& kv = Kv("test.str");
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, kv.value_off + 8 + 5)),
                        {"truncated", "value of key 'test.str'", "claims length 11",
                         "only 5 bytes remain"}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, kv.value_off + 4)),
                        {"truncated", "value of key 'test.str'", "needs 8 bytes, only 4 remain"}));
}

TEST_F(GgufMalformedTest, TruncatedInsideAnArray) {
  const KvLayout& i32s = Kv("test.i32s");
  // After two of the four int32 elements.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, i32s.value_off + 12 + 8)),
                        {"truncated", "value of key 'test.i32s'", "claims 4 elements of int32"}));
  // Inside the element count.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, i32s.value_off + 6)),
                        {"truncated", "value of key 'test.i32s' array length"}));
  // Inside the second string of a string array.
  const KvLayout& strs = Kv("test.strs");
  const size_t second = strs.value_off + 12 + 8 + 2;
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, second + 8 + 1)),
                        {"truncated", "value of key 'test.strs'", "claims length 3"}));
  // Inside the inner array of a nested array.
  const KvLayout& nested = Kv("test.nested");
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, nested.value_off + 12 + 5)),
                        {"truncated", "value of key 'test.nested'"}));
}

TEST_F(GgufMalformedTest, TruncatedInsideATensorInfo) {
  const TensorLayout& b = Tensor("b");
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, b.name_off + 8)),
                        {"truncated", "tensor #1 name", "claims length 1"}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, b.ndims_off + 1)),
                        {"truncated", "tensor 'b' dimension count"}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, b.dims_off + 4)),
                        {"truncated", "tensor 'b' dimension", absl::StrCat("at offset ", b.dims_off)}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, b.type_off + 3)), {"truncated", "tensor 'b' type"}));
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, b.offset_off + 7)),
                        {"truncated", "tensor 'b' data offset"}));
  // Header complete, the padding before the data section cut.
  ASSERT_LT(img_.lay.header_end, img_.lay.data_offset);
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, img_.lay.header_end + 1)),
                        {"truncated", "data section would start at offset",
                         absl::StrCat(img_.lay.data_offset)}));
}

TEST_F(GgufMalformedTest, TruncatedInsideTensorDataNamesTheTensor) {
  const size_t b_start = img_.lay.data_offset + Tensor("b").rel_offset;
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, b_start + 10)),
                        {"truncated", "tensor 'b' data", absl::StrCat("[", b_start, ", ", b_start + 34, ")"),
                         "lies outside the file"}));
  // Only the last byte of the last tensor missing.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, Good().size() - 1)),
                        {"truncated", "tensor 'c' data", "lies outside the file"}));
  // Data section entirely missing: the first tensor is named.
  EXPECT_TRUE(IsInvalid(ParseStatus(Good().substr(0, img_.lay.data_offset)), {"tensor 'a' data"}));
}

TEST_F(GgufMalformedTest, AbsurdMetadataCount) {
  std::string b = Good();
  Patch<uint64_t>(&b, Layout::kKvCountOff, kTwo60);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"metadata count 1152921504606846976", "larger than the file"}));
  Patch<uint64_t>(&b, Layout::kKvCountOff, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"metadata count 18446744073709551615"}));
}

TEST_F(GgufMalformedTest, AbsurdTensorCount) {
  std::string b = Good();
  Patch<uint64_t>(&b, Layout::kTensorCountOff, kTwo60);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor count 1152921504606846976", "larger than the file"}));
  Patch<uint64_t>(&b, Layout::kTensorCountOff, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor count 18446744073709551615"}));
}

TEST_F(GgufMalformedTest, TensorCountTooLargeButPlausible) {
  // One more tensor than present: the parser runs into the padding/data.
  std::string b = Good();
  Patch<uint64_t>(&b, Layout::kTensorCountOff, 4);
  const absl::Status st = ParseStatus(b);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "tensor")) << st;
}

TEST_F(GgufMalformedTest, StringLengthLargerThanFile) {
  std::string b = Good();
  const KvLayout& kv = Kv("test.str");
  Patch<uint64_t>(&b, kv.value_off, uint64_t{1} << 40);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.str'", "claims length 1099511627776",
                                         absl::StrCat("at offset ", kv.value_off)}));
  Patch<uint64_t>(&b, kv.value_off, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.str'", "claims length 18446744073709551615"}));
  // One byte more than the rest of the file.
  Patch<uint64_t>(&b, kv.value_off, b.size() - kv.value_off - 8 + 1);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.str'", "claims length"}));
}

TEST_F(GgufMalformedTest, KeyLengthLargerThanFileOrAbsurd) {
  std::string b = Good();
  const KvLayout& kv = Kv("general.architecture");
  Patch<uint64_t>(&b, kv.key_off, uint64_t{1} << 40);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"metadata key #0", "claims length 1099511627776"}));
  // Fits in the file but is longer than any sane key.
  b = Good() + std::string(200000, 'k');
  Patch<uint64_t>(&b, kv.key_off, 100000);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"metadata key #0", "absurd length 100000"}));
}

TEST_F(GgufMalformedTest, ArrayCount2To62OfUint64FailsFast) {
  std::string b = Good();
  const KvLayout& kv = Kv("test.u64s");
  ASSERT_EQ(Peek<uint64_t>(b, kv.value_off + 4), 2u);
  Patch<uint64_t>(&b, kv.value_off + 4, kTwo62);
  const auto start = std::chrono::steady_clock::now();
  const absl::Status st = ParseStatus(b);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(IsInvalid(st, {"value of key 'test.u64s'", "claims 4611686018427387904 elements of uint64"}));
  EXPECT_LT(secs, 1.0);
}

TEST_F(GgufMalformedTest, ArrayCountAbsurdForStringsAndNestedArrays) {
  std::string b = Good();
  Patch<uint64_t>(&b, Kv("test.strs").value_off + 4, kTwo62);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.strs'", "claims 4611686018427387904 elements of string"}));
  b = Good();
  Patch<uint64_t>(&b, Kv("test.nested").value_off + 4, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.nested'", "elements of array"}));
  // Inner array count.
  b = Good();
  Patch<uint64_t>(&b, Kv("test.nested").value_off + 12 + 4, kTwo62);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.nested'", "claims 4611686018427387904 elements of int32"}));
}

TEST_F(GgufMalformedTest, NestingDeeperThanLimit) {
  Spec spec;
  spec.kvs = {{"ok.depth4", Nested(4)}, {"too.deep", Nested(5)}};
  auto b = WriteSpec(spec);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(IsInvalid(ParseStatus(*b), {"value of key 'too.deep'", "nested deeper than 4"}));
  spec.kvs = {{"way.too.deep", Nested(40)}};
  b = WriteSpec(spec);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(IsInvalid(ParseStatus(*b), {"value of key 'way.too.deep'", "nested deeper than 4"}));
}

TEST_F(GgufMalformedTest, UnknownValueType) {
  std::string b = Good();
  Patch<uint32_t>(&b, Kv("test.u32").type_off, 13);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"key 'test.u32' has unknown value type 13"}));
  Patch<uint32_t>(&b, Kv("test.u32").type_off, 0xffffffffu);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"key 'test.u32' has unknown value type 4294967295"}));
}

TEST_F(GgufMalformedTest, UnknownArrayElementType) {
  std::string b = Good();
  Patch<uint32_t>(&b, Kv("test.i32s").value_off, 13);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.i32s'", "unknown array element type 13"}));
  b = Good();
  Patch<uint32_t>(&b, Kv("test.nested").value_off + 12, 99);  // inner array
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.nested'", "unknown array element type 99"}));
}

TEST_F(GgufMalformedTest, BoolByteOf2) {
  std::string b = Good();
  ASSERT_EQ(b[Kv("test.bool").value_off], 1);
  b[Kv("test.bool").value_off] = 2;
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.bool'", "bool byte is 2"}));
  b[Kv("test.bool").value_off] = static_cast<char>(0xff);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"value of key 'test.bool'", "bool byte is 255"}));
}

TEST_F(GgufMalformedTest, BoolByteOf2InsideArray) {
  Spec spec;
  spec.kvs = {{"bools", Arr(GgufType::kBool, {Bool(false), Bool(true)})}};
  Image img = MakeImage(spec);
  img.bytes[img.lay.kv.at("bools").value_off + 12 + 1] = 2;
  EXPECT_TRUE(IsInvalid(ParseStatus(img.bytes), {"value of key 'bools'", "bool byte is 2"}));
}

TEST_F(GgufMalformedTest, DuplicateKey) {
  Spec spec = StandardSpec();
  spec.kvs.push_back({"test.u32", U32(8)});
  auto b = WriteSpec(spec);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(IsInvalid(ParseStatus(*b), {"duplicate metadata key 'test.u32'"}));
  // Same key, different type.
  spec = StandardSpec();
  spec.kvs.push_back({"general.architecture", I32(1)});
  b = WriteSpec(spec);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(IsInvalid(ParseStatus(*b), {"duplicate metadata key 'general.architecture'"}));
}

TEST_F(GgufMalformedTest, DuplicateTensorName) {
  Spec spec = StandardSpec();
  spec.tensors.push_back(RawTensor("b", {32}, DType::kF32, 4));
  auto b = WriteSpec(spec);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(IsInvalid(ParseStatus(*b), {"duplicate tensor name 'b'"}));
}

TEST_F(GgufMalformedTest, UnknownGgmlTensorType) {
  for (const uint32_t type : {4u, 5u, 31u, 99u, 0xffffffffu}) {
    std::string b = Good();
    Patch<uint32_t>(&b, Tensor("a").type_off, type);
    EXPECT_TRUE(IsInvalid(ParseStatus(b), {absl::StrCat("tensor 'a' has unknown ggml type ", type)}));
  }
}

TEST_F(GgufMalformedTest, ZeroDims) {
  std::string b = Good();
  Patch<uint32_t>(&b, Tensor("a").ndims_off, 0);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'a' has 0 dimensions", "must be 1..4"}));
}

TEST_F(GgufMalformedTest, FiveDims) {
  Spec spec;
  spec.tensors = {RawTensor("five", {8, 1, 1, 1, 2}, DType::kF32, 5)};
  auto b = WriteSpec(spec);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(IsInvalid(ParseStatus(*b), {"tensor 'five' has 5 dimensions", "must be 1..4"}));
  std::string p = Good();
  Patch<uint32_t>(&p, Tensor("c").ndims_off, 0x80000000u);
  EXPECT_TRUE(IsInvalid(ParseStatus(p), {"tensor 'c' has 2147483648 dimensions"}));
}

TEST_F(GgufMalformedTest, DimensionOf2To50) {
  std::string b = Good();
  Patch<uint64_t>(&b, Tensor("a").dims_off, uint64_t{1} << 50);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'a' has absurd dimension 1125899906842624"}));
}

TEST_F(GgufMalformedTest, DimensionOfZero) {
  std::string b = Good();
  Patch<uint64_t>(&b, Tensor("a").dims_off + 8, 0);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'a' has absurd dimension 0"}));
}

TEST_F(GgufMalformedTest, ElementCountOverflowAcrossDims) {
  // Each dimension is individually acceptable (2^40), the product (2^80)
  // overflows int64.
  std::string b = Good();
  Patch<uint64_t>(&b, Tensor("a").dims_off, uint64_t{1} << 40);
  Patch<uint64_t>(&b, Tensor("a").dims_off + 8, uint64_t{1} << 40);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'a' has absurd dimension 1099511627776"}));
  // Same with four 2^20 dims (product 2^80).
  Spec spec;
  spec.tensors = {RawTensor("t", {1, 1, 1, 1}, DType::kF32, 1)};
  Image img = MakeImage(spec);
  for (int d = 0; d < 4; ++d) {
    Patch<uint64_t>(&img.bytes, img.lay.tensor.at("t").dims_off + 8 * d, uint64_t{1} << 20);
  }
  EXPECT_TRUE(IsInvalid(ParseStatus(img.bytes), {"tensor 't' has absurd dimension 1048576"}));
}

TEST_F(GgufMalformedTest, Q8_0RowLengthNotMultipleOfBlock) {
  std::string b = Good();
  Patch<uint64_t>(&b, Tensor("b").dims_off, 33);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'b' row length 33", "not a multiple of the q8_0 block size 32"}));
}

TEST_F(GgufMalformedTest, TensorOffsetNotMultipleOfAlignment) {
  std::string b = Good();
  ASSERT_EQ(Peek<uint64_t>(b, Tensor("b").offset_off), 64u);
  Patch<uint64_t>(&b, Tensor("b").offset_off, 16);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'b' data offset 16", "not a multiple of the alignment 32"}));
}

TEST_F(GgufMalformedTest, TensorOffsetNotMultipleOfCustomAlignment) {
  Spec spec;
  spec.alignment = 64;
  spec.kvs = {{"general.alignment", U32(64)}};
  spec.tensors = {RawTensor("x", {32}, DType::kF32, 1), RawTensor("y", {32}, DType::kF32, 2)};
  Image img = MakeImage(spec);
  ASSERT_TRUE(ParseStatus(img.bytes).ok());
  ASSERT_EQ(Peek<uint64_t>(img.bytes, img.lay.tensor.at("y").offset_off), 128u);
  Patch<uint64_t>(&img.bytes, img.lay.tensor.at("y").offset_off, 96);  // multiple of 32, not 64
  EXPECT_TRUE(IsInvalid(ParseStatus(img.bytes), {"tensor 'y' data offset 96", "not a multiple of the alignment 64"}));
}

TEST_F(GgufMalformedTest, TensorDataPastEndOfFile) {
  std::string b = Good();
  Patch<uint64_t>(&b, Tensor("c").offset_off, uint64_t{1} << 20);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'c' data", "lies outside the file",
                                         absl::StrCat("(", b.size(), " bytes)")}));
  // An offset near 2^64 must not wrap around into the file.
  Patch<uint64_t>(&b, Tensor("c").offset_off, std::numeric_limits<uint64_t>::max() - 31);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'c' data", "lies outside the file"}));
  // Starts inside the file, ends one alignment unit past it.
  Patch<uint64_t>(&b, Tensor("c").offset_off, Tensor("c").rel_offset + 32);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'c' data", "lies outside the file"}));
}

TEST_F(GgufMalformedTest, TensorDimsMakeDataPastEndOfFile) {
  std::string b = Good();
  Patch<uint64_t>(&b, Tensor("a").dims_off + 8, 1000);  // 8 x 1000 f32
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"tensor 'a' data", "lies outside the file"}));
}

absl::Status ParseWithAlignment(GgufValue alignment) {
  Spec spec;
  spec.kvs = {{"general.alignment", std::move(alignment)}};
  spec.tensors = {RawTensor("t", {8}, DType::kF32, 1)};
  auto b = WriteSpec(spec);
  if (!b.ok()) return b.status();
  return ParseStatus(*b);
}

TEST_F(GgufMalformedTest, AlignmentZero) {
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(U32(0)), {"general.alignment 0", "not a power of two"}));
}

TEST_F(GgufMalformedTest, AlignmentNotPowerOfTwo) {
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(U32(3)), {"general.alignment 3", "not a power of two"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(U32(48)), {"general.alignment 48", "not a power of two"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(U32(1u << 31)), {"general.alignment 2147483648"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(I32(-32)), {"general.alignment -32"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(U64(std::numeric_limits<uint64_t>::max())),
                        {"general.alignment 18446744073709551615"}));
}

TEST_F(GgufMalformedTest, AlignmentOfWrongType) {
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(Str("32")), {"general.alignment \"32\"", "not a power of two"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(F32(32.0f)), {"general.alignment 32", "not a power of two"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(Bool(true)), {"general.alignment true"}));
  EXPECT_TRUE(IsInvalid(ParseWithAlignment(Arr(GgufType::kUint32, {U32(32)})), {"general.alignment uint32[1]"}));
}

TEST_F(GgufMalformedTest, AlignmentValidValuesAccepted) {
  for (const uint32_t a : {1u, 8u, 32u, 1u << 20}) {
    Spec spec;
    spec.alignment = a;
    spec.kvs = {{"general.alignment", U32(a)}};
    spec.tensors = {RawTensor("t", {8}, DType::kF32, 1)};
    Image img = MakeImage(spec);
    auto f = GgufFile::FromBytes(img.bytes, kSrc);
    ASSERT_TRUE(f.ok()) << a << ": " << f.status();
    EXPECT_EQ((*f)->alignment(), a);
    EXPECT_EQ((*f)->data_offset(), img.lay.data_offset);
  }
}

// ---------------------------------------------------------------------------
// 2. Fuzz-style robustness.

TEST(GgufFuzzTest, RandomCorruptionNeverCrashes) {
  const Image img = MakeImage(StandardSpec());
  const Layout& lay = img.lay;
  // Every u64 and u32 field of the image.
  std::vector<size_t> u64_fields = {Layout::kTensorCountOff, Layout::kKvCountOff};
  std::vector<size_t> u32_fields = {Layout::kVersionOff};
  for (const auto& [key, kv] : lay.kv) {
    u64_fields.push_back(kv.key_off);
    u32_fields.push_back(kv.type_off);
    const uint32_t type = Peek<uint32_t>(img.bytes, kv.type_off);
    if (type == static_cast<uint32_t>(GgufType::kString)) u64_fields.push_back(kv.value_off);
    if (type == static_cast<uint32_t>(GgufType::kArray)) {
      u32_fields.push_back(kv.value_off);
      u64_fields.push_back(kv.value_off + 4);
    }
  }
  for (const auto& [name, t] : lay.tensor) {
    u64_fields.push_back(t.name_off);
    u32_fields.push_back(t.ndims_off);
    for (size_t d = t.dims_off; d < t.type_off; d += 8) u64_fields.push_back(d);
    u32_fields.push_back(t.type_off);
    u64_fields.push_back(t.offset_off);
  }

  std::mt19937 rng(20240611);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  auto random_u64 = [&]() -> uint64_t {
    static const uint64_t kInteresting[] = {0,
                                            1,
                                            2,
                                            3,
                                            31,
                                            32,
                                            33,
                                            64,
                                            255,
                                            4096,
                                            uint64_t{1} << 31,
                                            uint64_t{1} << 32,
                                            (uint64_t{1} << 32) - 1,
                                            uint64_t{1} << 40,
                                            uint64_t{1} << 50,
                                            kTwo60,
                                            kTwo62,
                                            uint64_t{1} << 63,
                                            std::numeric_limits<uint64_t>::max(),
                                            std::numeric_limits<uint64_t>::max() - 31};
    switch (pick(3)) {
      case 0: return kInteresting[pick(sizeof(kInteresting) / sizeof(kInteresting[0]))];
      case 1: return pick(img.bytes.size() * 2);
      default: return (static_cast<uint64_t>(rng()) << 32) | rng();
    }
  };

  int parsed_ok = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int iter = 0; iter < 2000; ++iter) {
    std::string b = img.bytes;
    const int mutations = 1 + static_cast<int>(pick(3));
    for (int m = 0; m < mutations; ++m) {
      switch (pick(5)) {
        case 0:  // flip random bits of a random byte
          b[pick(b.size())] ^= static_cast<char>(1 + pick(255));
          break;
        case 1:  // random byte value in the header
          b[pick(lay.header_end)] = static_cast<char>(pick(256));
          break;
        case 2:  // a known u64 field
          Patch<uint64_t>(&b, u64_fields[pick(u64_fields.size())], random_u64());
          break;
        case 3:  // a known u32 field
          Patch<uint32_t>(&b, u32_fields[pick(u32_fields.size())],
                          pick(2) ? static_cast<uint32_t>(pick(40)) : static_cast<uint32_t>(rng()));
          break;
        default:  // an unaligned random u64 anywhere in the header
          Patch<uint64_t>(&b, pick(lay.header_end - 8), random_u64());
          break;
      }
    }
    if (pick(8) == 0) b.resize(pick(b.size()));
    auto f = GgufFile::FromBytes(b, kSrc);
    if (!f.ok()) {
      EXPECT_NE(f.status().code(), absl::StatusCode::kOk);
      EXPECT_FALSE(f.status().message().empty());
      continue;
    }
    ++parsed_ok;
    // Whatever parsed must be internally consistent and readable.
    const GgufFile& g = **f;
    EXPECT_LE(g.data_offset(), g.file_size() + g.alignment());
    for (const auto& [key, value] : g.metadata()) EXPECT_FALSE(value.DebugString().empty());
    for (const GgufTensorInfo& t : g.tensors()) {
      ASSERT_NE(t.data, nullptr);
      EXPECT_EQ(t.offset % g.alignment(), 0u);
      ASSERT_LE(g.data_offset() + t.offset + t.size_bytes, g.file_size()) << t.name;
      EXPECT_EQ(t.size_bytes, RowBytes(t.type, t.num_elements).value());
      EXPECT_EQ(g.FindTensor(t.name), &t);
      unsigned sum = 0;
      for (uint64_t k = 0; k < t.size_bytes; ++k) sum += t.data[k];
      (void)sum;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("parsed_ok", parsed_ok);
  std::printf("fuzz: %d of 2000 mutated images parsed, %.3f s\n", parsed_ok, secs);
}
}  // namespace
}  // namespace shardlm::gguf_testing
