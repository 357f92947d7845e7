// Tests of the GGUF reader (core/gguf.h) and writer (core/gguf_writer.h):
// metadata round trips of every value type, tensor infos and data, custom
// alignment, versions, a catalogue of malformed files (each asserting the
// specific error), a truncation sweep, a seeded fuzz loop, the real
// stories260K model and GgufFile::Open errors.
#include "core/gguf.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::ElementsAre;

constexpr char kSrc[] = "mem.gguf";
constexpr uint64_t kTwo62 = uint64_t{1} << 62;
constexpr uint64_t kTwo60 = uint64_t{1} << 60;

// ---------------------------------------------------------------------------
// Value constructors.

GgufValue Val(GgufType t) {
  GgufValue v;
  v.type = t;
  return v;
}
GgufValue U8(uint8_t x) { GgufValue v = Val(GgufType::kUint8); v.u = x; return v; }
GgufValue I8(int8_t x) { GgufValue v = Val(GgufType::kInt8); v.i = x; return v; }
GgufValue U16(uint16_t x) { GgufValue v = Val(GgufType::kUint16); v.u = x; return v; }
GgufValue I16(int16_t x) { GgufValue v = Val(GgufType::kInt16); v.i = x; return v; }
GgufValue U32(uint32_t x) { GgufValue v = Val(GgufType::kUint32); v.u = x; return v; }
GgufValue I32(int32_t x) { GgufValue v = Val(GgufType::kInt32); v.i = x; return v; }
GgufValue U64(uint64_t x) { GgufValue v = Val(GgufType::kUint64); v.u = x; return v; }
GgufValue I64(int64_t x) { GgufValue v = Val(GgufType::kInt64); v.i = x; return v; }
GgufValue F32(float x) { GgufValue v = Val(GgufType::kFloat32); v.f = x; return v; }
GgufValue F64(double x) { GgufValue v = Val(GgufType::kFloat64); v.f = x; return v; }
GgufValue Bool(bool x) { GgufValue v = Val(GgufType::kBool); v.b = x; return v; }
GgufValue Str(std::string x) { GgufValue v = Val(GgufType::kString); v.s = std::move(x); return v; }
GgufValue Arr(GgufType elem, std::vector<GgufValue> xs) {
  GgufValue v = Val(GgufType::kArray);
  v.elem_type = elem;
  v.arr = std::move(xs);
  return v;
}
// `levels` nested arrays, the innermost holding one int32.
GgufValue Nested(int levels) {
  if (levels == 1) return Arr(GgufType::kInt32, {I32(7)});
  return Arr(GgufType::kArray, {Nested(levels - 1)});
}

bool IsUnsigned(GgufType t) {
  return t == GgufType::kUint8 || t == GgufType::kUint16 || t == GgufType::kUint32 ||
         t == GgufType::kUint64;
}
bool IsSigned(GgufType t) {
  return t == GgufType::kInt8 || t == GgufType::kInt16 || t == GgufType::kInt32 ||
         t == GgufType::kInt64;
}

// Deep comparison of what was written against what was read.
::testing::AssertionResult SameValue(const GgufValue& want, const GgufValue& got,
                                     const std::string& path) {
  if (want.type != got.type) {
    return ::testing::AssertionFailure()
           << path << ": type " << GgufTypeName(got.type) << ", want " << GgufTypeName(want.type);
  }
  const GgufType t = want.type;
  if (IsUnsigned(t)) {
    if (got.u != want.u) return ::testing::AssertionFailure() << path << ": u " << got.u << " != " << want.u;
    // The reader mirrors unsigned values into `i` too.
    if (got.i != static_cast<int64_t>(want.u)) {
      return ::testing::AssertionFailure() << path << ": i " << got.i << " does not mirror u " << want.u;
    }
  } else if (IsSigned(t)) {
    if (got.i != want.i) return ::testing::AssertionFailure() << path << ": i " << got.i << " != " << want.i;
  } else if (t == GgufType::kFloat32 || t == GgufType::kFloat64) {
    // Bitwise: NaN, -0.0 and exact double values must survive.
    const double w = t == GgufType::kFloat32 ? static_cast<double>(static_cast<float>(want.f)) : want.f;
    if (std::memcmp(&w, &got.f, sizeof(double)) != 0) {
      return ::testing::AssertionFailure() << path << ": f " << got.f << " != " << w;
    }
  } else if (t == GgufType::kBool) {
    if (got.b != want.b) return ::testing::AssertionFailure() << path << ": bool " << got.b;
  } else if (t == GgufType::kString) {
    if (got.s != want.s) {
      return ::testing::AssertionFailure() << path << ": string '" << got.s << "' (" << got.s.size()
                                           << " bytes) != '" << want.s << "' (" << want.s.size() << ")";
    }
  } else if (t == GgufType::kArray) {
    if (got.elem_type != want.elem_type) {
      return ::testing::AssertionFailure() << path << ": elem_type " << GgufTypeName(got.elem_type)
                                           << ", want " << GgufTypeName(want.elem_type);
    }
    if (got.arr.size() != want.arr.size()) {
      return ::testing::AssertionFailure() << path << ": " << got.arr.size() << " elements, want "
                                           << want.arr.size();
    }
    for (size_t k = 0; k < want.arr.size(); ++k) {
      auto r = SameValue(want.arr[k], got.arr[k], absl::StrCat(path, "[", k, "]"));
      if (!r) return r;
    }
  }
  return ::testing::AssertionSuccess();
}

