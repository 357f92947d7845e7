// Tensor-parallel fast-numerics forward pass (core/sharded_engine.h): N ranks
// of fast-numerics backends whose row-parallel all-reduces carry f32, f16 or
// q8_0 agree (teacher-forced greedy top-1) with the single-node exact Engine;
// inconsistent numerics/wire combinations are rejected; traffic() counts
// exactly the bytes the collectives' formulas give.
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "transport/collectives.h"

namespace shardlm {
namespace {

using ::testing::HasSubstr;

constexpr int kSteps = 64;

BackendOptions OneThread(Numerics numerics) {
  BackendOptions o;
  o.threads = 1;
  o.numerics = numerics;
  return o;
}

Numerics NumericsFor(WireFormat wire) {
  return wire == WireFormat::kExact ? Numerics::kExact : Numerics::kFast;
}

// BOS then `steps` greedy tokens of the single-node exact Engine.
std::vector<int32_t> ExactGreedy(const GgufFile& file, int steps) {
  auto backend = CpuBackend::Create(OneThread(Numerics::kExact)).value();
  auto engine = Engine::Create(&file, backend.get(), EngineOptions{}).value();
  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < steps; ++i) {
    tokens.push_back(Argmax(engine->Forward({tokens.back()}).value()));
  }
  return tokens;
}

// One rank's engine for `wire`, with a backend of the matching numerics.
struct RankEngine {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<ShardedEngine> engine;
};

absl::StatusOr<RankEngine> MakeRank(const GgufFile& file, const ShardPlan& plan,
                                    Transport* transport, WireFormat wire,
                                    AllReduceAlgorithm algorithm, Clock* clock) {
  RankEngine r;
  ASSIGN_OR_RETURN(r.backend, CpuBackend::Create(OneThread(NumericsFor(wire))));
  ShardedEngineOptions options;
  options.clock = clock;
  options.wire = wire;
  options.algorithm = algorithm;
  ASSIGN_OR_RETURN(r.engine,
                   ShardedEngine::Create(&file, plan, r.backend.get(), transport, options));
  return r;
}

// Feeds tokens[0..n-2] one at a time through a cluster of `nodes` ranks;
// returns the global greedy choice after each (identical on every rank).
absl::StatusOr<std::vector<int32_t>> TeacherForced(const GgufFile& file, int nodes, WireFormat wire,
                                                   AllReduceAlgorithm algorithm,
                                                   const std::vector<int32_t>& tokens) {
  ASSIGN_OR_RETURN(LlamaConfig config, LlamaConfigFromGguf(file));
  ASSIGN_OR_RETURN(PlanWeightInfo info, PlanWeightInfo::FromGguf(file));
  ASSIGN_OR_RETURN(ShardPlan plan, ShardPlan::Create(config, std::vector<int>(nodes, 1), info));
  std::vector<std::vector<int32_t>> greedy(nodes);
  RealClock clock;
  RETURN_IF_ERROR(testing::RunLocalRanks(nodes, [&](Transport* transport) -> absl::Status {
    ASSIGN_OR_RETURN(RankEngine r, MakeRank(file, plan, transport, wire, algorithm, &clock));
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      ASSIGN_OR_RETURN(ShardedLogits step, r.engine->Forward({tokens[i]}));
      greedy[transport->rank()].push_back(step.greedy.at(0));
    }
    return absl::OkStatus();
  }));
  for (int rank = 1; rank < nodes; ++rank) {
    if (greedy[rank] != greedy[0]) {
      return absl::InternalError(absl::StrCat("rank ", rank, " chose other tokens than rank 0"));
    }
  }
  return greedy[0];
}

class FastAgreementTest
    : public ::testing::TestWithParam<std::tuple<WireFormat, int, AllReduceAlgorithm>> {
 protected:
  static void SetUpTestSuite() {
    SyntheticModelSpec spec = testing::SmallShardedModelSpec(DType::kQ8_0);
    spec.context_length = 128;
    const std::string path = testing::WriteSyntheticModelFile(spec, "fast_q8_0").value();
    file_ = GgufFile::Open(path).value().release();
    reference_ = new std::vector<int32_t>(ExactGreedy(*file_, kSteps));
  }
  static GgufFile* file_;
  static std::vector<int32_t>* reference_;
};

GgufFile* FastAgreementTest::file_ = nullptr;
std::vector<int32_t>* FastAgreementTest::reference_ = nullptr;

TEST_P(FastAgreementTest, TeacherForcedTop1AgreesWithSingleNodeExact) {
  const auto [wire, nodes, algorithm] = GetParam();
  absl::StatusOr<std::vector<int32_t>> got =
      TeacherForced(*file_, nodes, wire, algorithm, *reference_);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), static_cast<size_t>(kSteps));
  int agree = 0;
  for (int i = 0; i < kSteps; ++i) agree += (*got)[i] == (*reference_)[i + 1];
  const double rate = static_cast<double>(agree) / kSteps;
  std::cout << WireFormatName(wire) << " N=" << nodes << " " << AllReduceAlgorithmName(algorithm)
            << ": top1 agreement " << agree << "/" << kSteps << "\n";
  RecordProperty("agreement", agree);
  EXPECT_GE(rate, 0.9);
  if (wire == WireFormat::kF32) {
    EXPECT_GE(rate, 0.95);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Wires, FastAgreementTest,
    ::testing::Combine(::testing::Values(WireFormat::kF32, WireFormat::kF16, WireFormat::kQ8_0),
                       ::testing::Values(2, 3, 4),
                       ::testing::Values(AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect)),
    [](const auto& info) {
      return absl::StrCat(WireFormatName(std::get<0>(info.param)), "_N", std::get<1>(info.param),
                          "_", AllReduceAlgorithmName(std::get<2>(info.param)));
    });

