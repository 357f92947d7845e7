// The engine (on the cpu backend) against ReferenceLlama, an independent
// double-precision implementation, on the real stories260K model and on
// synthetic models covering GQA, MHA, MQA, partial RoPE, tied output and the
// quantized weight types. Also checks that the engine's result for a token
// does not depend on batching, chunking or the thread count, and that a full
// context is an error rather than a crash.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "backends/cpu/cpu_backend.h"
#include "core/engine.h"
#include "core/gguf.h"
#include "core/synthetic_model.h"
#include "core/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/reference_llama.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

using testing::ReferenceLlama;

// Logits tolerance, relative to max(1, max |reference logit|). The engine
// computes in float32 (float accumulators, float softmax) and the reference
// in double; float rounding (~6e-8 relative per operation) compounded over
// dot products of a few hundred terms, a few layers and the softmax leaves
// logit errors around 1e-6..1e-5 of the logit scale. 1e-3 leaves two orders
// of magnitude of headroom for that while any real mistake (a wrong RoPE
// pair or frequency, the wrong KV head, a missing residual, eps or scale)
// moves logits by 1e-2..1e0 of their scale. Quantized models are compared
// with the reference reading the same quantized file and quantizing its
// activations to Q8_0 the same way, so quantization error is not part of the
// difference. But an activation that the float engine and the double
// reference round to neighbouring Q8 levels (a tie broken differently by a
// 1e-7 difference) moves one product by a whole quantization step (amax/127),
// and that propagates: up to ~2% of the logit scale was observed. Models with
// quantized matrices therefore get kQuantizedTolerance; greedy tokens must
// still agree except on near-ties.
constexpr double kTolerance = 1e-3;
constexpr double kQuantizedTolerance = 5e-2;

// The tolerance for the model named `model` (synthetic q8_0/q4_0 by name).
double ToleranceFor(const std::string& model) {
  return model.rfind("q8_0", 0) == 0 || model.rfind("q4_0", 0) == 0 ? kQuantizedTolerance
                                                                     : kTolerance;
}
constexpr int32_t kBos = 1;

struct ModelCase {
  std::string name;
  bool real = false;  // stories260K.gguf from ../shared/models
  SyntheticModelSpec spec;
};

// gtest prints parameters by name rather than as bytes.
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

SyntheticModelSpec Spec(int64_t dim, int64_t ffn, int64_t layers, int64_t heads, int64_t kv,
                        int64_t vocab, DType type = DType::kF32) {
  SyntheticModelSpec s;
  s.dim = dim;
  s.ffn_dim = ffn;
  s.n_layers = layers;
  s.n_heads = heads;
  s.n_kv_heads = kv;
  s.vocab_size = vocab;
  s.type = type;
  s.seed = static_cast<uint64_t>(dim * 1000003 + ffn * 101 + heads * 7 + kv);
  return s;
}

std::vector<ModelCase> Cases() {
  std::vector<ModelCase> cases;
  cases.push_back({"stories260K", true, {}});
  cases.push_back({"gqa_d64_h8_kv4", false, Spec(64, 172, 2, 8, 4, 320)});
  cases.push_back({"gqa_d96_h6_kv2", false, Spec(96, 160, 2, 6, 2, 300)});
  cases.push_back({"mha_d128_h4", false, Spec(128, 256, 2, 4, 4, 400)});
  cases.push_back({"mqa_d48_h12_kv1", false, Spec(48, 128, 3, 12, 1, 290)});
  ModelCase rope{"partial_rope_d64_h4_rd8", false, Spec(64, 128, 2, 4, 2, 300)};
  rope.spec.rope_dim = 8;  // of head_dim 16
  rope.spec.rope_theta = 500000.0f;
  rope.spec.context_length = 96;
  cases.push_back(rope);
  ModelCase tied{"tied_d64_h8_kv2", false, Spec(64, 96, 2, 8, 2, 320)};
  tied.spec.tied_output = true;
  cases.push_back(tied);
  cases.push_back({"q8_0_d64_h8_kv2", false, Spec(64, 192, 2, 8, 2, 384, DType::kQ8_0)});
  // ffn_down rows of 172 stay f32: a mixed q8_0/f32 model.
  cases.push_back({"q8_0_mixed_d64_ffn172", false, Spec(64, 172, 2, 8, 4, 320, DType::kQ8_0)});
  cases.push_back({"q4_0_d96_h6_kv3", false, Spec(96, 256, 2, 6, 3, 320, DType::kQ4_0)});
  cases.push_back({"f16_d64_h4_kv1", false, Spec(64, 160, 2, 4, 1, 300, DType::kF16)});
  cases.push_back({"bf16_d32_h2_kv1", false, Spec(32, 64, 1, 2, 1, 290, DType::kBF16)});
  return cases;
}

