// Tensor-parallel exact-mode forward pass (core/sharded_engine.h): N ranks in
// one process over a LocalHub give logits bit-identical (memcmp) to the
// single-node Engine, batched and token by token, and the same greedy tokens,
// for every node count and share vector the planner accepts.
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/model_loader.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "core/synthetic_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "transport/local/local_transport.h"

namespace shardlm {
namespace {

constexpr int kGreedySteps = 24;

// What one engine (single node, or one rank of a cluster) produced.
struct RunResult {
  std::vector<float> batched;   // all positions, one Forward call
  std::vector<float> stepwise;  // all positions, one token per call
  std::vector<int32_t> greedy;  // prompt {1} then kGreedySteps greedy tokens
};

BackendOptions ExactOneThread() {
  BackendOptions o;
  o.threads = 1;
  o.numerics = Numerics::kExact;
  return o;
}

RunResult RunSingle(const GgufFile& file, const std::vector<int32_t>& tokens) {
  auto backend = CpuBackend::Create(ExactOneThread()).value();
  auto engine = Engine::Create(&file, backend.get(), EngineOptions{}).value();
  RunResult r;
  r.batched = engine->Forward(tokens, /*all_logits=*/true).value();
  engine->Reset();
  for (int32_t t : tokens) {
    const std::vector<float> l = engine->Forward({t}).value();
    r.stepwise.insert(r.stepwise.end(), l.begin(), l.end());
  }
  engine->Reset();
  r.greedy = {1};
  std::vector<float> logits = engine->Forward({1}).value();
  for (int i = 0; i < kGreedySteps; ++i) {
    r.greedy.push_back(Argmax(logits));
    logits = engine->Forward({r.greedy.back()}).value();
  }
  return r;
}

// The three runs on one rank; every rank calls it in lockstep.
absl::Status RunRank(const GgufFile& file, const ShardPlan& plan, Transport* transport,
                     const std::vector<int32_t>& tokens, RunResult* r) {
  ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend, CpuBackend::Create(ExactOneThread()));
  RealClock clock;
  ShardedEngineOptions options;
  options.clock = &clock;
  ASSIGN_OR_RETURN(std::unique_ptr<ShardedEngine> engine,
                   ShardedEngine::Create(&file, plan, backend.get(), transport, options));
  const int64_t n = tokens.size();
  ASSIGN_OR_RETURN(ShardedLogits all, engine->Forward(tokens, /*all_logits=*/true));
  ASSIGN_OR_RETURN(r->batched, engine->GatherLogits(all.local, n));
  engine->Reset();
  for (int32_t t : tokens) {
    ASSIGN_OR_RETURN(ShardedLogits one, engine->Forward({t}));
    ASSIGN_OR_RETURN(std::vector<float> full, engine->GatherLogits(one.local, 1));
    r->stepwise.insert(r->stepwise.end(), full.begin(), full.end());
  }
  engine->Reset();
  r->greedy = {1};
  ASSIGN_OR_RETURN(ShardedLogits step, engine->Forward({1}));
  for (int i = 0; i < kGreedySteps; ++i) {
    r->greedy.push_back(step.greedy.at(0));
    ASSIGN_OR_RETURN(step, engine->Forward({r->greedy.back()}));
  }
  return absl::OkStatus();
}

// Runs every rank of `plan` on its own thread (own CpuBackend, own LocalHub
// endpoint); returns each rank's results, or the first error.
absl::StatusOr<std::vector<RunResult>> RunLocalCluster(const GgufFile& file, const ShardPlan& plan,
                                                       const std::vector<int32_t>& tokens) {
  std::vector<RunResult> results(plan.num_nodes());
  RETURN_IF_ERROR(testing::RunLocalRanks(plan.num_nodes(), [&](Transport* transport) {
    return RunRank(file, plan, transport, tokens, &results[transport->rank()]);
  }));
  return results;
}

struct ModelCase {
  std::string name;
  DType type;                 // synthetic models only
  const char* real = nullptr;  // a real model under ../shared/models (file or HF folder)
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::string ModelFile(const ModelCase& c) {
  if (c.real != nullptr) return testing::ModelPath(c.real);
  absl::StatusOr<std::string> path =
      testing::WriteSyntheticModelFile(testing::SmallShardedModelSpec(c.type), c.name);
  EXPECT_TRUE(path.ok()) << path.status();
  return path.value_or("");
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class ShardedEngineTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    const std::string path = ModelFile(GetParam());
    if (path.empty()) GTEST_SKIP() << "../shared/models/" << GetParam().real << " is absent";
    file_ = std::move(OpenModelFile(path).value());
    tokens_ = {1};
    uint64_t state = 3;
    while (tokens_.size() < 16) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      tokens_.push_back(static_cast<int32_t>(3 + (state >> 33) % 250));
    }
  }
  std::unique_ptr<GgufFile> file_;
  std::vector<int32_t> tokens_;
};