// A tiny model and a one-node plan for the option checks.
class FastOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticModelSpec spec = testing::SmallShardedModelSpec(DType::kF32);
    spec.n_layers = 1;
    spec.vocab_size = kMinSyntheticVocabSize;
    file_ = GgufFile::Open(testing::WriteSyntheticModelFile(spec, "options").value()).value();
  }

  absl::Status CreateWith(Numerics numerics, WireFormat wire) {
    const LlamaConfig config = LlamaConfigFromGguf(*file_).value();
    const ShardPlan plan = ShardPlan::Create(config, {1}, PlanWeightInfo()).value();
    return testing::RunLocalRanks(1, [&](Transport* transport) -> absl::Status {
      auto backend = CpuBackend::Create(OneThread(numerics)).value();
      RealClock clock;
      ShardedEngineOptions options;
      options.clock = &clock;
      options.wire = wire;
      return ShardedEngine::Create(file_.get(), plan, backend.get(), transport, options).status();
    });
  }

  std::unique_ptr<GgufFile> file_;
};

TEST_F(FastOptionsTest, RejectsInconsistentNumericsAndWire) {
  for (WireFormat wire : {WireFormat::kF32, WireFormat::kF16, WireFormat::kQ8_0}) {
    const absl::Status exact = CreateWith(Numerics::kExact, wire);
    EXPECT_EQ(exact.code(), absl::StatusCode::kInvalidArgument) << WireFormatName(wire);
    EXPECT_THAT(exact.message(), HasSubstr("needs wire format exact"));
    EXPECT_TRUE(CreateWith(Numerics::kFast, wire).ok()) << WireFormatName(wire);
  }
  const absl::Status fast = CreateWith(Numerics::kFast, WireFormat::kExact);
  EXPECT_EQ(fast.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fast.message(), HasSubstr("f32, f16 or q8_0"));
  EXPECT_TRUE(CreateWith(Numerics::kExact, WireFormat::kExact).ok());
}

// The real clock, counting its Now() calls.
class CountingClock : public RealClock {
 public:
  absl::Time Now() const override {
    ++calls_;
    return RealClock::Now();
  }
  int64_t calls() const { return calls_; }

 private:
  mutable std::atomic<int64_t> calls_{0};
};

// What one single-token Forward moves for `rank`: the embedding broadcast
// from rank 0, two all-reduces of dim elements per layer and the greedy
// all-gather of one (value, id) pair per rank.
CollectiveStats OneTokenTraffic(const LlamaConfig& c, WireFormat wire, AllReduceAlgorithm algorithm,
                                int n, int rank) {
  CollectiveStats want;
  const int64_t embed = c.dim * 4;
  want.bytes_sent = rank == 0 ? (n - 1) * embed : 0;
  want.messages_sent = rank == 0 ? n - 1 : 0;
  want.bytes_received = rank == 0 ? 0 : embed;
  want.messages_received = rank == 0 ? 0 : 1;
  const CollectiveStats ar = AllReduceTraffic(wire, algorithm, c.dim, n, rank);
  want.bytes_sent += 2 * c.n_layers * ar.bytes_sent + (n - 1) * 8;
  want.bytes_received += 2 * c.n_layers * ar.bytes_received + (n - 1) * 8;
  want.messages_sent += 2 * c.n_layers * ar.messages_sent + (n - 1);
  want.messages_received += 2 * c.n_layers * ar.messages_received + (n - 1);
  return want;
}

void ExpectStats(const CollectiveStats& got, const CollectiveStats& want, int64_t times) {
  EXPECT_EQ(got.bytes_sent, times * want.bytes_sent);
  EXPECT_EQ(got.bytes_received, times * want.bytes_received);
  EXPECT_EQ(got.messages_sent, times * want.messages_sent);
  EXPECT_EQ(got.messages_received, times * want.messages_received);
}

TEST_F(FastOptionsTest, TrafficAndSyncTimeCountEveryCollective) {
  const LlamaConfig config = LlamaConfigFromGguf(*file_).value();
  const PlanWeightInfo info = PlanWeightInfo::FromGguf(*file_).value();
  for (WireFormat wire :
       {WireFormat::kExact, WireFormat::kF32, WireFormat::kF16, WireFormat::kQ8_0}) {
    for (AllReduceAlgorithm algorithm : {AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect}) {
      for (int n : {2, 3}) {
        SCOPED_TRACE(
            absl::StrCat(WireFormatName(wire), " ", AllReduceAlgorithmName(algorithm), " N=", n));
        const ShardPlan plan = ShardPlan::Create(config, std::vector<int>(n, 1), info).value();
        const absl::Status status =
            testing::RunLocalRanks(n, [&](Transport* transport) -> absl::Status {
              CountingClock clock;
              ASSIGN_OR_RETURN(RankEngine r,
                               MakeRank(*file_, plan, transport, wire, algorithm, &clock));
              const CollectiveStats want =
                  OneTokenTraffic(config, wire, algorithm, n, transport->rank());
              RETURN_IF_ERROR(r.engine->Forward({1}).status());
              ExpectStats(r.engine->traffic(), want, 1);
              RETURN_IF_ERROR(r.engine->Forward({5}).status());
              ExpectStats(r.engine->traffic(), want, 2);
              // Two clock reads per collective: 2 + 2 x layers collectives a step.
              EXPECT_EQ(clock.calls(), 2 * 2 * (2 + 2 * config.n_layers));
              EXPECT_GT(r.engine->sync_time(), absl::ZeroDuration());
              return absl::OkStatus();
            });
        EXPECT_TRUE(status.ok()) << status;
      }
    }
  }
}

}  // namespace
}  // namespace shardlm
