#include "core/model_presets.h"

#include <memory>

#include "core/gguf.h"
#include "core/model_config.h"
#include "core/synthetic_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

TEST(ModelPresetsTest, ShapesOfTheNamedModels) {
  auto tiny = FindModelPreset("tiny");
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  EXPECT_EQ(tiny->spec.dim, 64);
  EXPECT_EQ(tiny->spec.ffn_dim, 192);
  EXPECT_EQ(tiny->spec.n_layers, 2);
  EXPECT_EQ(tiny->spec.n_heads, 8);
  EXPECT_EQ(tiny->spec.n_kv_heads, 4);
  EXPECT_EQ(tiny->spec.vocab_size, 512);
  EXPECT_EQ(tiny->spec.context_length, 256);

  auto l8 = FindModelPreset("llama3-8b");
  ASSERT_TRUE(l8.ok());
  EXPECT_EQ(l8->spec.rope_theta, 500000.0f);
  EXPECT_EQ(SyntheticParameterCount(l8->spec), 8030261248);  // Meta's published count
  auto l7 = FindModelPreset("llama2-7b");
  ASSERT_TRUE(l7.ok());
  EXPECT_EQ(SyntheticParameterCount(l7->spec), 6738415616);
  auto l1 = FindModelPreset("llama3-1b");
  ASSERT_TRUE(l1.ok());
  EXPECT_EQ(SyntheticParameterCount(l1->spec), 1235814400);
  for (const ModelPreset& p : ModelPresets()) {
    EXPECT_TRUE(ValidateSyntheticModelSpec(p.spec).ok()) << p.name;
    EXPECT_EQ(p.spec.name, p.name);
  }
}

TEST(ModelPresetsTest, UnknownPresetListsTheKnownOnes) {
  auto p = FindModelPreset("llama9-1t");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(p.status().message(), HasSubstr("llama9-1t"));
  EXPECT_THAT(p.status().message(), HasSubstr("tiny, small, llama3-1b, llama2-7b, llama3-8b"));
}

TEST(ModelPresetsTest, PredictedSizeMatchesTheWrittenFile) {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    for (bool tied : {false, true}) {
      SyntheticModelSpec spec = FindModelPreset("tiny")->spec;
      spec.type = type;
      spec.tied_output = tied;
      spec.ffn_dim = 200;  // ffn_down rows not whole blocks: stays f32
      const std::string path = testing::TempPath("preset.gguf");
      ASSERT_TRUE(WriteSyntheticModel(spec, path).ok());
      auto file = GgufFile::Open(path);
      ASSERT_TRUE(file.ok());
      auto predicted = SyntheticFileSize(spec);
      ASSERT_TRUE(predicted.ok());
      EXPECT_EQ(*predicted, (*file)->file_size()) << DTypeName(type) << (tied ? " tied" : "");
      int64_t params = 0;
      for (const GgufTensorInfo& t : (*file)->tensors()) params += t.num_elements;
      EXPECT_EQ(SyntheticParameterCount(spec), params);
      EXPECT_TRUE(LlamaConfigFromGguf(**file).ok());
    }
  }
}

}  // namespace
}  // namespace shardlm
