#include "core/quantize.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/dtype.h"
#include "core/gguf.h"
#include "core/model_config.h"
#include "core/synthetic_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

// A small llama whose ffn_down rows (172) are not whole 32-element blocks.
SyntheticModelSpec SmallSpec(DType type = DType::kF32) {
  SyntheticModelSpec s;
  s.dim = 64;
  s.ffn_dim = 172;
  s.n_layers = 2;
  s.n_heads = 8;
  s.n_kv_heads = 4;
  s.vocab_size = 300;
  s.context_length = 128;
  s.type = type;
  s.seed = 5;
  return s;
}

std::string WriteModel(const SyntheticModelSpec& spec, const std::string& name) {
  const std::string path = testing::TempPath(name);
  const absl::Status s = WriteSyntheticModel(spec, path);
  EXPECT_TRUE(s.ok()) << s;
  return path;
}

std::unique_ptr<GgufFile> Open(const std::string& path) {
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? std::move(*file) : nullptr;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::vector<float> Dequantize(const GgufTensorInfo& t) {
  std::vector<float> out(t.num_elements);
  const absl::Status s = DequantizeRow(t.type, t.data, t.num_elements, out.data());
  EXPECT_TRUE(s.ok()) << t.name << ": " << s;
  return out;
}

// Largest error of `got` against `want`, per 32-element block, relative to
// the block's largest magnitude.
double MaxRelativeBlockError(const std::vector<float>& want, const std::vector<float>& got) {
  double worst = 0;
  for (size_t b = 0; b < want.size(); b += kQK) {
    double amax = 0, err = 0;
    for (size_t i = b; i < std::min(want.size(), b + kQK); ++i) {
      amax = std::max(amax, std::fabs(double{want[i]}));
      err = std::max(err, std::fabs(double{want[i]} - got[i]));
    }
    if (amax > 0) worst = std::max(worst, err / amax);
  }
  return worst;
}

class QuantizeRoundTripTest : public ::testing::TestWithParam<DType> {};

TEST_P(QuantizeRoundTripTest, TypesMetadataAndValues) {
  const DType target = GetParam();
  const std::string in_path = WriteModel(SmallSpec(), "in.gguf");
  const std::string out_path = testing::TempPath("out.gguf");
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  QuantizeOptions options;
  options.type = target;
  options.progress = [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); };
  auto stats = QuantizeModel(in_path, out_path, options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(Exists(out_path + ".partial"));

  auto in = Open(in_path);
  auto out = Open(out_path);
  ASSERT_NE(in, nullptr);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->version(), 3u);
  ASSERT_TRUE(LlamaConfigFromGguf(*out).ok());

  // Tensors: same names, shapes and order; quantized unless 1-D or 172-wide.
  ASSERT_EQ(out->tensors().size(), in->tensors().size());
  int64_t quantized = 0;
  for (size_t i = 0; i < in->tensors().size(); ++i) {
    const GgufTensorInfo& a = in->tensors()[i];
    const GgufTensorInfo& b = out->tensors()[i];
    ASSERT_EQ(a.name, b.name);
    EXPECT_EQ(a.dims, b.dims) << a.name;
    const bool keep = a.dims.size() == 1 || absl::StrContains(a.name, "ffn_down");
    EXPECT_EQ(b.type, keep ? DType::kF32 : target) << a.name;
    if (keep) {
      ASSERT_EQ(a.size_bytes, b.size_bytes);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.size_bytes), 0) << a.name << " changed";
      continue;
    }
    ++quantized;
    const double bound = target == DType::kQ8_0 ? 0.01 : 0.14;
    EXPECT_LT(MaxRelativeBlockError(Dequantize(a), Dequantize(b)), bound) << a.name;
  }
  EXPECT_EQ(out->tensors()[out->tensors().size() - 1].name, in->tensors().back().name);
  EXPECT_NE(out->FindTensor("token_embd.weight"), nullptr);
  EXPECT_EQ(out->FindTensor("token_embd.weight")->type, target);
  EXPECT_EQ(stats->tensors_quantized, quantized);
  EXPECT_EQ(stats->tensors_kept, static_cast<int64_t>(in->tensors().size()) - quantized);
  EXPECT_TRUE(stats->kept_all_f32);
  EXPECT_EQ(stats->input_file_bytes, in->file_size());
  EXPECT_EQ(stats->output_file_bytes, out->file_size());
  EXPECT_LT(out->file_size(), in->file_size());

  // Metadata: every key in order, equal values except general.file_type.
  ASSERT_GE(out->metadata().size(), in->metadata().size());
  for (size_t i = 0; i < in->metadata().size(); ++i) {
    const auto& [key, value] = in->metadata()[i];
    EXPECT_EQ(out->metadata()[i].first, key);
    if (key == "general.file_type") continue;
    EXPECT_EQ(out->metadata()[i].second.DebugString(1 << 20), value.DebugString(1 << 20)) << key;
  }
  EXPECT_EQ(*out->GetUint("general.file_type"), target == DType::kQ8_0 ? 7u : 2u);
  EXPECT_EQ(*out->GetUint("general.quantization_version"), 2u);

  // Progress: increasing, ending at the total.
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, progress.back().second);
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GT(progress[i].first, progress[i - 1].first);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeRoundTripTest,
                         ::testing::Values(DType::kQ8_0, DType::kQ4_0),
                         [](const auto& info) { return DTypeName(info.param); });

