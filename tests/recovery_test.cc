// RecoveringCluster over in-process clusters: a worker killed mid-request
// (once, twice, during the recovery itself, or all of them) costs a new
// session and a KV-cache rebuild, and the generated text is exactly the
// fault-free single-node text, greedy and sampled.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/recovering_cluster.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "transport/local/local_cluster.h"

namespace shardlm {
namespace {

constexpr int64_t kSteps = 48;
constexpr int32_t kNoEos = -1;

using testing::ExactOneThread;

// An in-process session of `nodes` equal shares.
class LocalSession : public ClusterSessionHandle {
 public:
  LocalSession(std::unique_ptr<LocalCluster> cluster, int nodes)
      : cluster_(std::move(cluster)), nodes_(nodes) {}
  ClusterRoot* root() override { return cluster_->root(); }
  int nodes() const override { return nodes_; }
  void Abort() override { cluster_->hub()->Shutdown(); }
  absl::Status Stop() override { return cluster_->Stop(); }
  LocalHub* hub() { return cluster_->hub(); }

 private:
  std::unique_ptr<LocalCluster> cluster_;
  int nodes_;
};

class RecoveryTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    auto path = testing::WriteSyntheticModelFile(testing::SmallShardedModelSpec(GetParam()),
                                                 "recovery");
    ASSERT_TRUE(path.ok()) << path.status();
    file_ = std::move(GgufFile::Open(*path).value());
  }

  std::vector<int32_t> Single(const SamplerOptions& options) {
    auto backend = CpuBackend::Create(ExactOneThread()).value();
    auto engine = Engine::Create(file_.get(), backend.get(), EngineOptions{}).value();
    return Run(engine.get(), options, nullptr);
  }

  // Generates on `model` (an Engine or a TokenStepper); `hook(k)` runs
  // after the k-th token.
  template <typename Model>
  std::vector<int32_t> Run(Model* model, const SamplerOptions& options,
                           const std::function<void(int)>& hook) {
    Sampler sampler(options);
    std::vector<int32_t> out;
    const std::vector<int32_t> prompt = {1, 5, 9};
    auto stats = Generate(model, &sampler, prompt, kSteps, kNoEos, &clock_, [&](int32_t id) {
      out.push_back(id);
      if (hook) hook(static_cast<int>(out.size()));
      return absl::OkStatus();
    });
    EXPECT_TRUE(stats.ok()) << stats.status();
    return out;
  }

  // Sessions of node_counts[0], then node_counts[1], ... nodes.
  SessionFactory Factory(std::vector<int> node_counts) {
    return [this, node_counts]() -> absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> {
      const int n = node_counts[std::min<size_t>(made_, node_counts.size() - 1)];
      ++made_;
      auto config = LlamaConfigFromGguf(*file_).value();
      auto plan = ShardPlan::Create(config, std::vector<int>(n, 1),
                                    PlanWeightInfo::FromGguf(*file_).value());
      if (!plan.ok()) return plan.status();
      ShardedEngineOptions engine_options;
      engine_options.clock = &clock_;
      ClusterOptions cluster_options;
      cluster_options.clock = &clock_;
      auto cluster = LocalCluster::Start(
          file_.get(), *plan,
          [](int) -> absl::StatusOr<std::unique_ptr<Backend>> {
            return CpuBackend::Create(ExactOneThread());
          },
          engine_options, cluster_options);
      if (!cluster.ok()) return cluster.status();
      auto session = std::make_unique<LocalSession>(*std::move(cluster), n);
      current_ = session.get();
      return session;
    };
  }

  RealClock clock_;
  std::unique_ptr<GgufFile> file_;
  int made_ = 0;
  LocalSession* current_ = nullptr;
};

