// The exact-numerics contract on whole models: logits and greedy tokens are
// bit-identical across every CPU kernel path, thread counts 1-3, and prefill
// versus token-by-token decode; fast numerics agrees with exact closely.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/kernels.h"
#include "core/engine.h"
#include "core/sampler.h"
#include "core/synthetic_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

struct ModelCase {
  std::string name;
  DType type;  // synthetic models only
  bool real;   // stories260K
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::string ModelFile(const ModelCase& c) {
  if (c.real) return testing::ModelPath("stories260K.gguf");
  SyntheticModelSpec spec;
  // q4_0: dim 256 gives whole groups of 8 blocks (the AVX-512 q4_0x8
  // layout), ffn 320 a group and a plain tail of 2 blocks.
  spec.dim = c.type == DType::kQ4_0 ? 256 : 128;
  spec.ffn_dim = 320;
  spec.n_layers = 2;
  spec.n_heads = 8;
  spec.n_kv_heads = 2;
  spec.vocab_size = 400;
  spec.context_length = 128;
  spec.type = c.type;
  spec.seed = 11;
  const std::string path = testing::TempPath(c.name + ".gguf");
  const absl::Status s = WriteSyntheticModel(spec, path);
  EXPECT_TRUE(s.ok()) << s;
  return path;
}

// Logits of every position of `tokens`, produced either in one batched call
// or one token at a time.
std::vector<float> RunLogits(const GgufFile& file, const BackendOptions& opts,
                             const std::vector<int32_t>& tokens, bool batched) {
  auto backend = CpuBackend::Create(opts);
  EXPECT_TRUE(backend.ok()) << backend.status();
  auto engine = Engine::Create(&file, backend->get(), EngineOptions{});
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (batched) return (*engine)->Forward(tokens, /*all_logits=*/true).value();
  std::vector<float> all;
  for (int32_t t : tokens) {
    const std::vector<float> l = (*engine)->Forward({t}).value();
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

std::vector<int32_t> GreedyTokens(const GgufFile& file, const BackendOptions& opts, int steps) {
  auto backend = CpuBackend::Create(opts).value();
  auto engine = Engine::Create(&file, backend.get(), EngineOptions{}).value();
  std::vector<int32_t> out = {1};
  std::vector<float> logits = engine->Forward({1}).value();
  for (int i = 0; i < steps; ++i) {
    out.push_back(Argmax(logits));
    logits = engine->Forward({out.back()}).value();
  }
  return out;
}

class NumericsTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    path_ = ModelFile(GetParam());
    if (path_.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
    file_ = std::move(GgufFile::Open(path_).value());
    tokens_ = {1};
    uint64_t state = 7;
    for (int i = 0; i < 23; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      tokens_.push_back(static_cast<int32_t>(3 + (state >> 33) % 250));
    }
  }
  std::string path_;
  std::unique_ptr<GgufFile> file_;
  std::vector<int32_t> tokens_;
};

TEST_P(NumericsTest, ExactIsBitIdenticalAcrossIsaThreadsAndBatching) {
  BackendOptions base;
  base.numerics = Numerics::kExact;
  base.isa = "scalar";
  base.threads = 1;
  const std::vector<float> want = RunLogits(*file_, base, tokens_, /*batched=*/false);
  for (const std::string& isa : cpu::SupportedIsas()) {
    for (int threads : {1, 2, 3}) {
      for (bool batched : {false, true}) {
        // repack false: AVX-512 on q4_0 rows in the file's layout too.
        for (bool repack : {true, false}) {
          BackendOptions o = base;
          o.isa = isa;
          o.threads = threads;
          o.repack = repack;
          const std::vector<float> got = RunLogits(*file_, o, tokens_, batched);
          ASSERT_EQ(got.size(), want.size());
          EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
              << isa << " threads=" << threads << " batched=" << batched << " repack=" << repack;
        }
      }
    }
  }
}

TEST_P(NumericsTest, ExactGreedyTokensIdenticalAcrossIsas) {
  BackendOptions o;
  o.numerics = Numerics::kExact;
  o.isa = "scalar";
  o.threads = 1;
  const std::vector<int32_t> want = GreedyTokens(*file_, o, 40);
  for (const std::string& isa : cpu::SupportedIsas()) {
    o.isa = isa;
    o.threads = 2;
    EXPECT_EQ(GreedyTokens(*file_, o, 40), want) << isa;
  }
}

TEST_P(NumericsTest, FastAgreesWithExact) {
  BackendOptions exact;
  exact.numerics = Numerics::kExact;
  exact.threads = 2;
  BackendOptions fast = exact;
  fast.numerics = Numerics::kFast;
  const std::vector<float> a = RunLogits(*file_, exact, tokens_, true);
  const std::vector<float> b = RunLogits(*file_, fast, tokens_, true);
  const int64_t vocab = a.size() / tokens_.size();
  double max_err = 0, max_abs = 0;
  int agree = 0;
  for (size_t t = 0; t < tokens_.size(); ++t) {
    absl::Span<const float> ra(a.data() + t * vocab, vocab), rb(b.data() + t * vocab, vocab);
    agree += Argmax(ra) == Argmax(rb);
    for (int64_t v = 0; v < vocab; ++v) {
      max_err = std::max(max_err, std::fabs(double(ra[v]) - rb[v]));
      max_abs = std::max(max_abs, std::fabs(double(ra[v])));
    }
  }
  RecordProperty("max_logit_error", std::to_string(max_err));
  EXPECT_LE(max_err, 1e-3 * std::max(1.0, max_abs));
  EXPECT_EQ(agree, static_cast<int>(tokens_.size()));
}

INSTANTIATE_TEST_SUITE_P(Models, NumericsTest,
                         ::testing::Values(ModelCase{"stories260K", DType::kF32, true},
                                           ModelCase{"synthetic_q4_0", DType::kQ4_0, false},
                                           ModelCase{"synthetic_q8_0", DType::kQ8_0, false},
                                           ModelCase{"synthetic_f16", DType::kF16, false},
                                           ModelCase{"synthetic_bf16", DType::kBF16, false}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace shardlm