// `st` is an error of `code` whose message contains every one of `parts`
// and the source name.
::testing::AssertionResult HasError(const absl::Status& st, absl::StatusCode code,
                                    std::initializer_list<absl::string_view> parts,
                                    absl::string_view source = kSrc) {
  if (st.ok()) return ::testing::AssertionFailure() << "expected an error, got OK";
  if (st.code() != code) {
    return ::testing::AssertionFailure() << "code is " << absl::StatusCodeToString(st.code())
                                         << ", want " << absl::StatusCodeToString(code) << ": " << st;
  }
  if (!source.empty() && !absl::StrContains(st.message(), source)) {
    return ::testing::AssertionFailure() << "message does not name the source '" << source << "': " << st;
  }
  for (absl::string_view p : parts) {
    if (!absl::StrContains(st.message(), p)) {
      return ::testing::AssertionFailure() << "message lacks '" << p << "': " << st.message();
    }
  }
  return ::testing::AssertionSuccess() << st.message();
}

::testing::AssertionResult IsInvalid(const absl::Status& st,
                                     std::initializer_list<absl::string_view> parts) {
  return HasError(st, absl::StatusCode::kInvalidArgument, parts);
}

absl::Status ParseStatus(std::string bytes) {
  return GgufFile::FromBytes(std::move(bytes), kSrc).status();
}

template <typename T>
void Patch(std::string* s, size_t off, T v) {
  ASSERT_LE(off + sizeof(T), s->size());
  std::memcpy(&(*s)[off], &v, sizeof(T));
}

template <typename T>
T Peek(const std::string& s, size_t off) {
  T v{};
  std::memcpy(&v, s.data() + off, sizeof(T));
  return v;
}

// ---------------------------------------------------------------------------
// A file described as data, written by GgufWriter and, independently, laid out
// by hand so that the tests know the offset of every field.

struct TensorSpec {
  std::string name;
  std::vector<int64_t> dims;
  DType type;
  std::string data;  // exactly RowBytes(type, elements) bytes
};

struct Spec {
  uint64_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> kvs;
  std::vector<TensorSpec> tensors;
};

int64_t Elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

TensorSpec RawTensor(const std::string& name, std::vector<int64_t> dims, DType type, uint8_t seed) {
  const uint64_t size = RowBytes(type, Elements(dims)).value();
  std::string data(size, '\0');
  for (uint64_t k = 0; k < size; ++k) data[k] = static_cast<char>((k * 131 + seed * 17 + 1) & 0xff);
  return {name, std::move(dims), type, std::move(data)};
}

absl::StatusOr<std::string> WriteSpec(const Spec& spec) {
  GgufWriter w(spec.alignment);
  for (const auto& [k, v] : spec.kvs) w.AddValue(k, v);
  for (const TensorSpec& t : spec.tensors) {
    const std::string data = t.data;
    absl::Status st = w.AddTensor(t.name, t.dims, t.type,
                                  [data](const std::function<void(const void*, size_t)>& sink) {
                                    sink(data.data(), data.size());
                                    return absl::OkStatus();
                                  });
    if (!st.ok()) return st;
  }
  return w.Serialize();
}

// Tiny little-endian appender.
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

void HandEncode(const GgufValue& v, Bytes* b) {
  switch (v.type) {
    case GgufType::kUint8: b->Put<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case GgufType::kInt8: b->Put<int8_t>(static_cast<int8_t>(v.i)); break;
    case GgufType::kUint16: b->Put<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case GgufType::kInt16: b->Put<int16_t>(static_cast<int16_t>(v.i)); break;
    case GgufType::kUint32: b->Put<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case GgufType::kInt32: b->Put<int32_t>(static_cast<int32_t>(v.i)); break;
    case GgufType::kUint64: b->Put<uint64_t>(v.u); break;
    case GgufType::kInt64: b->Put<int64_t>(v.i); break;
    case GgufType::kFloat32: b->Put<float>(static_cast<float>(v.f)); break;
    case GgufType::kFloat64: b->Put<double>(v.f); break;
    case GgufType::kBool: b->Put<uint8_t>(v.b ? 1 : 0); break;
    case GgufType::kString: b->PutStr(v.s); break;
    case GgufType::kArray:
      b->Put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      b->Put<uint64_t>(v.arr.size());
      for (const GgufValue& e : v.arr) HandEncode(e, b);
      break;
  }
}

struct KvLayout {
  size_t key_off;    // u64 key length, then the key bytes
  size_t type_off;   // u32 value type
  size_t value_off;  // value (string: u64 length; array: u32 elem type, u64 count, elements)
  size_t end_off;
};

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

Layout HandBuild(const Spec& spec) {
  Layout lay;
  Bytes b;
  b.Append("GGUF");
  b.Put<uint32_t>(3);
  b.Put<uint64_t>(spec.tensors.size());
  b.Put<uint64_t>(spec.kvs.size());
  for (const auto& [k, v] : spec.kvs) {
    KvLayout kl;
    kl.key_off = b.PutStr(k);
    kl.type_off = b.Put<uint32_t>(static_cast<uint32_t>(v.type));
    kl.value_off = b.size();
    HandEncode(v, &b);
    kl.end_off = b.size();
    lay.kv[k] = kl;
  }
  uint64_t rel = 0;
  for (const TensorSpec& t : spec.tensors) {
    TensorLayout tl;
    tl.name_off = b.PutStr(t.name);
    tl.ndims_off = b.Put<uint32_t>(t.dims.size());
    tl.dims_off = b.size();
    for (int64_t d : t.dims) b.Put<uint64_t>(d);
    tl.type_off = b.Put<uint32_t>(static_cast<uint32_t>(t.type));
    tl.offset_off = b.Put<uint64_t>(rel);
    tl.end_off = b.size();
    tl.rel_offset = rel;
    tl.size = t.data.size();
    rel += (tl.size + spec.alignment - 1) / spec.alignment * spec.alignment;
    lay.tensor[t.name] = tl;
  }
  lay.header_end = b.size();
  b.PadTo(spec.alignment);
  lay.data_offset = b.size();
  for (const TensorSpec& t : spec.tensors) {
    b.Append(t.data);
    b.PadTo(spec.alignment);
  }
  lay.bytes = b.str();
  return lay;
}

