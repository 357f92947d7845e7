// Distributed generation (core/cluster_session.h over transport/local's
// LocalCluster): N in-process ranks generate exactly the tokens of the
// single-node Generate, greedy and sampled (top-k candidates merged on the
// root), for N = 1..4, 10 (more nodes than query heads) and shares 1,1,2; a rank dying mid-generation makes
// the root fail promptly instead of hanging.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/gguf.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "core/synthetic_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "transport/local/local_cluster.h"

namespace shardlm {
namespace {

constexpr int64_t kSteps = 40;
constexpr int32_t kNoEos = -1;

using testing::ExactOneThread;

SamplerOptions Greedy() { return {0.0, 1.0, 1, 40}; }
SamplerOptions Sampled() { return {0.9, 0.95, 7, 40}; }


std::vector<int32_t> GenerateSingle(const GgufFile& file, const SamplerOptions& options) {
  auto backend = CpuBackend::Create(ExactOneThread()).value();
  auto engine = Engine::Create(&file, backend.get(), EngineOptions{}).value();
  Sampler sampler(options);
  ManualClock clock;
  std::vector<int32_t> out;
  const std::vector<int32_t> prompt = {1};
  auto stats = Generate(engine.get(), &sampler, prompt, kSteps, kNoEos, &clock, [&](int32_t id) {
    out.push_back(id);
    return absl::OkStatus();
  });
  EXPECT_TRUE(stats.ok()) << stats.status();
  return out;
}

std::unique_ptr<LocalCluster> StartCluster(const GgufFile& file, const ShardPlan& plan,
                                           RealClock* clock) {
  ShardedEngineOptions engine_options;
  engine_options.clock = clock;
  ClusterOptions cluster_options;
  cluster_options.clock = clock;
  auto cluster = LocalCluster::Start(
      &file, plan,
      [](int) -> absl::StatusOr<std::unique_ptr<Backend>> {
        return CpuBackend::Create(ExactOneThread());
      },
      engine_options, cluster_options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? std::move(*cluster) : nullptr;
}

absl::StatusOr<std::vector<int32_t>> GenerateOnCluster(LocalCluster* cluster,
                                                       const SamplerOptions& options,
                                                       const std::function<void(int)>& hook) {
  Sampler sampler(options);
  ManualClock clock;
  std::vector<int32_t> out;
  const std::vector<int32_t> prompt = {1};
  absl::StatusOr<GenerationStats> stats = GenerateDistributed(
      cluster->root(), &sampler, prompt, kSteps, kNoEos, &clock, [&](int32_t id) {
        out.push_back(id);
        if (hook) hook(static_cast<int>(out.size()));
        return absl::OkStatus();
      });
  if (!stats.ok()) return stats.status();
  return out;
}

struct ModelCase {
  std::string name;
  bool real;  // stories260K; else a synthetic Q4_0 model
};

std::string ModelFile(const ModelCase& c) {
  if (c.real) return testing::ModelPath("stories260K.gguf");
  auto path = testing::WriteSyntheticModelFile(testing::SmallShardedModelSpec(DType::kQ4_0),
                                               c.name);
  EXPECT_TRUE(path.ok()) << path.status();
  return path.ok() ? *path : "";
}

class ClusterTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    const std::string path = ModelFile(GetParam());
    if (path.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
    file_ = std::move(GgufFile::Open(path).value());
  }
  ShardPlan Plan(const std::vector<int>& shares) {
    const LlamaConfig config = LlamaConfigFromGguf(*file_).value();
    const PlanWeightInfo info = PlanWeightInfo::FromGguf(*file_).value();
    return ShardPlan::Create(config, shares, info).value();
  }
  std::unique_ptr<GgufFile> file_;
  RealClock clock_;
};

TEST_P(ClusterTest, SameTokensAsSingleNode) {
  const std::vector<int32_t> want_greedy = GenerateSingle(*file_, Greedy());
  const std::vector<int32_t> want_sampled = GenerateSingle(*file_, Sampled());
  ASSERT_EQ(want_greedy.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(want_sampled.size(), static_cast<size_t>(kSteps));
  ASSERT_NE(want_sampled, want_greedy);  // the sampled path really samples
  // 10 nodes: more than the 8 query heads, two nodes hold none.
  const std::vector<std::vector<int>> share_vectors = {
      {1}, {1, 1}, {1, 1, 1}, {1, 1, 1, 1}, {1, 1, 2}, std::vector<int>(10, 1)};
  for (const std::vector<int>& shares : share_vectors) {
    const std::string label = FormatShares(shares);
    std::unique_ptr<LocalCluster> cluster = StartCluster(*file_, Plan(shares), &clock_);
    ASSERT_NE(cluster, nullptr) << label;
    absl::StatusOr<std::vector<int32_t>> greedy = GenerateOnCluster(cluster.get(), Greedy(), {});
    ASSERT_TRUE(greedy.ok()) << label << ": " << greedy.status();
    EXPECT_EQ(*greedy, want_greedy) << label;
    ASSERT_TRUE(cluster->root()->Reset().ok()) << label;
    absl::StatusOr<std::vector<int32_t>> sampled =
        GenerateOnCluster(cluster.get(), Sampled(), {});
    ASSERT_TRUE(sampled.ok()) << label << ": " << sampled.status();
    EXPECT_EQ(*sampled, want_sampled) << label;
    EXPECT_TRUE(cluster->Stop().ok()) << label;
    EXPECT_EQ(cluster->hub()->PendingMessages(), 0) << label;
  }
}

TEST_P(ClusterTest, DeadRankFailsTheRootPromptly) {
  for (const SamplerOptions& options : {Greedy(), Sampled()}) {
    std::unique_ptr<LocalCluster> cluster = StartCluster(*file_, Plan({1, 1, 1, 1}), &clock_);
    ASSERT_NE(cluster, nullptr);
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<int32_t>> got =
        GenerateOnCluster(cluster.get(), options, [&](int n) {
          if (n == 10) cluster->hub()->Kill(2);
        });
    EXPECT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
    EXPECT_FALSE(cluster->Stop().ok());  // rank 2 reports its death
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    // The session refuses further work instead of using broken streams.
    const int32_t one[1] = {1};
    EXPECT_EQ(cluster->root()->Forward(one).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

TEST_P(ClusterTest, ContextFullStopsLikeSingleNode) {
  std::unique_ptr<LocalCluster> cluster = StartCluster(*file_, Plan({1, 1, 2}), &clock_);
  ASSERT_NE(cluster, nullptr);
  Sampler sampler(Greedy());
  ManualClock clock;
  const int64_t ctx = cluster->root()->engine()->max_seq_len();
  const std::vector<int32_t> prompt = {1};
  auto stats = GenerateDistributed(cluster->root(), &sampler, prompt, ctx + 10, kNoEos, &clock,
                                   [](int32_t) { return absl::OkStatus(); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->context_full);
  EXPECT_EQ(stats->generated_tokens, ctx);
  // A request past the context fails on the root alone, leaving the session usable.
  EXPECT_EQ(cluster->root()->Forward(prompt).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(cluster->root()->Reset().ok());
  EXPECT_TRUE(cluster->root()->Forward(prompt).ok());
  EXPECT_TRUE(cluster->Stop().ok());
}

INSTANTIATE_TEST_SUITE_P(Models, ClusterTest,
                         ::testing::Values(ModelCase{"stories260K", true},
                                           ModelCase{"synthetic_q4_0", false}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace shardlm