TEST_P(ShardedEngineTest, BitIdenticalToSingleNode) {
  const RunResult want = RunSingle(*file_, tokens_);
  ASSERT_TRUE(SameBits(want.batched, want.stepwise));
  const LlamaConfig config = LlamaConfigFromGguf(*file_).value();
  const PlanWeightInfo info = PlanWeightInfo::FromGguf(*file_).value();
  // 9..12 nodes: more nodes than the 8 query heads (some hold none).
  std::vector<std::vector<int>> share_vectors = {{1, 1, 2}, {3, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 3}};
  for (int n = 1; n <= 12; ++n) share_vectors.push_back(std::vector<int>(n, 1));
  std::vector<std::string> passed;
  for (const std::vector<int>& shares : share_vectors) {
    const std::string label = FormatShares(shares);
    absl::StatusOr<ShardPlan> plan = ShardPlan::Create(config, shares, info);
    if (!plan.ok()) {
      RecordProperty("rejected_" + label, std::string(plan.status().message()));
      continue;
    }
    absl::StatusOr<std::vector<RunResult>> got = RunLocalCluster(*file_, *plan, tokens_);
    ASSERT_TRUE(got.ok()) << label << ": " << got.status();
    bool ok = true;
    for (size_t rank = 0; rank < got->size(); ++rank) {
      const RunResult& r = (*got)[rank];
      EXPECT_TRUE(SameBits(r.batched, want.batched)) << label << " rank " << rank;
      EXPECT_TRUE(SameBits(r.stepwise, want.stepwise)) << label << " rank " << rank;
      EXPECT_EQ(r.greedy, want.greedy) << label << " rank " << rank;
      ok = ok && SameBits(r.batched, want.batched) && SameBits(r.stepwise, want.stepwise) &&
           r.greedy == want.greedy;
    }
    if (ok) passed.push_back(label);
  }
  RecordProperty("bit_identical", absl::StrJoin(passed, " "));
  std::cout << GetParam().name << " bit-identical for: " << absl::StrJoin(passed, " ") << "\n";
  EXPECT_EQ(passed.size(), share_vectors.size());
}

INSTANTIATE_TEST_SUITE_P(Models, ShardedEngineTest,
                         ::testing::Values(ModelCase{"stories260K", DType::kF32, "stories260K.gguf"},
                                           // A Hugging Face folder, converted in memory.
                                           ModelCase{"tinystories_656k_hf", DType::kF32,
                                                     "TinyStories-656K"},
                                           ModelCase{"synthetic_f32", DType::kF32},
                                           ModelCase{"synthetic_q8_0", DType::kQ8_0},
                                           ModelCase{"synthetic_q4_0", DType::kQ4_0}),
                         [](const auto& info) { return info.param.name; });

// Fast numerics needs a float wire format (tests/sharded_fast_test.cc).
TEST(ShardedEngineOptionsTest, FastNumericsNeedsAFloatWire) {
  SyntheticModelSpec spec;
  spec.dim = 64;
  spec.ffn_dim = 96;
  spec.n_layers = 1;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.vocab_size = kMinSyntheticVocabSize;
  const std::string path = testing::TempPath("fast.gguf");
  ASSERT_TRUE(WriteSyntheticModel(spec, path).ok());
  auto file = GgufFile::Open(path).value();
  const LlamaConfig config = LlamaConfigFromGguf(*file).value();
  const ShardPlan plan = ShardPlan::Create(config, {1}, PlanWeightInfo()).value();
  BackendOptions fast = ExactOneThread();
  fast.numerics = Numerics::kFast;
  auto backend = CpuBackend::Create(fast).value();
  std::shared_ptr<LocalHub> hub = LocalHub::Create(1);
  std::unique_ptr<Transport> transport = hub->Endpoint(0);
  RealClock clock;
  ShardedEngineOptions options;
  options.clock = &clock;
  auto engine = ShardedEngine::Create(file.get(), plan, backend.get(), transport.get(), options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shardlm