// The standard small image used by the malformed-file tests. The last
// tensor's size is a multiple of the alignment, so the image ends exactly
// where its data ends (no trailing padding): every proper prefix is truncated.
Spec StandardSpec() {
  Spec s;
  s.kvs = {
      {"general.architecture", Str("llama")},
      {"general.name", Str(std::string(64, 'n'))},
      {"test.u32", U32(7)},
      {"test.bool", Bool(true)},
      {"test.i32s", Arr(GgufType::kInt32, {I32(1), I32(-2), I32(3), I32(4)})},
      {"test.u64s", Arr(GgufType::kUint64, {U64(10), U64(20)})},
      {"test.strs", Arr(GgufType::kString, {Str("ab"), Str("cde")})},
      {"test.nested", Arr(GgufType::kArray, {Arr(GgufType::kInt32, {I32(1)}),
                                              Arr(GgufType::kInt32, {I32(2), I32(3)})})},
      {"test.str", Str("hello world")},
      {"test.last", Str("end")},
  };
  s.tensors = {
      RawTensor("a", {8, 2}, DType::kF32, 1),   // 64 bytes
      RawTensor("b", {32}, DType::kQ8_0, 2),    // 34 bytes, padded to 64
      RawTensor("c", {16}, DType::kF16, 3),     // 32 bytes, last, no padding
  };
  return s;
}

// Writer image and hand layout of a spec; they must agree byte for byte.
struct Image {
  std::string bytes;
  Layout lay;
};

Image MakeImage(const Spec& spec) {
  Image img;
  img.lay = HandBuild(spec);
  auto w = WriteSpec(spec);
  EXPECT_TRUE(w.ok()) << w.status();
  if (w.ok()) img.bytes = *w;
  EXPECT_EQ(img.bytes, img.lay.bytes) << "GgufWriter output differs from the hand-built layout";
  return img;
}

// ---------------------------------------------------------------------------
// 1. Metadata round trips and typed getters.

std::vector<std::pair<std::string, GgufValue>> AllTypesMetadata() {
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  const float finf = std::numeric_limits<float>::infinity();
  return {
      {"u8.zero", U8(0)},
      {"u8.max", U8(255)},
      {"i8.min", I8(-128)},
      {"i8.max", I8(127)},
      {"u16.max", U16(65535)},
      {"i16.min", I16(-32768)},
      {"u32.max", U32(0xffffffffu)},
      {"u32.seven", U32(7)},
      {"i32.min", I32(std::numeric_limits<int32_t>::min())},
      {"i32.pos", I32(123456)},
      {"i32.neg", I32(-5)},
      {"u64.max", U64(std::numeric_limits<uint64_t>::max())},
      {"u64.big", U64((uint64_t{1} << 63) + 12345)},
      {"u64.small", U64(42)},
      {"i64.neg", I64(-5)},
      {"i64.min", I64(std::numeric_limits<int64_t>::min())},
      {"i64.max", I64(std::numeric_limits<int64_t>::max())},
      {"f32", F32(3.5f)},
      {"f32.negzero", F32(-0.0f)},
      {"f32.nan", F32(fnan)},
      {"f32.inf", F32(-finf)},
      {"f32.tiny", F32(1e-45f)},
      {"f64", F64(3.141592653589793)},
      {"f64.precise", F64(0.1 + 0.2)},  // not representable as float
      {"bool.true", Bool(true)},
      {"bool.false", Bool(false)},
      {"str.empty", Str("")},
      {"str.ascii", Str("llama")},
      {"str.utf8", Str("h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\xa6\x99")},
      {"str.nul", Str(std::string("a\0b", 3))},
      {"str.all_bytes", Str([] {
         std::string s;
         for (int c = 0; c < 256; ++c) s.push_back(static_cast<char>(c));
         return s;
       }())},
      {"arr.u8", Arr(GgufType::kUint8, {U8(0), U8(1), U8(255)})},
      {"arr.i8", Arr(GgufType::kInt8, {I8(-128), I8(0), I8(127)})},
      {"arr.u16", Arr(GgufType::kUint16, {U16(1), U16(65535)})},
      {"arr.i16", Arr(GgufType::kInt16, {I16(-32768), I16(32767)})},
      {"arr.u32", Arr(GgufType::kUint32, {U32(0), U32(0xffffffffu)})},
      {"arr.i32", Arr(GgufType::kInt32, {I32(1), I32(-2), I32(3)})},
      {"arr.u64", Arr(GgufType::kUint64, {U64(std::numeric_limits<uint64_t>::max()), U64(0)})},
      {"arr.i64", Arr(GgufType::kInt64, {I64(-1), I64(std::numeric_limits<int64_t>::min())})},
      {"arr.f32", Arr(GgufType::kFloat32, {F32(1.5f), F32(-2.25f), F32(fnan)})},
      {"arr.f64", Arr(GgufType::kFloat64, {F64(1e300), F64(-1e-300)})},
      {"arr.bool", Arr(GgufType::kBool, {Bool(true), Bool(false), Bool(true)})},
      {"arr.str", Arr(GgufType::kString, {Str("a"), Str(""), Str("\xe4\xb8\x96"),
                                          Str(std::string("x\0y", 3))})},
      {"arr.nested", Arr(GgufType::kArray, {Arr(GgufType::kInt32, {I32(1), I32(2)}),
                                            Arr(GgufType::kInt32, {}),
                                            Arr(GgufType::kInt32, {I32(-3)})})},
      {"arr.empty.i32", Arr(GgufType::kInt32, {})},
      {"arr.empty.str", Arr(GgufType::kString, {})},
      {"arr.empty.u64", Arr(GgufType::kUint64, {})},
      {"arr.empty.arr", Arr(GgufType::kArray, {})},
      {"arr.deep4", Nested(4)},  // the deepest nesting the reader accepts
  };
}

class GgufMetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kvs_ = AllTypesMetadata();
    Spec spec;
    spec.kvs = kvs_;
    image_ = MakeImage(spec);
    auto f = GgufFile::FromBytes(image_.bytes, kSrc);
    ASSERT_TRUE(f.ok()) << f.status();
    file_ = std::move(*f);
  }

  std::vector<std::pair<std::string, GgufValue>> kvs_;
  Image image_;
  std::unique_ptr<GgufFile> file_;
};

TEST_F(GgufMetadataTest, EveryValueTypeRoundTrips) {
  EXPECT_EQ(file_->version(), 3u);
  EXPECT_EQ(file_->source(), kSrc);
  EXPECT_EQ(file_->alignment(), 32u);
  EXPECT_TRUE(file_->tensors().empty());
  EXPECT_EQ(file_->file_size(), image_.bytes.size());
  ASSERT_EQ(file_->metadata().size(), kvs_.size());
  for (size_t k = 0; k < kvs_.size(); ++k) {
    // File order is insertion order.
    EXPECT_EQ(file_->metadata()[k].first, kvs_[k].first);
    EXPECT_TRUE(SameValue(kvs_[k].second, file_->metadata()[k].second, kvs_[k].first));
    const GgufValue* found = file_->Find(kvs_[k].first);
    ASSERT_NE(found, nullptr) << kvs_[k].first;
    EXPECT_EQ(found, &file_->metadata()[k].second);
  }
  EXPECT_EQ(file_->Find("no.such.key"), nullptr);
  EXPECT_EQ(file_->Find(""), nullptr);
}