TEST_P(RecoveryTest, OneWorkerLostMidRequest) {
  for (const SamplerOptions& options :
       {SamplerOptions{0.0, 1.0, 1, 40}, SamplerOptions{0.9, 0.95, 7, 40}}) {
    made_ = 0;
    const std::vector<int32_t> want = Single(options);
    std::vector<RecoveryEvent> events;
    RecoveringCluster cluster(Factory({4, 3}), &clock_, 16,
                              [&](const RecoveryEvent& e) { events.push_back(e); });
    ASSERT_TRUE(cluster.Start().ok());
    const auto got = Run(&cluster, options, [&](int k) {
      if (k == 17) current_->hub()->Kill(2);
    });
    EXPECT_EQ(got, want);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].nodes_before, 4);
    EXPECT_EQ(events[0].nodes_after, 3);
    // The prompt and the 16 tokens fed back so far (the 17th is the next input).
    EXPECT_EQ(events[0].rebuilt_tokens, 3 + 16);
    EXPECT_TRUE(cluster.Stop().ok());
  }
}

TEST_P(RecoveryTest, SeveralLossesDownToTheRootAlone) {
  const SamplerOptions greedy{0.0, 1.0, 1, 40};
  const std::vector<int32_t> want = Single(greedy);
  RecoveringCluster cluster(Factory({4, 3, 2, 1}), &clock_);
  ASSERT_TRUE(cluster.Start().ok());
  const auto got = Run(&cluster, greedy, [&](int k) {
    if (k == 5 || k == 20 || k == 33) current_->hub()->Kill(1);
  });
  EXPECT_EQ(got, want);
  EXPECT_EQ(cluster.recoveries().size(), 3u);
  EXPECT_EQ(cluster.nodes(), 1);
}

TEST_P(RecoveryTest, FailureDuringTheRebuildIsRecoveredToo) {
  const SamplerOptions greedy{0.0, 1.0, 1, 40};
  const std::vector<int32_t> want = Single(greedy);
  // The second session loses a worker before it can rebuild.
  SessionFactory base = Factory({4, 3, 2});
  SessionFactory flaky = [&]() -> absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> {
    auto s = base();
    if (s.ok() && made_ == 2) current_->hub()->Kill(1);
    return s;
  };
  RecoveringCluster cluster(flaky, &clock_);
  ASSERT_TRUE(cluster.Start().ok());
  const auto got = Run(&cluster, greedy, [&](int k) {
    if (k == 11) current_->hub()->Kill(3);
  });
  EXPECT_EQ(got, want);
  EXPECT_EQ(cluster.recoveries().size(), 2u);
  EXPECT_EQ(cluster.nodes(), 2);
}

TEST_P(RecoveryTest, LostNodesRejoinAtTheNextRequest) {
  const SamplerOptions greedy{0.0, 1.0, 1, 40};
  const std::vector<int32_t> want = Single(greedy);
  RecoveringCluster cluster(Factory({4, 3, 4}), &clock_);
  ASSERT_TRUE(cluster.Start().ok());
  EXPECT_EQ(Run(&cluster, greedy, [&](int k) {
              if (k == 9) current_->hub()->Kill(2);
            }),
            want);
  EXPECT_EQ(cluster.nodes(), 3);
  ASSERT_TRUE(cluster.Reset().ok());
  EXPECT_EQ(cluster.nodes(), 4);  // the fourth node is back
  EXPECT_EQ(cluster.rejoin_attempts(), 1);
  EXPECT_EQ(Run(&cluster, greedy, nullptr), want);
  ASSERT_TRUE(cluster.Reset().ok());  // full again: no new session
  EXPECT_EQ(cluster.rejoin_attempts(), 1);
  EXPECT_EQ(made_, 3);
}

TEST(RecoveryErrorsTest, BadRequestsAreNotRetried) {
  EXPECT_TRUE(IsRecoverable(absl::UnavailableError("x")));
  EXPECT_TRUE(IsRecoverable(absl::DeadlineExceededError("x")));
  EXPECT_FALSE(IsRecoverable(absl::InvalidArgumentError("x")));
  EXPECT_FALSE(IsRecoverable(absl::OutOfRangeError("context full")));
}

INSTANTIATE_TEST_SUITE_P(Types, RecoveryTest, ::testing::Values(DType::kF32, DType::kQ4_0),
                         [](const auto& info) { return info.param == DType::kF32 ? "f32" : "q4_0"; });

}  // namespace
}  // namespace shardlm
