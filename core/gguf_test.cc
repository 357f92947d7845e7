// Tests of the GGUF reader (core/gguf.h) and writer (core/gguf_writer.h):
// metadata round trips of every value type, tensor infos and data, custom
// alignment, versions, the real stories260K model and GgufFile::Open errors.
// Malformed files, the truncation sweep and the fuzz loop are in
// core/gguf_malformed_test.cc; shared helpers in core/gguf_test_util.h.
#include "core/gguf.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/gguf_test_util.h"
#include "core/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm::gguf_testing {
namespace {

using ::testing::ElementsAre;

// ---------------------------------------------------------------------------
// 1. Metadata round trips and typed getters.

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
// 3. Versions and endianness (fixture GgufFormatTest in core/gguf_test_util.h).

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
// 4. The real model.

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
// 5. Open() errors.

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
}  // namespace shardlm::gguf_testing