TEST_F(GgufMetadataTest, SpecificValuesSurvive) {
  EXPECT_EQ(file_->Find("u64.max")->u, 18446744073709551615ull);
  EXPECT_EQ(file_->Find("u64.big")->u, 9223372036854788153ull);
  EXPECT_EQ(file_->Find("i64.min")->i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(file_->Find("i8.min")->i, -128);
  EXPECT_TRUE(std::isnan(file_->Find("f32.nan")->f));
  EXPECT_TRUE(std::signbit(file_->Find("f32.negzero")->f));
  EXPECT_EQ(file_->Find("f64.precise")->f, 0.1 + 0.2);
  EXPECT_EQ(file_->Find("str.nul")->s.size(), 3u);
  EXPECT_EQ(file_->Find("str.nul")->s, std::string("a\0b", 3));
  EXPECT_EQ(file_->Find("str.all_bytes")->s.size(), 256u);
  EXPECT_EQ(file_->Find("str.utf8")->s, "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\xa6\x99");
  const GgufValue* nested = file_->Find("arr.nested");
  ASSERT_EQ(nested->arr.size(), 3u);
  EXPECT_EQ(nested->arr[0].type, GgufType::kArray);
  EXPECT_EQ(nested->arr[0].elem_type, GgufType::kInt32);
  EXPECT_EQ(nested->arr[0].arr[1].i, 2);
  EXPECT_TRUE(nested->arr[1].arr.empty());
  EXPECT_EQ(nested->arr[2].arr[0].i, -3);
  const GgufValue* empty_arr = file_->Find("arr.empty.arr");
  EXPECT_EQ(empty_arr->elem_type, GgufType::kArray);
  EXPECT_TRUE(empty_arr->arr.empty());
  const GgufValue* deep = file_->Find("arr.deep4");
  EXPECT_EQ(deep->arr[0].arr[0].arr[0].arr[0].i, 7);
}

TEST_F(GgufMetadataTest, GetUint) {
  EXPECT_EQ(file_->GetUint("u8.max").value(), 255u);
  EXPECT_EQ(file_->GetUint("u8.zero").value(), 0u);
  EXPECT_EQ(file_->GetUint("u16.max").value(), 65535u);
  EXPECT_EQ(file_->GetUint("u32.max").value(), 0xffffffffu);
  EXPECT_EQ(file_->GetUint("u64.small").value(), 42u);
  EXPECT_EQ(file_->GetUint("i32.pos").value(), 123456u);  // non-negative signed is fine
  EXPECT_EQ(file_->GetUint("i8.max").value(), 127u);
  EXPECT_EQ(file_->GetUint("i64.max").value(), static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  // Values above 2^63 are valid uint64 values.
  auto big = file_->GetUint("u64.big");
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(*big, (uint64_t{1} << 63) + 12345);
  auto max = file_->GetUint("u64.max");
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(*max, std::numeric_limits<uint64_t>::max());

  EXPECT_TRUE(HasError(file_->GetUint("missing.key").status(), absl::StatusCode::kNotFound,
                       {"missing key 'missing.key'"}));
  // Negative integers are out of range.
  EXPECT_TRUE(IsInvalid(file_->GetUint("i32.neg").status(), {"'i32.neg'", "-5", "unsigned"}));
  EXPECT_TRUE(IsInvalid(file_->GetUint("i64.neg").status(), {"'i64.neg'", "unsigned"}));
  EXPECT_TRUE(IsInvalid(file_->GetUint("i8.min").status(), {"'i8.min'", "-128"}));
  EXPECT_TRUE(IsInvalid(file_->GetUint("i64.min").status(), {"'i64.min'", "unsigned"}));
  // Wrong types.
  EXPECT_TRUE(IsInvalid(file_->GetUint("f32").status(), {"'f32'", "unsigned"}));
  EXPECT_TRUE(IsInvalid(file_->GetUint("str.ascii").status(), {"'str.ascii'", "unsigned"}));
  EXPECT_TRUE(IsInvalid(file_->GetUint("bool.true").status(), {"'bool.true'", "unsigned"}));
  EXPECT_TRUE(IsInvalid(file_->GetUint("arr.u32").status(), {"'arr.u32'", "unsigned"}));
}

TEST_F(GgufMetadataTest, GetFloat) {
  EXPECT_EQ(file_->GetFloat("f32").value(), 3.5);
  EXPECT_EQ(file_->GetFloat("f64").value(), 3.141592653589793);
  EXPECT_EQ(file_->GetFloat("f64.precise").value(), 0.1 + 0.2);
  EXPECT_TRUE(std::isnan(file_->GetFloat("f32.nan").value()));
  // Integers convert.
  EXPECT_EQ(file_->GetFloat("i64.neg").value(), -5.0);
  EXPECT_EQ(file_->GetFloat("u32.seven").value(), 7.0);
  EXPECT_EQ(file_->GetFloat("u8.max").value(), 255.0);
  auto big = file_->GetFloat("u64.big");
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(*big, static_cast<double>((uint64_t{1} << 63) + 12345));
  EXPECT_GT(*big, 0.0);
  EXPECT_EQ(file_->GetFloat("u64.max").value(), 18446744073709551615.0);

  EXPECT_TRUE(HasError(file_->GetFloat("nope").status(), absl::StatusCode::kNotFound,
                       {"missing key 'nope'"}));
  EXPECT_TRUE(IsInvalid(file_->GetFloat("str.ascii").status(), {"'str.ascii'", "string", "expected a number"}));
  EXPECT_TRUE(IsInvalid(file_->GetFloat("bool.true").status(), {"'bool.true'", "bool", "expected a number"}));
  EXPECT_TRUE(IsInvalid(file_->GetFloat("arr.f32").status(), {"'arr.f32'", "array", "expected a number"}));
}

TEST_F(GgufMetadataTest, GetString) {
  EXPECT_EQ(file_->GetString("str.ascii").value(), "llama");
  EXPECT_EQ(file_->GetString("str.empty").value(), "");
  EXPECT_EQ(file_->GetString("str.nul").value(), std::string("a\0b", 3));
  EXPECT_EQ(file_->GetString("str.utf8").value(), "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\xa6\x99");
  EXPECT_TRUE(HasError(file_->GetString("nope").status(), absl::StatusCode::kNotFound,
                       {"missing key 'nope'"}));
  EXPECT_TRUE(IsInvalid(file_->GetString("u32.seven").status(), {"'u32.seven'", "uint32", "expected string"}));
  EXPECT_TRUE(IsInvalid(file_->GetString("arr.str").status(), {"'arr.str'", "array", "expected string"}));
}

TEST_F(GgufMetadataTest, GetArray) {
  auto a = file_->GetArray("arr.i32", GgufType::kInt32);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ((*a)->arr.size(), 3u);
  EXPECT_EQ((*a)->arr[1].i, -2);
  EXPECT_EQ(*a, file_->Find("arr.i32"));
  auto s = file_->GetArray("arr.str", GgufType::kString);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->arr[2].s, "\xe4\xb8\x96");
  auto n = file_->GetArray("arr.nested", GgufType::kArray);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ((*n)->arr.size(), 3u);
  auto e = file_->GetArray("arr.empty.i32", GgufType::kInt32);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE((*e)->arr.empty());

  EXPECT_TRUE(HasError(file_->GetArray("nope", GgufType::kInt32).status(), absl::StatusCode::kNotFound,
                       {"missing key 'nope'"}));
  EXPECT_TRUE(IsInvalid(file_->GetArray("arr.i32", GgufType::kFloat32).status(),
                        {"'arr.i32'", "expected array of float32"}));
  EXPECT_TRUE(IsInvalid(file_->GetArray("arr.empty.str", GgufType::kInt32).status(),
                        {"'arr.empty.str'", "expected array of int32"}));
  EXPECT_TRUE(IsInvalid(file_->GetArray("u32.seven", GgufType::kUint32).status(),
                        {"'u32.seven'", "expected array of uint32"}));
  EXPECT_TRUE(IsInvalid(file_->GetArray("str.ascii", GgufType::kString).status(),
                        {"'str.ascii'", "expected array of string"}));
}

TEST(GgufValueTest, NamesAndDebugStrings) {
  EXPECT_STREQ(GgufTypeName(GgufType::kUint8), "uint8");
  EXPECT_STREQ(GgufTypeName(GgufType::kArray), "array");
  EXPECT_STREQ(GgufTypeName(GgufType::kFloat64), "float64");
  EXPECT_STREQ(GgufTypeName(static_cast<GgufType>(13)), "unknown");
  EXPECT_EQ(U64(std::numeric_limits<uint64_t>::max()).DebugString(), "18446744073709551615");
  EXPECT_EQ(I64(-5).DebugString(), "-5");
  EXPECT_EQ(Bool(true).DebugString(), "true");
  EXPECT_EQ(Str("hi").DebugString(), "\"hi\"");
  EXPECT_EQ(Arr(GgufType::kInt32, {I32(1), I32(2), I32(3)}).DebugString(), "int32[3] [1, 2, 3]");
  EXPECT_EQ(Arr(GgufType::kInt32, {I32(1), I32(2), I32(3)}).DebugString(2), "int32[3] [1, 2, ...]");
  EXPECT_TRUE(U8(1).is_integer());
  EXPECT_TRUE(I64(1).is_integer());
  EXPECT_FALSE(F32(1).is_integer());
  EXPECT_FALSE(Bool(true).is_integer());
  EXPECT_TRUE(F64(1).is_float());
}

TEST(GgufWriterTest, EncodeGgufValueMatchesTheFormat) {
  std::string out;
  EncodeGgufValue(U16(0x1234), &out);
  EXPECT_EQ(out, std::string("\x34\x12", 2));
  out.clear();
  EncodeGgufValue(Str("ab"), &out);
  EXPECT_EQ(out, std::string("\x02\0\0\0\0\0\0\0ab", 10));
  out.clear();
  EncodeGgufValue(Arr(GgufType::kInt8, {I8(-1), I8(2)}), &out);
  EXPECT_EQ(out, std::string("\x01\0\0\0\x02\0\0\0\0\0\0\0\xff\x02", 14));
  out.clear();
  EncodeGgufValue(Bool(true), &out);
  EXPECT_EQ(out, std::string("\x01", 1));
}

TEST(GgufWriterTest, ConvenienceAddersRoundTrip) {
  GgufWriter w;
  w.AddString("s", "v");
  w.AddUint32("u", 4000000000u);
  w.AddFloat32("f", -1.25f);
  w.AddStringArray("sa", {"x", "", "yz"});
  w.AddFloat32Array("fa", {0.5f, 2.0f});
  w.AddInt32Array("ia", {-1, 0, 2147483647});
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto f = GgufFile::FromBytes(*bytes, kSrc);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->GetString("s").value(), "v");
  EXPECT_EQ((*f)->GetUint("u").value(), 4000000000u);
  EXPECT_EQ((*f)->Find("u")->type, GgufType::kUint32);
  EXPECT_EQ((*f)->GetFloat("f").value(), -1.25);
  EXPECT_EQ((*f)->Find("f")->type, GgufType::kFloat32);
  const GgufValue* sa = (*f)->GetArray("sa", GgufType::kString).value();
  ASSERT_EQ(sa->arr.size(), 3u);
  EXPECT_EQ(sa->arr[2].s, "yz");
  const GgufValue* fa = (*f)->GetArray("fa", GgufType::kFloat32).value();
  ASSERT_EQ(fa->arr.size(), 2u);
  EXPECT_EQ(fa->arr[0].f, 0.5);
  const GgufValue* ia = (*f)->GetArray("ia", GgufType::kInt32).value();
  ASSERT_EQ(ia->arr.size(), 3u);
  EXPECT_EQ(ia->arr[0].i, -1);
  EXPECT_EQ(ia->arr[2].i, 2147483647);
}

