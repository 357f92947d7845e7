#include "core/model_config.h"

#include "core/gguf_writer.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

TEST(ModelConfigTest, Stories260K) {
  const std::string path = testing::ModelPath("stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto c = LlamaConfigFromGguf(**file);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dim, 64);
  EXPECT_EQ(c->ffn_dim, 172);
  EXPECT_EQ(c->n_layers, 5);
  EXPECT_EQ(c->n_heads, 8);
  EXPECT_EQ(c->n_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->rope_dim, 8);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_NEAR(c->rms_eps, 1e-5, 1e-12);
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->context_length, 2048);
}

GgufWriter BaseWriter() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.context_length", 128);
  w.AddUint32("llama.embedding_length", 64);
  w.AddUint32("llama.feed_forward_length", 96);
  w.AddUint32("llama.block_count", 1);
  w.AddUint32("llama.attention.head_count", 8);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  return w;
}

absl::StatusOr<LlamaConfig> Parse(GgufWriter& w) {
  EXPECT_TRUE(w.AddTensorFromFloats("token_embd.weight", {64, 10}, DType::kF32,
                                    std::vector<float>(640)).ok());
  auto file = GgufFile::FromBytes(*w.Serialize(), "test.gguf");
  if (!file.ok()) return file.status();
  return LlamaConfigFromGguf(**file);
}

TEST(ModelConfigTest, DefaultsWhenOptionalKeysAbsent) {
  GgufWriter w = BaseWriter();
  auto c = Parse(w);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->n_kv_heads, 8);
  EXPECT_EQ(c->rope_dim, 8);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->vocab_size, 10);
}

TEST(ModelConfigTest, ErrorsNameTheKey) {
  {
    GgufWriter w = BaseWriter();
    w.AddUint32("llama.attention.head_count_kv", 3);
    EXPECT_NE(Parse(w).status().message().find("head_count_kv"), std::string::npos);
  }
  {
    GgufWriter w = BaseWriter();
    w.AddUint32("llama.rope.dimension_count", 9);
    EXPECT_NE(Parse(w).status().message().find("rope.dimension_count"), std::string::npos);
  }
  {
    GgufWriter w;
    w.AddString("general.architecture", "gpt2");
    EXPECT_NE(Parse(w).status().message().find("unsupported architecture 'gpt2'"),
              std::string::npos);
  }
  {
    GgufWriter w;
    w.AddString("general.architecture", "llama");
    EXPECT_NE(Parse(w).status().message().find("llama.context_length"), std::string::npos);
  }
}

}  // namespace
}  // namespace shardlm