TEST(QuantizeTest, F16InputNormsBecomeF32) {
  const std::string in_path = WriteModel(SmallSpec(DType::kF16), "f16.gguf");
  const std::string out_path = testing::TempPath("f16_q8.gguf");
  QuantizeOptions options;
  auto stats = QuantizeModel(in_path, out_path, options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  auto out = Open(out_path);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->FindTensor("blk.0.attn_q.weight")->type, DType::kQ8_0);
  EXPECT_EQ(out->FindTensor("blk.0.attn_norm.weight")->type, DType::kF32);
  // 172-wide rows cannot be quantized: they stay f16.
  EXPECT_EQ(out->FindTensor("blk.1.ffn_down.weight")->type, DType::kF16);
  EXPECT_FALSE(stats->kept_all_f32);
}

TEST(QuantizeTest, RejectsQuantizedInput) {
  const std::string in_path = WriteModel(SmallSpec(DType::kQ8_0), "q8.gguf");
  const std::string out_path = testing::TempPath("q8_again.gguf");
  QuantizeOptions options;
  options.type = DType::kQ4_0;
  auto stats = QuantizeModel(in_path, out_path, options);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(stats.status().message(), HasSubstr("token_embd.weight is q8_0"));
  EXPECT_THAT(stats.status().message(), HasSubstr("input must be f32/f16/bf16"));
  EXPECT_FALSE(Exists(out_path));
  EXPECT_FALSE(Exists(out_path + ".partial"));
}

TEST(QuantizeTest, MissingInputIsAnError) {
  const std::string in_path = testing::TempPath("no_such_model.gguf");
  const std::string out_path = testing::TempPath("never.gguf");
  auto stats = QuantizeModel(in_path, out_path, QuantizeOptions());
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(stats.status().message(), HasSubstr("no_such_model.gguf"));
  EXPECT_FALSE(Exists(out_path));
}

TEST(QuantizeTest, RefusesToOverwriteTheInput) {
  const std::string in_path = WriteModel(SmallSpec(), "self.gguf");
  auto before = Open(in_path);
  ASSERT_NE(before, nullptr);
  const uint64_t size = before->file_size();
  auto stats = QuantizeModel(in_path, in_path, QuantizeOptions());
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(stats.status().message(), HasSubstr("is the input file"));
  // The same file through another spelling of its path.
  const std::string dir = in_path.substr(0, in_path.rfind('/'));
  const std::string other = dir + "/./" + in_path.substr(in_path.rfind('/') + 1);
  stats = QuantizeModel(in_path, other, QuantizeOptions());
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(stats.status().message(), HasSubstr("is the input file"));
  auto after = Open(in_path);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->file_size(), size);
}

TEST(QuantizeTest, RejectsNonQuantizedTargets) {
  const std::string in_path = WriteModel(SmallSpec(), "target.gguf");
  QuantizeOptions options;
  options.type = DType::kF16;
  auto stats = QuantizeModel(in_path, testing::TempPath("f16_out.gguf"), options);
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(stats.status().message(), HasSubstr("expected q8_0 or q4_0"));
}

TEST(QuantizeTest, TensorTypeRules) {
  GgufTensorInfo norm{"n", {64}, DType::kF16};
  GgufTensorInfo matrix{"m", {64, 10}, DType::kF32};
  GgufTensorInfo odd{"o", {172, 64}, DType::kBF16};
  GgufTensorInfo cube{"c", {32, 2, 2}, DType::kF32};
  EXPECT_EQ(QuantizedTensorType(norm, DType::kQ4_0), DType::kF32);
  EXPECT_EQ(QuantizedTensorType(matrix, DType::kQ4_0), DType::kQ4_0);
  EXPECT_EQ(QuantizedTensorType(odd, DType::kQ8_0), DType::kBF16);
  EXPECT_EQ(QuantizedTensorType(cube, DType::kQ8_0), DType::kF32);
  EXPECT_EQ(LlamaFileType(DType::kQ8_0), 7u);
  EXPECT_EQ(LlamaFileType(DType::kQ4_0), 2u);
}

}  // namespace
}  // namespace shardlm