// ---------------------------------------------------------------------------
// 2. Tensor infos, data and alignment.

struct FloatTensor {
  std::string name;
  std::vector<int64_t> dims;
  DType type;
  std::vector<float> values;
};

std::vector<FloatTensor> FloatTensors() {
  auto values = [](int64_t n, float scale) {
    std::vector<float> v(n);
    for (int64_t k = 0; k < n; ++k) v[k] = scale * std::sin(0.37f * k + 0.1f);
    return v;
  };
  return {
      {"token_embd.weight", {4, 3}, DType::kF32, values(12, 1.0f)},
      {"blk.0.attn_q.weight", {8, 2, 2}, DType::kF16, values(32, 2.0f)},
      {"blk.0.ffn_up.weight", {64, 2}, DType::kQ8_0, values(128, 3.0f)},
      {"blk.0.ffn_down.weight", {32, 1, 2, 2}, DType::kQ4_0, values(128, 0.5f)},
      {"output_norm.weight", {5}, DType::kBF16, values(5, 1.5f)},
      {"rope.freqs", {3, 1}, DType::kF32, values(3, 4.0f)},
  };
}

std::string EncodeRows(const FloatTensor& t) {
  const int64_t row = t.dims[0];
  const uint64_t row_bytes = RowBytes(t.type, row).value();
  std::string out;
  for (size_t r = 0; r * row < t.values.size(); ++r) {
    std::string buf(row_bytes, '\0');
    EXPECT_TRUE(QuantizeRow(t.type, t.values.data() + r * row, row, buf.data()).ok());
    out += buf;
  }
  return out;
}

void CheckTensorFile(const GgufFile& f, const std::vector<FloatTensor>& specs, uint64_t alignment) {
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u) << f.data_offset();
  EXPECT_GT(f.data_offset(), 0u);
  ASSERT_EQ(f.tensors().size(), specs.size());
  uint64_t expected_offset = 0;
  for (size_t k = 0; k < specs.size(); ++k) {
    const FloatTensor& s = specs[k];
    const GgufTensorInfo& t = f.tensors()[k];
    SCOPED_TRACE(s.name);
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(t.dims, s.dims);
    EXPECT_EQ(t.type, s.type);
    EXPECT_EQ(t.num_elements, Elements(s.dims));
    EXPECT_EQ(t.num_elements, static_cast<int64_t>(s.values.size()));
    EXPECT_EQ(t.size_bytes, RowBytes(s.type, Elements(s.dims)).value());
    EXPECT_EQ(t.offset, expected_offset);
    EXPECT_EQ(t.offset % alignment, 0u);
    expected_offset += (t.size_bytes + alignment - 1) / alignment * alignment;
    EXPECT_LE(f.data_offset() + t.offset + t.size_bytes, f.file_size());
    const std::string want = EncodeRows(s);
    ASSERT_EQ(want.size(), t.size_bytes);
    ASSERT_NE(t.data, nullptr);
    EXPECT_EQ(std::memcmp(t.data, want.data(), want.size()), 0);
    EXPECT_EQ(f.FindTensor(s.name), &t);
    // The data really is the floats: dequantize the first row.
    std::vector<float> row(s.dims[0]);
    ASSERT_TRUE(DequantizeRow(t.type, t.data, s.dims[0], row.data()).ok());
    if (t.type == DType::kF32) {
      for (int64_t j = 0; j < s.dims[0]; ++j) EXPECT_EQ(row[j], s.values[j]);
    } else {
      for (int64_t j = 0; j < s.dims[0]; ++j) EXPECT_NEAR(row[j], s.values[j], 0.35f) << j;
    }
  }
  EXPECT_EQ(f.FindTensor("no.such.tensor"), nullptr);
  EXPECT_EQ(f.FindTensor(""), nullptr);
  EXPECT_EQ(f.FindTensor("token_embd"), nullptr);  // prefix only
}