// The model file of `c`: the real model's path ("" when absent), or a
// synthetic model written once per test binary.
absl::StatusOr<std::string> ModelFile(const ModelCase& c) {
  if (c.real) return testing::ModelPath("stories260K.gguf");
  static auto* written = new std::map<std::string, std::string>();
  auto it = written->find(c.name);
  if (it != written->end()) return it->second;
  const std::string path = testing::TempPath(c.name + ".gguf");
  absl::Status status = WriteSyntheticModel(c.spec, path);
  if (!status.ok()) return status;
  (*written)[c.name] = path;
  return path;
}

// `n` pseudo-random token ids after BOS (SplitMix64; fixed per `seed`).
std::vector<int32_t> RandomTokens(int n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> tokens = {kBos};
  uint64_t state = seed;
  for (int i = 0; i < n; ++i) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    tokens.push_back(static_cast<int32_t>((z ^ (z >> 31)) % static_cast<uint64_t>(vocab)));
  }
  return tokens;
}

template <typename T>
int32_t Argmax(const std::vector<T>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Largest minus second-largest value.
double TopTwoGap(const std::vector<double>& v) {
  std::vector<double> sorted = v;
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<double>());
  return sorted[0] - sorted[1];
}

double Scale(const std::vector<double>& ref) {
  double m = 1.0;
  for (double x : ref) m = std::max(m, std::fabs(x));
  return m;
}

// Worst difference seen for one model, relative to Scale().
struct ErrorStats {
  double max_rel = 0.0;
  double max_abs = 0.0;
  int steps = 0;
};

std::map<std::string, ErrorStats>& Stats() {
  static auto* stats = new std::map<std::string, ErrorStats>();
  return *stats;
}

// Checks one step's logits against the reference; records the error.
void CheckLogits(const std::string& model, const std::vector<float>& got,
                 const std::vector<double>& want, const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  const double scale = Scale(want);
  double max_diff = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << where << ": logit " << i << " is " << got[i];
    max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
  }
  ErrorStats& s = Stats()[model];
  s.max_abs = std::max(s.max_abs, max_diff);
  s.max_rel = std::max(s.max_rel, max_diff / scale);
  ++s.steps;
  const double tolerance = ToleranceFor(model);
  EXPECT_LE(max_diff, tolerance * scale) << where << " (max |ref logit| " << scale << ")";
  if (Argmax(got) != Argmax(want)) {
    EXPECT_LT(TopTwoGap(want), tolerance * scale)
        << where << ": engine argmax " << Argmax(got) << " != reference argmax " << Argmax(want);
  }
}

// Engine and its backend, destroyed engine first.
struct EngineHandle {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Engine> engine;
};

// First index where two float vectors differ bitwise, or -1.
int64_t FirstBitDifference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  }
  return -1;
}

void ExpectBitIdentical(const std::vector<float>& want, const std::vector<float>& got,
                        const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  const int64_t i = FirstBitDifference(want, got);
  EXPECT_EQ(i, -1) << what << ": first difference at element " << i << ": "
                   << (i >= 0 ? absl::StrCat(want[i], " vs ", got[i]) : "");
}

class ReferenceTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    auto path = ModelFile(GetParam());
    ASSERT_TRUE(path.ok()) << path.status();
    if (path->empty()) {
      GTEST_SKIP() << "stories260K.gguf not found under ../shared/models; skipping the real model";
    }
    auto file = GgufFile::Open(*path);
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(*file);
    auto ref = ReferenceLlama::Create(*file_);
    ASSERT_TRUE(ref.ok()) << ref.status();
    ref_ = std::move(*ref);
    vocab_ = ref_->config().vocab_size;
  }

  static void TearDownTestSuite() {
    std::printf("\nMax |engine - reference| logit error per model (relative to max(1, max|ref|)):\n");
    for (const auto& [model, s] : Stats()) {
      std::printf("  %-26s rel %.3e  abs %.3e  over %d steps\n", model.c_str(), s.max_rel,
                  s.max_abs, s.steps);
    }
  }

  EngineHandle NewEngine(int threads = 2, EngineOptions options = EngineOptions()) {
    EngineHandle h;
    BackendOptions backend_options;
    backend_options.threads = threads;
    h.backend = CpuBackend::Create(backend_options).value();
    auto engine = Engine::Create(file_.get(), h.backend.get(), options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (engine.ok()) h.engine = std::move(*engine);
    return h;
  }

  // Logits of every token of `tokens`, fed in chunks of `chunks` sizes
  // (cycled; {0} means all at once) to a fresh engine.
  std::vector<float> RunChunked(const std::vector<int32_t>& tokens, std::vector<size_t> chunks,
                                int threads = 2, EngineOptions options = EngineOptions()) {
    EngineHandle h = NewEngine(threads, options);
    std::vector<float> all;
    if (h.engine == nullptr) return all;
    size_t start = 0;
    for (size_t k = 0; start < tokens.size(); ++k) {
      size_t len = chunks[k % chunks.size()];
      if (len == 0) len = tokens.size();
      len = std::min(len, tokens.size() - start);
      auto logits = h.engine->Forward(absl::MakeConstSpan(tokens).subspan(start, len), true);
      EXPECT_TRUE(logits.ok()) << logits.status();
      if (!logits.ok()) return {};
      all.insert(all.end(), logits->begin(), logits->end());
      start += len;
    }
    return all;
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<ReferenceLlama> ref_;
  int64_t vocab_ = 0;
};

// Feeds BOS, 40 pseudo-random tokens, then 24 tokens of the reference's
// greedy continuation, one at a time to both; every step's logits agree.
TEST_P(ReferenceTest, TeacherForcedLogitsMatchReference) {
  EngineHandle h = NewEngine();
  ASSERT_NE(h.engine, nullptr);
  const std::vector<int32_t> forced = RandomTokens(40, vocab_, 42);
  int32_t token = forced[0];
  for (int step = 0; step < 65; ++step) {
    if (step < static_cast<int>(forced.size())) token = forced[step];
    auto got = h.engine->Forward({token});
    ASSERT_TRUE(got.ok()) << got.status();
    const std::vector<double> want = ref_->Step(token);
    CheckLogits(GetParam().name, *got, want, absl::StrCat("step ", step, " token ", token));
    if (HasFatalFailure()) return;
    token = Argmax(want);
  }
}

// 64 greedy steps from BOS, each side choosing its own next token.
TEST_P(ReferenceTest, GreedyDecodingMatchesReference) {
  EngineHandle h = NewEngine();
  ASSERT_NE(h.engine, nullptr);
  int32_t engine_token = kBos, ref_token = kBos;
  std::vector<int32_t> generated;
  for (int step = 0; step < 64; ++step) {
    auto got = h.engine->Forward({engine_token});
    ASSERT_TRUE(got.ok()) << got.status();
    const std::vector<double> want = ref_->Step(ref_token);
    CheckLogits(GetParam().name, *got, want, absl::StrCat("greedy step ", step));
    engine_token = Argmax(*got);
    ref_token = Argmax(want);
    if (engine_token != ref_token) {
      // Only a near-tie may legitimately go either way; the sequences then
      // differ, so stop comparing.
      ASSERT_LT(TopTwoGap(want), ToleranceFor(GetParam().name) * Scale(want))
          << "greedy step " << step << ": engine " << engine_token << ", reference "
          << ref_token;
      std::printf("%s: near-tie at greedy step %d, stopping\n", GetParam().name.c_str(), step);
      return;
    }
    generated.push_back(engine_token);
  }
  EXPECT_EQ(generated.size(), 64u);
  if (GetParam().real) {
    // Ground truth for the reference itself: the known greedy story
    // (../shared/models/README.md).
    const std::string known =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in "
        "the park. One day, she saw a big, red ball. She wanted to play with it, but it was "
        "too high.";
    auto tokenizer = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    generated.insert(generated.begin(), kBos);  // drops the story's leading space
    const std::string text = (*tokenizer)->Decode(generated);
    const size_t n = std::min(text.size(), known.size());
    EXPECT_GE(n, 100u) << text;
    EXPECT_EQ(text.substr(0, n), known.substr(0, n));
  }
}

// Prefill (all tokens in one Forward), one-at-a-time decode, max_batch 3 and
// uneven chunks all give bit-identical logits for every token.
TEST_P(ReferenceTest, PrefillMatchesDecodeBitForBit) {
  const std::vector<int32_t> tokens = RandomTokens(40, vocab_, 7);
  const std::vector<float> prefill = RunChunked(tokens, {0});
  ASSERT_EQ(prefill.size(), tokens.size() * vocab_);
  ExpectBitIdentical(prefill, RunChunked(tokens, {1}), "one token at a time");
  ExpectBitIdentical(prefill, RunChunked(tokens, {1, 4, 2, 7, 3, 11}), "uneven chunks");
  EngineOptions batch3;
  batch3.max_batch = 3;
  ExpectBitIdentical(prefill, RunChunked(tokens, {0}, 2, batch3), "max_batch 3");
  ExpectBitIdentical(prefill, RunChunked(tokens, {5, 1}, 2, batch3), "max_batch 3, chunks");

  // all_logits = false returns the last row of the same logits.
  EngineHandle h = NewEngine();
  ASSERT_NE(h.engine, nullptr);
  auto last = h.engine->Forward(tokens);
  ASSERT_TRUE(last.ok()) << last.status();
  ExpectBitIdentical(std::vector<float>(prefill.end() - vocab_, prefill.end()), *last,
                     "last-token logits");
}

// 1, 2 and 3 threads give bit-identical logits.
TEST_P(ReferenceTest, ThreadCountDoesNotChangeLogits) {
  const std::vector<int32_t> tokens = RandomTokens(24, vocab_, 9);
  const std::vector<float> one = RunChunked(tokens, {16, 1}, 1);
  ASSERT_EQ(one.size(), tokens.size() * vocab_);
  ExpectBitIdentical(one, RunChunked(tokens, {16, 1}, 2), "2 threads");
  ExpectBitIdentical(one, RunChunked(tokens, {16, 1}, 3), "3 threads");
}

// Filling the KV cache is an OutOfRange error that leaves the engine usable.
TEST_P(ReferenceTest, ContextOverflowIsOutOfRange) {
  EngineOptions options;
  options.max_seq_len = 8;
  EngineHandle h = NewEngine(2, options);
  ASSERT_NE(h.engine, nullptr);
  Engine& e = *h.engine;
  EXPECT_EQ(e.max_seq_len(), 8);
  const std::vector<int32_t> t = RandomTokens(9, vocab_, 3);
  const auto span = absl::MakeConstSpan(t);
  EXPECT_EQ(e.Forward(span).status().code(), absl::StatusCode::kOutOfRange);  // 9 > 8
  EXPECT_EQ(e.position(), 0);
  ASSERT_TRUE(e.Forward(span.subspan(0, 5)).ok());
  EXPECT_EQ(e.Forward(span.subspan(0, 4)).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(e.position(), 5);
  ASSERT_TRUE(e.Forward(span.subspan(5, 3)).ok());
  EXPECT_EQ(e.position(), 8);
  EXPECT_EQ(e.Forward({kBos}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(e.position(), 8);
  EXPECT_EQ(e.Forward({}).status().code(), absl::StatusCode::kInvalidArgument);
  e.Reset();
  EXPECT_EQ(e.Forward({static_cast<int32_t>(vocab_)}).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(e.Forward({-1}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(e.position(), 0);
  EXPECT_TRUE(e.Forward(span.subspan(0, 8)).ok());

  // The default cache is the model's context (capped at 4096).
  const int64_t context = ref_->config().context_length;
  EngineHandle d = NewEngine();
  ASSERT_NE(d.engine, nullptr);
  EXPECT_EQ(d.engine->max_seq_len(), std::min<int64_t>(context, 4096));
  if (context <= 128) {
    const std::vector<int32_t> full = RandomTokens(static_cast<int>(context) - 1, vocab_, 5);
    EXPECT_TRUE(d.engine->Forward(full).ok());
    EXPECT_EQ(d.engine->Forward({kBos}).status().code(), absl::StatusCode::kOutOfRange);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<ModelCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace shardlm
