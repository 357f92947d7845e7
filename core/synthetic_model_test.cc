#include "core/synthetic_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "core/model_config.h"
#include "core/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

SyntheticModelSpec SmallSpec() {
  SyntheticModelSpec s;
  s.dim = 64;
  s.ffn_dim = 80;
  s.n_layers = 2;
  s.n_heads = 8;
  s.n_kv_heads = 2;
  s.vocab_size = 300;
  s.context_length = 128;
  s.rope_theta = 500000.0f;
  s.rms_eps = 1e-6f;
  s.name = "tiny";
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<GgufFile> WriteAndOpen(const SyntheticModelSpec& spec, const std::string& name) {
  const std::string path = testing::TempPath(name);
  const absl::Status written = WriteSyntheticModel(spec, path);
  EXPECT_TRUE(written.ok()) << written;
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? std::move(*file) : nullptr;
}

TEST(SyntheticModelTest, ConfigAndMetadataMatchSpec) {
  const SyntheticModelSpec spec = SmallSpec();
  auto file = WriteAndOpen(spec, "config.gguf");
  ASSERT_NE(file, nullptr);
  auto config = LlamaConfigFromGguf(*file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, "llama");
  EXPECT_EQ(config->dim, 64);
  EXPECT_EQ(config->ffn_dim, 80);
  EXPECT_EQ(config->n_layers, 2);
  EXPECT_EQ(config->n_heads, 8);
  EXPECT_EQ(config->n_kv_heads, 2);
  EXPECT_EQ(config->head_dim, 8);
  EXPECT_EQ(config->rope_dim, 8);
  EXPECT_EQ(config->vocab_size, 300);
  EXPECT_EQ(config->context_length, 128);
  EXPECT_EQ(config->rope_theta, 500000.0);
  EXPECT_EQ(config->rms_eps, static_cast<double>(1e-6f));

  EXPECT_EQ(*file->GetString("general.name"), "tiny");
  EXPECT_EQ(*file->GetString("tokenizer.ggml.model"), "llama");
  for (const char* key : {"llama.context_length", "llama.embedding_length",
                          "llama.feed_forward_length", "llama.block_count",
                          "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.rope.dimension_count", "tokenizer.ggml.bos_token_id",
                          "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
    const GgufValue* v = file->Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->type, GgufType::kUint32) << key;
  }
  for (const char* key : {"llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"}) {
    const GgufValue* v = file->Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->type, GgufType::kFloat32) << key;
  }
  EXPECT_EQ(*file->GetUint("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(*file->GetUint("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_EQ(*file->GetUint("tokenizer.ggml.unknown_token_id"), 0u);
  auto tokens = file->GetArray("tokenizer.ggml.tokens", GgufType::kString);
  auto scores = file->GetArray("tokenizer.ggml.scores", GgufType::kFloat32);
  auto types = file->GetArray("tokenizer.ggml.token_type", GgufType::kInt32);
  ASSERT_TRUE(tokens.ok() && scores.ok() && types.ok());
  EXPECT_EQ((*tokens)->arr.size(), 300u);
  EXPECT_EQ((*scores)->arr.size(), 300u);
  EXPECT_EQ((*types)->arr.size(), 300u);
}

TEST(SyntheticModelTest, RopeDimAndTiedOutput) {
  SyntheticModelSpec spec = SmallSpec();
  spec.n_heads = 4;  // head_dim 16
  spec.n_kv_heads = 4;
  spec.rope_dim = 6;
  spec.tied_output = true;
  auto file = WriteAndOpen(spec, "tied.gguf");
  ASSERT_NE(file, nullptr);
  auto config = LlamaConfigFromGguf(*file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_dim, 6);
  EXPECT_EQ(config->head_dim, 16);
  EXPECT_EQ(file->FindTensor("output.weight"), nullptr);
  EXPECT_NE(file->FindTensor("token_embd.weight"), nullptr);
}

TEST(SyntheticModelTest, TensorNamesAndShapes) {
  const SyntheticModelSpec spec = SmallSpec();
  auto file = WriteAndOpen(spec, "shapes.gguf");
  ASSERT_NE(file, nullptr);
  struct Expected {
    std::string name;
    std::vector<int64_t> dims;
  };
  std::vector<Expected> expected = {{"token_embd.weight", {64, 300}},
                                    {"output_norm.weight", {64}},
                                    {"output.weight", {64, 300}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    expected.push_back({p + "attn_norm.weight", {64}});
    expected.push_back({p + "attn_q.weight", {64, 64}});
    expected.push_back({p + "attn_k.weight", {64, 16}});
    expected.push_back({p + "attn_v.weight", {64, 16}});
    expected.push_back({p + "attn_output.weight", {64, 64}});
    expected.push_back({p + "ffn_norm.weight", {64}});
    expected.push_back({p + "ffn_gate.weight", {64, 80}});
    expected.push_back({p + "ffn_up.weight", {64, 80}});
    expected.push_back({p + "ffn_down.weight", {80, 64}});
  }
  ASSERT_EQ(file->tensors().size(), expected.size());
  for (const Expected& e : expected) {
    const GgufTensorInfo* t = file->FindTensor(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dims, e.dims) << e.name;
    EXPECT_EQ(t->type, DType::kF32) << e.name;
  }
}

// Expected type of each tensor of SmallSpec() under `type`: matrices whose
// rows are 64 long take `type`, ffn_down (80-long rows) falls back to f32
// for 32-element block types, norms are always f32.
void ExpectTypes(DType type, bool blocks_of_32) {
  SyntheticModelSpec spec = SmallSpec();
  spec.type = type;
  auto file = WriteAndOpen(spec, absl::StrCat(DTypeName(type), ".gguf"));
  ASSERT_NE(file, nullptr);
  for (const GgufTensorInfo& t : file->tensors()) {
    DType want = type;
    if (t.dims.size() == 1) want = DType::kF32;
    if (t.name.find("ffn_down") != std::string::npos && blocks_of_32) want = DType::kF32;
    EXPECT_EQ(t.type, want) << DTypeName(type) << " " << t.name;
  }
  auto config = LlamaConfigFromGguf(*file);
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST(SyntheticModelTest, QuantizedTypesWithF32Fallback) {
  ExpectTypes(DType::kQ8_0, true);
  ExpectTypes(DType::kQ4_0, true);
  ExpectTypes(DType::kF16, false);
  ExpectTypes(DType::kBF16, false);
  SyntheticModelSpec spec = SmallSpec();
  spec.type = DType::kQ8_0;
  EXPECT_EQ(SyntheticMatrixType(spec, 64), DType::kQ8_0);
  EXPECT_EQ(SyntheticMatrixType(spec, 80), DType::kF32);
}

// Mean and standard deviation of a dequantized tensor.
std::pair<double, double> Moments(const GgufTensorInfo& t) {
  std::vector<float> values(t.num_elements);
  const int64_t cols = t.dims[0];
  const uint64_t row_bytes = *RowBytes(t.type, cols);
  for (int64_t r = 0; r < t.num_elements / cols; ++r) {
    EXPECT_TRUE(DequantizeRow(t.type, t.data + r * row_bytes, cols, &values[r * cols]).ok());
  }
  double sum = 0, sum_sq = 0;
  for (float v : values) {
    EXPECT_TRUE(std::isfinite(v));
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  const double mean = sum / values.size();
  return {mean, std::sqrt(sum_sq / values.size() - mean * mean)};
}

TEST(SyntheticModelTest, WeightScales) {
  SyntheticModelSpec spec = SmallSpec();
  spec.ffn_dim = 256;
  auto file = WriteAndOpen(spec, "scales.gguf");
  ASSERT_NE(file, nullptr);
  struct Expected {
    const char* name;
    double mean, stddev;
  };
  for (const Expected& e : {Expected{"token_embd.weight", 0.0, 0.5},
                            Expected{"output_norm.weight", 1.0, 0.1},
                            Expected{"blk.1.ffn_norm.weight", 1.0, 0.1},
                            Expected{"blk.0.attn_q.weight", 0.0, 1.0 / 8},
                            Expected{"blk.0.ffn_down.weight", 0.0, 1.0 / 16},
                            Expected{"output.weight", 0.0, 1.0 / 8}}) {
    const GgufTensorInfo* t = file->FindTensor(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    const auto [mean, stddev] = Moments(*t);
    // Five standard errors of the sample mean and sample deviation.
    const double n = static_cast<double>(t->num_elements);
    EXPECT_NEAR(mean, e.mean, 5 * e.stddev / std::sqrt(n)) << e.name;
    EXPECT_NEAR(stddev, e.stddev, 5 * e.stddev / std::sqrt(2 * n)) << e.name;
  }
}

TEST(SyntheticModelTest, SameSeedSameBytesOtherSeedOtherBytes) {
  SyntheticModelSpec spec = SmallSpec();
  spec.type = DType::kQ4_0;
  const std::string a = testing::TempPath("a.gguf"), b = testing::TempPath("b.gguf"),
                    c = testing::TempPath("c.gguf");
  ASSERT_TRUE(WriteSyntheticModel(spec, a).ok());
  ASSERT_TRUE(WriteSyntheticModel(spec, b).ok());
  spec.seed = 2;
  ASSERT_TRUE(WriteSyntheticModel(spec, c).ok());
  const std::string bytes_a = ReadFile(a), bytes_b = ReadFile(b), bytes_c = ReadFile(c);
  EXPECT_GT(bytes_a.size(), 10000u);
  EXPECT_TRUE(bytes_a == bytes_b);
  EXPECT_EQ(bytes_a.size(), bytes_c.size());
  EXPECT_FALSE(bytes_a == bytes_c);

  // The in-memory image is the same file.
  spec.seed = 1;
  GgufWriter writer;
  ASSERT_TRUE(AddSyntheticModel(spec, &writer).ok());
  auto image = writer.Serialize();
  ASSERT_TRUE(image.ok());
  EXPECT_TRUE(*image == bytes_a);
}

// zero_weights: the same shapes and metadata, zero matrices, random norms;
// the file (written with holes) reads back as the in-memory image.
TEST(SyntheticModelTest, ZeroWeights) {
  SyntheticModelSpec spec = SmallSpec();
  spec.type = DType::kQ8_0;
  spec.vocab_size = 4096;  // token_embd of 272 KiB: whole pages of zeros
  spec.zero_weights = true;
  const std::string path = testing::TempPath("zeros.gguf");
  ASSERT_TRUE(WriteSyntheticModel(spec, path).ok());
  GgufWriter writer;
  ASSERT_TRUE(AddSyntheticModel(spec, &writer).ok());
  auto image = writer.Serialize();
  ASSERT_TRUE(image.ok());
  EXPECT_TRUE(ReadFile(path) == *image);
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufTensorInfo* embd = (*file)->FindTensor("token_embd.weight");
  const GgufTensorInfo* norm = (*file)->FindTensor("output_norm.weight");
  ASSERT_TRUE(embd != nullptr && norm != nullptr);
  EXPECT_EQ(embd->type, DType::kQ8_0);
  EXPECT_TRUE(std::all_of(embd->data, embd->data + embd->size_bytes, [](uint8_t b) { return b == 0; }));
  EXPECT_FALSE(std::all_of(norm->data, norm->data + norm->size_bytes, [](uint8_t b) { return b == 0; }));
}

TEST(SyntheticModelTest, ReportsProgress) {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  const std::string path = testing::TempPath("progress.gguf");
  ASSERT_TRUE(WriteSyntheticModel(SmallSpec(), path, [&](uint64_t done, uint64_t total) {
                calls.emplace_back(done, total);
              }).ok());
  ASSERT_EQ(calls.size(), 3u + 9u * 2u);  // one call per tensor
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_GT(calls[i].first, calls[i - 1].first);
    EXPECT_EQ(calls[i].second, calls[0].second);
  }
  EXPECT_LE(calls.back().first, calls.back().second);
  EXPECT_LT(calls.back().second, ReadFile(path).size());
}

TEST(SyntheticModelTest, VocabularyLayout) {
  for (int64_t size : {kMinSyntheticVocabSize, int64_t{512}, int64_t{32000}}) {
    auto vocab = MakeSyntheticVocab(size);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    ASSERT_EQ(vocab->tokens.size(), static_cast<size_t>(size));
    ASSERT_EQ(vocab->scores.size(), static_cast<size_t>(size));
    ASSERT_EQ(vocab->token_types.size(), static_cast<size_t>(size));
    EXPECT_EQ(vocab->tokens[0], "<unk>");
    EXPECT_EQ(vocab->token_types[0], 2);
    EXPECT_EQ(vocab->tokens[1], "<s>");
    EXPECT_EQ(vocab->token_types[1], 3);
    EXPECT_EQ(vocab->tokens[2], "</s>");
    EXPECT_EQ(vocab->token_types[2], 3);
    EXPECT_EQ(vocab->tokens[3], "<0x00>");
    EXPECT_EQ(vocab->tokens[3 + 0x0A], "<0x0A>");
    EXPECT_EQ(vocab->tokens[258], "<0xFF>");
    for (int i = 3; i < 259; ++i) EXPECT_EQ(vocab->token_types[i], 6);
    EXPECT_EQ(vocab->tokens[259], "\xE2\x96\x81");
    const std::set<std::string> unique(vocab->tokens.begin(), vocab->tokens.end());
    EXPECT_EQ(unique.size(), vocab->tokens.size());
    for (int64_t i = 259; i < size; ++i) {
      EXPECT_EQ(vocab->token_types[i], 1);
      if (i > 259) {
        EXPECT_LT(vocab->scores[i], vocab->scores[i - 1]);
      }
      // Buildable by merges: the piece minus its last character is a piece.
      const std::string& piece = vocab->tokens[i];
      if (piece.size() > 1 && piece != "\xE2\x96\x81") {
        size_t cut = piece.size() - 1;
        while (cut > 0 && (static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) --cut;
        EXPECT_TRUE(unique.count(piece.substr(0, cut))) << piece;
      }
    }
  }
  auto vocab = MakeSyntheticVocab(2000);
  ASSERT_TRUE(vocab.ok());
  const std::set<std::string> pieces(vocab->tokens.begin(), vocab->tokens.end());
  for (const char* p : {"\xE2\x96\x81the", "er", "in", "\xE2\x96\x81" "a", "z", "Q", "7", "."}) {
    EXPECT_TRUE(pieces.count(p)) << p;
  }
}

TEST(SyntheticModelTest, TokenizerLoadsAndRoundTrips) {
  SyntheticModelSpec spec = SmallSpec();
  spec.vocab_size = 2000;
  auto file = WriteAndOpen(spec, "tokenizer.gguf");
  ASSERT_NE(file, nullptr);
  auto tokenizer = Tokenizer::FromGguf(*file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 2000);
  EXPECT_EQ((*tokenizer)->bos_id(), 1);
  EXPECT_EQ((*tokenizer)->eos_id(), 2);
  const std::string text = "the cat sat on the mat";
  const std::vector<int32_t> ids = (*tokenizer)->Encode(text, /*add_bos=*/true);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_LT(ids.size(), text.size());  // merges happened
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_GE(ids[i], 259) << "byte fallback at " << i;
  EXPECT_EQ((*tokenizer)->Decode(ids), text);
  const std::string unicode = "caf\xC3\xA9 \xF0\x9F\x99\x82";  // needs byte fallback
  EXPECT_EQ((*tokenizer)->Decode((*tokenizer)->Encode(unicode, true)), unicode);
}

TEST(SyntheticModelTest, RejectsBadSpecs) {
  struct Case {
    const char* what;
    std::function<void(SyntheticModelSpec*)> mutate;
  };
  const Case cases[] = {
      {"dim", [](SyntheticModelSpec* s) { s->dim = 0; }},
      {"ffn_dim", [](SyntheticModelSpec* s) { s->ffn_dim = -3; }},
      {"n_layers", [](SyntheticModelSpec* s) { s->n_layers = 0; }},
      {"n_heads", [](SyntheticModelSpec* s) { s->n_heads = 0; }},
      {"not divisible by n_heads", [](SyntheticModelSpec* s) { s->n_heads = 6; }},
      {"multiple of n_kv_heads", [](SyntheticModelSpec* s) { s->n_kv_heads = 3; }},
      {"n_kv_heads", [](SyntheticModelSpec* s) { s->n_kv_heads = 16; }},
      {"vocab_size", [](SyntheticModelSpec* s) { s->vocab_size = 259; }},
      {"vocab_size", [](SyntheticModelSpec* s) { s->vocab_size = kMinSyntheticVocabSize - 1; }},
      {"context_length", [](SyntheticModelSpec* s) { s->context_length = 0; }},
      {"rope_dim", [](SyntheticModelSpec* s) { s->rope_dim = 5; }},
      {"rope_dim", [](SyntheticModelSpec* s) { s->rope_dim = 10; }},
      {"rope_dim", [](SyntheticModelSpec* s) { s->rope_dim = -2; }},
      {"rope_dim", [](SyntheticModelSpec* s) { s->dim = 72; s->n_heads = 8; }},  // head_dim 9
      {"rope_theta", [](SyntheticModelSpec* s) { s->rope_theta = 0; }},
      {"rms_eps", [](SyntheticModelSpec* s) { s->rms_eps = 0; }},
      {"rms_eps", [](SyntheticModelSpec* s) { s->rms_eps = NAN; }},
      {"q4_1", [](SyntheticModelSpec* s) { s->type = DType::kQ4_1; }},
  };
  for (const Case& c : cases) {
    SyntheticModelSpec spec = SmallSpec();
    c.mutate(&spec);
    const absl::Status status = ValidateSyntheticModelSpec(spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.what << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.what));
    const std::string path = testing::TempPath("bad.gguf");
    EXPECT_EQ(WriteSyntheticModel(spec, path).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(std::ifstream(path).good()) << "a rejected spec wrote " << path;
  }
  EXPECT_TRUE(ValidateSyntheticModelSpec(SmallSpec()).ok());
  EXPECT_FALSE(MakeSyntheticVocab(100).ok());
}

TEST(SyntheticModelTest, UnwritablePathFailsCleanly) {
  const absl::Status status = WriteSyntheticModel(SmallSpec(), "/nonexistent-dir/x/model.gguf");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent-dir/x/model.gguf"));
}

}  // namespace
}  // namespace shardlm