TEST(GgufTensorTest, TensorInfosAndDataMatchWhatWasWritten) {
  for (const uint64_t alignment : {uint64_t{32}, uint64_t{64}, uint64_t{256}}) {
    for (const bool explicit_key : {false, true}) {
      SCOPED_TRACE(absl::StrCat("alignment ", alignment, explicit_key ? " (explicit key)" : ""));
      const std::vector<FloatTensor> specs = FloatTensors();
      GgufWriter w(alignment);
      w.AddString("general.architecture", "llama");
      if (explicit_key) w.AddUint32("general.alignment", static_cast<uint32_t>(alignment));
      for (const FloatTensor& s : specs) {
        ASSERT_TRUE(w.AddTensorFromFloats(s.name, s.dims, s.type, s.values).ok()) << s.name;
      }
      auto bytes = w.Serialize();
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      auto f = GgufFile::FromBytes(*bytes, kSrc);
      ASSERT_TRUE(f.ok()) << f.status();
      // A writer with a non-default alignment must declare it, or readers
      // would look for the data at 32-byte boundaries.
      if (alignment != 32 || explicit_key) {
        EXPECT_EQ((*f)->GetUint("general.alignment").value_or(0), alignment);
      }
      EXPECT_EQ((*f)->GetString("general.architecture").value(), "llama");
      CheckTensorFile(**f, specs, alignment);
    }
  }
}

TEST(GgufTensorTest, WriteToDiskAndOpenMapsTheSameData) {
  const std::vector<FloatTensor> specs = FloatTensors();
  GgufWriter w(64);
  w.AddString("general.architecture", "llama");
  for (const FloatTensor& s : specs) ASSERT_TRUE(w.AddTensorFromFloats(s.name, s.dims, s.type, s.values).ok());
  const std::string path = testing::TempPath("written.gguf");
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  ASSERT_TRUE(w.Write(path, [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); }).ok());
  EXPECT_EQ(progress.size(), specs.size());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->source(), path);
  CheckTensorFile(**f, specs, 64);
  // Serialize and Write produce the same bytes.
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ((*f)->file_size(), bytes->size());
}

TEST(GgufTensorTest, RawTensorsAndHandLayoutAgree) {
  const Image img = MakeImage(StandardSpec());
  auto f = GgufFile::FromBytes(img.bytes, kSrc);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->data_offset(), img.lay.data_offset);
  EXPECT_EQ(img.bytes.size(), img.lay.data_offset + img.lay.tensor.at("c").rel_offset + 32);
  for (const TensorSpec& s : StandardSpec().tensors) {
    const GgufTensorInfo* t = (*f)->FindTensor(s.name);
    ASSERT_NE(t, nullptr) << s.name;
    EXPECT_EQ(t->offset, img.lay.tensor.at(s.name).rel_offset);
    EXPECT_EQ(t->size_bytes, s.data.size());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t->data), t->size_bytes), s.data) << s.name;
  }
  EXPECT_THAT((*f)->FindTensor("a")->dims, ElementsAre(8, 2));
  EXPECT_EQ((*f)->FindTensor("b")->size_bytes, 34u);
  EXPECT_EQ((*f)->FindTensor("b")->offset, 64u);
  EXPECT_EQ((*f)->FindTensor("c")->offset, 128u);
}

TEST(GgufTensorTest, FourDimsAcceptedAndHugeButValidDimsAreBoundsChecked) {
  Spec spec;
  spec.tensors = {RawTensor("t4", {32, 2, 1, 3}, DType::kQ8_0, 9)};
  Image img = MakeImage(spec);
  ASSERT_TRUE(ParseStatus(img.bytes).ok());
  // A plausible single dimension whose data is not in the file.
  const TensorLayout& t = img.lay.tensor.at("t4");
  Patch<uint64_t>(&img.bytes, t.dims_off + 8, uint64_t{1} << 30);
  EXPECT_TRUE(IsInvalid(ParseStatus(img.bytes), {"tensor 't4' data", "lies outside the file"}));
}

// ---------------------------------------------------------------------------
// 3. Versions and endianness.

class GgufFormatTest : public ::testing::Test {
 protected:
  void SetUp() override { img_ = MakeImage(StandardSpec()); }
  std::string Good() const { return img_.bytes; }
  const KvLayout& Kv(const std::string& key) const { return img_.lay.kv.at(key); }
  const TensorLayout& Tensor(const std::string& name) const { return img_.lay.tensor.at(name); }
  Image img_;
};

TEST_F(GgufFormatTest, StandardImageParses) {
  auto f = GgufFile::FromBytes(Good(), kSrc);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->metadata().size(), 10u);
  EXPECT_EQ((*f)->tensors().size(), 3u);
}

TEST_F(GgufFormatTest, Version2Accepted) {
  std::string b = Good();
  Patch<uint32_t>(&b, Layout::kVersionOff, 2);
  auto f = GgufFile::FromBytes(b, kSrc);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 2u);
  auto v3 = GgufFile::FromBytes(Good(), kSrc);
  ASSERT_TRUE(v3.ok());
  ASSERT_EQ((*f)->metadata().size(), (*v3)->metadata().size());
  for (size_t k = 0; k < (*f)->metadata().size(); ++k) {
    EXPECT_EQ((*f)->metadata()[k].first, (*v3)->metadata()[k].first);
    EXPECT_TRUE(SameValue((*v3)->metadata()[k].second, (*f)->metadata()[k].second,
                          (*f)->metadata()[k].first));
  }
  ASSERT_EQ((*f)->tensors().size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    const GgufTensorInfo& a = (*f)->tensors()[k];
    const GgufTensorInfo& b3 = (*v3)->tensors()[k];
    EXPECT_EQ(a.name, b3.name);
    EXPECT_EQ(a.dims, b3.dims);
    EXPECT_EQ(a.offset, b3.offset);
    EXPECT_EQ(std::memcmp(a.data, b3.data, a.size_bytes), 0);
  }
}

