// Helpers shared by the GGUF tests; see core/gguf_test_util.h.
#include "core/gguf_test_util.h"

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "gtest/gtest.h"

namespace shardlm::gguf_testing {

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
                                    absl::string_view source) {
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

Image MakeImage(const Spec& spec) {
  Image img;
  img.lay = HandBuild(spec);
  auto w = WriteSpec(spec);
  EXPECT_TRUE(w.ok()) << w.status();
  if (w.ok()) img.bytes = *w;
  EXPECT_EQ(img.bytes, img.lay.bytes) << "GgufWriter output differs from the hand-built layout";
  return img;
}

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

}  // namespace shardlm::gguf_testing
