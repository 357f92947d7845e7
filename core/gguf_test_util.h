// Helpers shared by the GGUF tests (core/gguf_test.cc and
// core/gguf_malformed_test.cc): GgufValue builders, status matchers, and a
// small file model that is written both by GgufWriter and, independently, by
// hand so that the tests know the offset of every field.
#ifndef SHARDLM_CORE_GGUF_TEST_UTIL_H_
#define SHARDLM_CORE_GGUF_TEST_UTIL_H_

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/gguf.h"
#include "gtest/gtest.h"

namespace shardlm::gguf_testing {

// Source name given to GgufFile::FromBytes; errors must mention it.
inline constexpr char kSrc[] = "mem.gguf";

// ---------------------------------------------------------------------------
// Value constructors.

// An empty value of type `t`.
GgufValue Val(GgufType t);
// Scalar values of each GGUF type.
GgufValue U8(uint8_t x);
GgufValue I8(int8_t x);
GgufValue U16(uint16_t x);
GgufValue I16(int16_t x);
GgufValue U32(uint32_t x);
GgufValue I32(int32_t x);
GgufValue U64(uint64_t x);
GgufValue I64(int64_t x);
GgufValue F32(float x);
GgufValue F64(double x);
GgufValue Bool(bool x);
GgufValue Str(std::string x);
// An array of `elem` elements holding `xs`.
GgufValue Arr(GgufType elem, std::vector<GgufValue> xs);
// `levels` nested arrays, the innermost holding one int32.
GgufValue Nested(int levels);

// Whether `t` is one of the unsigned integer types.
bool IsUnsigned(GgufType t);
// Whether `t` is one of the signed integer types.
bool IsSigned(GgufType t);

// Deep comparison of what was written against what was read.
::testing::AssertionResult SameValue(const GgufValue& want, const GgufValue& got,
                                     const std::string& path);

// `st` is an error of `code` whose message contains every one of `parts`
// and the source name.
::testing::AssertionResult HasError(const absl::Status& st, absl::StatusCode code,
                                    std::initializer_list<absl::string_view> parts,
                                    absl::string_view source = kSrc);

// HasError with kInvalidArgument and the source kSrc.
::testing::AssertionResult IsInvalid(const absl::Status& st,
                                     std::initializer_list<absl::string_view> parts);

// The status of parsing `bytes` with GgufFile::FromBytes under kSrc.
absl::Status ParseStatus(std::string bytes);

// Overwrites sizeof(T) bytes of `*s` at `off` with `v` (native endianness).
template <typename T>
void Patch(std::string* s, size_t off, T v) {
  ASSERT_LE(off + sizeof(T), s->size());
  std::memcpy(&(*s)[off], &v, sizeof(T));
}

// Reads a T from `s` at `off` (native endianness).
template <typename T>
T Peek(const std::string& s, size_t off) {
  T v{};
  std::memcpy(&v, s.data() + off, sizeof(T));
  return v;
}

// ---------------------------------------------------------------------------
// A file described as data, written by GgufWriter and, independently, laid out
// by hand so that the tests know the offset of every field.

// One tensor of a Spec: its info and raw data.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> dims;
  DType type;
  std::string data;  // exactly RowBytes(type, elements) bytes
};

// A whole file: alignment, metadata in order, tensors in order.
struct Spec {
  uint64_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> kvs;
  std::vector<TensorSpec> tensors;
};

// Product of `dims` (1 for no dims).
int64_t Elements(const std::vector<int64_t>& dims);

// A tensor of `type` and `dims` filled with a deterministic byte pattern
// derived from `seed`.
TensorSpec RawTensor(const std::string& name, std::vector<int64_t> dims, DType type, uint8_t seed);

// Serializes `spec` with GgufWriter.
absl::StatusOr<std::string> WriteSpec(const Spec& spec);

// Tiny little-endian appender. Put* return the offset written at.
class Bytes {
 public:
  template <typename T>
  size_t Put(T v) {
    const size_t at = s_.size();
    s_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return at;
  }
  size_t PutStr(absl::string_view v) {
    const size_t at = Put<uint64_t>(v.size());
    s_.append(v.data(), v.size());
    return at;
  }
  void PadTo(uint64_t a) { s_.resize((s_.size() + a - 1) / a * a, '\0'); }
  void Append(const std::string& b) { s_ += b; }
  size_t size() const { return s_.size(); }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

// Appends the GGUF encoding of `v` (without its type tag) to `*b`.
void HandEncode(const GgufValue& v, Bytes* b);

// Offsets of one metadata entry in a hand-built image.
struct KvLayout {
  size_t key_off;    // u64 key length, then the key bytes
  size_t type_off;   // u32 value type
  size_t value_off;  // value (string: u64 length; array: u32 elem type, u64 count, elements)
  size_t end_off;
};

// Offsets of one tensor info in a hand-built image, and its data placement.
struct TensorLayout {
  size_t name_off;    // u64 name length, then the name
  size_t ndims_off;   // u32
  size_t dims_off;    // u64 per dim
  size_t type_off;    // u32 ggml type
  size_t offset_off;  // u64 offset in the data section
  size_t end_off;
  uint64_t rel_offset;
  uint64_t size;
};

// A hand-built image and the offset of every field in it.
struct Layout {
  static constexpr size_t kVersionOff = 4;
  static constexpr size_t kTensorCountOff = 8;
  static constexpr size_t kKvCountOff = 16;
  std::string bytes;
  std::map<std::string, KvLayout> kv;
  std::map<std::string, TensorLayout> tensor;
  size_t header_end = 0;
  size_t data_offset = 0;
};

// Lays out `spec` as a version 3 GGUF file by hand, recording offsets.
Layout HandBuild(const Spec& spec);

// The standard small image used by the malformed-file tests. The last
// tensor's size is a multiple of the alignment, so the image ends exactly
// where its data ends (no trailing padding): every proper prefix is truncated.
Spec StandardSpec();

// Writer image and hand layout of a spec; they must agree byte for byte.
struct Image {
  std::string bytes;
  Layout lay;
};

// Builds both images of `spec`, expecting them to be identical.
Image MakeImage(const Spec& spec);

// Metadata covering every value type, edge values and nested arrays.
std::vector<std::pair<std::string, GgufValue>> AllTypesMetadata();

// Fixture holding the StandardSpec image, for format and malformed-file tests.
class GgufFormatTest : public ::testing::Test {
 protected:
  void SetUp() override { img_ = MakeImage(StandardSpec()); }
  std::string Good() const { return img_.bytes; }
  const KvLayout& Kv(const std::string& key) const { return img_.lay.kv.at(key); }
  const TensorLayout& Tensor(const std::string& name) const { return img_.lay.tensor.at(name); }
  Image img_;
};

}  // namespace shardlm::gguf_testing

#endif  // SHARDLM_CORE_GGUF_TEST_UTIL_H_