TEST_F(GgufFormatTest, Version1Rejected) {
  std::string b = Good();
  Patch<uint32_t>(&b, Layout::kVersionOff, 1);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"version 1", "not supported"}));
}

TEST_F(GgufFormatTest, Version4Rejected) {
  std::string b = Good();
  Patch<uint32_t>(&b, Layout::kVersionOff, 4);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"unsupported GGUF version 4"}));
}

TEST_F(GgufFormatTest, Version0AndHugeVersionRejected) {
  std::string b = Good();
  Patch<uint32_t>(&b, Layout::kVersionOff, 0);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"unsupported GGUF version 0"}));
  Patch<uint32_t>(&b, Layout::kVersionOff, 0xdeadbeef);
  EXPECT_TRUE(IsInvalid(ParseStatus(b), {"unsupported GGUF version 3735928559"}));
}

TEST_F(GgufFormatTest, BigEndianRejected) {
  // A big-endian GGUF keeps the 'GGUF' bytes but stores the version (and
  // everything else) big-endian.
  for (const uint8_t v : {uint8_t{2}, uint8_t{3}}) {
    std::string b = Good();
    b[4] = 0;
    b[5] = 0;
    b[6] = 0;
    b[7] = static_cast<char>(v);
    EXPECT_TRUE(IsInvalid(ParseStatus(b), {"big-endian"})) << int{v};
  }
}

// ---------------------------------------------------------------------------
// 4. Malformed files. Each test asserts the specific error.

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
// 5. Fuzz-style robustness.

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

// ---------------------------------------------------------------------------
// 6. The real model.

TEST(GgufRealModelTest, Stories260K) {
  const std::string path = testing::ModelPath("stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "stories260K.gguf not found under ../shared/models";
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.source(), path);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.metadata().size(), 19u);
  EXPECT_EQ(g.tensors().size(), 48u);
  EXPECT_EQ(g.GetString("general.architecture").value(), "llama");
  EXPECT_EQ(g.GetUint("llama.embedding_length").value(), 64u);
  const GgufTensorInfo* emb = g.FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_THAT(emb->dims, ElementsAre(64, 512));
  EXPECT_EQ(emb->type, DType::kF32);
  EXPECT_EQ(emb->num_elements, 64 * 512);
  EXPECT_EQ(emb->size_bytes, 64u * 512u * 4u);
  auto tokens = g.GetArray("tokenizer.ggml.tokens", GgufType::kString);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ((*tokens)->arr.size(), 512u);
  EXPECT_EQ((*tokens)->arr[3].s, "<0x00>");
  EXPECT_EQ(g.data_offset() % g.alignment(), 0u);
  for (const GgufTensorInfo& t : g.tensors()) {
    EXPECT_EQ(t.offset % g.alignment(), 0u) << t.name;
    EXPECT_LE(g.data_offset() + t.offset + t.size_bytes, g.file_size()) << t.name;
  }
  // Embedding values are finite floats.
  std::vector<float> row(64);
  ASSERT_TRUE(DequantizeRow(emb->type, emb->data, 64, row.data()).ok());
  for (float v : row) EXPECT_TRUE(std::isfinite(v));
}

// ---------------------------------------------------------------------------
// 7. Open() errors.

TEST(GgufOpenTest, MissingPathIsNotFoundNamingThePath) {
  const std::string path = testing::TempPath("does_not_exist.gguf");
  auto f = GgufFile::Open(path);
  EXPECT_TRUE(HasError(f.status(), absl::StatusCode::kNotFound, {"cannot open"}, path));
}

TEST(GgufOpenTest, DirectoryIsRejected) {
  const std::string dir = testing::TempPath("a_directory.gguf");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  auto f = GgufFile::Open(dir);
  EXPECT_TRUE(HasError(f.status(), absl::StatusCode::kInvalidArgument, {"not a regular file"}, dir));
}

TEST(GgufOpenTest, TruncatedFileOnDiskNamesThePath) {
  const std::string full = MakeImage(StandardSpec()).bytes;
  const std::string path = testing::WriteTempFile("truncated.gguf", full.substr(0, full.size() / 2));
  auto f = GgufFile::Open(path);
  EXPECT_TRUE(HasError(f.status(), absl::StatusCode::kInvalidArgument, {"truncated"}, path));
}

TEST(GgufOpenTest, EmptyAndGarbageFilesOnDisk) {
  const std::string empty = testing::WriteTempFile("empty.gguf", "");
  EXPECT_TRUE(HasError(GgufFile::Open(empty).status(), absl::StatusCode::kInvalidArgument,
                       {"not a GGUF file", "0 bytes"}, empty));
  const std::string garbage = testing::WriteTempFile("garbage.gguf", "this is not a model file");
  EXPECT_TRUE(HasError(GgufFile::Open(garbage).status(), absl::StatusCode::kInvalidArgument,
                       {"bad magic"}, garbage));
}

TEST(GgufOpenTest, ValidFileOnDisk) {
  const std::string bytes = MakeImage(StandardSpec()).bytes;
  const std::string path = testing::WriteTempFile("valid.gguf", bytes);
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->file_size(), bytes.size());
  const GgufTensorInfo* c = (*f)->FindTensor("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c->data), c->size_bytes), RawTensor("c", {16}, DType::kF16, 3).data);
}

}  // namespace
}  // namespace shardlm
