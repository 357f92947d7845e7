// The cost model file format (one-line errors), the op costs it gives a
// node's slice, and the host model's sharing of cores and memory.
#include "sim/cost_model.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/host_model.h"
#include "sim/simulator.h"

namespace shardlm::sim {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(
machine: "test"
cores_per_host: 2
memory_read_gbps: 20
matmul { type: "q4_0" decode_gbps: 10 prefill_gbps: 40 }
attention_gbps: 10
op_overhead_us: 1
link { latency_us: 10 bandwidth_gbps: 1 per_message_us: 5 }
)";

TEST(CostModelTest, ParsesAGoodFile) {
  auto model = ParseCostModel(kGood, "good");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->cores_per_host(), 2);
  EXPECT_EQ(model->matmul(0).type(), "q4_0");
}

// kGood with `from` replaced by `to`.
std::string Edited(const std::string& from, const std::string& to) {
  std::string text = kGood;
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(CostModelTest, BadFilesAreOneLineErrors) {
  const std::pair<std::string, std::string> cases[] = {
      {"cores_per_host: two", "f: line 1"},
      {absl::StrCat(kGood, "colour: 3"), "colour"},
      {Edited("cores_per_host: 2", "cores_per_host: 0"), "cores_per_host must be >= 1"},
      {Edited("memory_read_gbps: 20", "memory_read_gbps: -1"), "memory_read_gbps must be > 0"},
      {absl::StrCat(kGood, "matmul { type: \"q5_k\" decode_gbps: 1 prefill_gbps: 1 }"),
       "matmul type"},
      {absl::StrCat(kGood, "matmul { type: \"f32\" decode_gbps: 1 }"), "prefill_gbps"},
      {"cores_per_host: 1 memory_read_gbps: 1 attention_gbps: 1", "no matmul rates"},
  };
  for (const auto& [text, want] : cases) {
    auto model = ParseCostModel(text, "f");
    ASSERT_FALSE(model.ok()) << text;
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(model.status().message(), HasSubstr(want));
    EXPECT_THAT(model.status().message(), ::testing::Not(HasSubstr("\n")));
  }
  EXPECT_EQ(LoadCostModel("/nonexistent/cost.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CostModelTest, MissingWeightTypeIsNamed) {
  auto model = ParseCostModel(kGood, "good");
  ASSERT_TRUE(model.ok());
  auto costs = OpCosts::Create(*model, PlanWeightInfo(DType::kQ8_0));
  ASSERT_FALSE(costs.ok());
  EXPECT_THAT(costs.status().message(), HasSubstr("q8_0"));
}

TEST(CostModelTest, MatMulCostsFollowBytesAndBatch) {
  auto model = ParseCostModel(kGood, "good");
  ASSERT_TRUE(model.ok());
  auto costs = OpCosts::Create(*model, PlanWeightInfo(DType::kQ4_0));
  ASSERT_TRUE(costs.ok()) << costs.status();
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 1).seconds, 0.1);
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 8).seconds, 0.2);
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 8).bytes, 1e9);
  // No host rates given: cores x the one-thread rate.
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 1).host_seconds, 0.05);
}

// Finish time in ms of each of `jobs` equal jobs started together.
double FinishMs(int cores, int jobs, const Work& work) {
  Simulator sim;
  HostModel host(&sim, cores);
  absl::Time last = SimEpoch();
  for (int i = 0; i < jobs; ++i) host.Submit(work, 1, [&] { last = sim.Now(); });
  sim.Run();
  return absl::ToDoubleMilliseconds(last - SimEpoch());
}

TEST(HostModelTest, SharesCoresAndMemory) {
  const Work compute{0.010, 0, 0};  // 10 ms, nothing shared but cores
  EXPECT_NEAR(FinishMs(2, 1, compute), 10, 1e-3);
  EXPECT_NEAR(FinishMs(2, 2, compute), 10, 1e-3);
  EXPECT_NEAR(FinishMs(2, 4, compute), 20, 1e-3);  // 4 jobs on 2 cores
  // 10 GB/s alone; the host gives all its streams 10 GB/s together.
  const Work stream{0.010, 0.1e9, 0.010};
  EXPECT_NEAR(FinishMs(4, 1, stream), 10, 1e-3);
  EXPECT_NEAR(FinishMs(4, 2, stream), 20, 1e-3);
  // ... or 20 GB/s together.
  EXPECT_NEAR(FinishMs(4, 2, Work{0.010, 0.1e9, 0.005}), 10, 1e-3);
}

TEST(HostModelTest, CancelReturnsWorkLeft) {
  Simulator sim;
  HostModel host(&sim, 1);
  bool done = false;
  const int64_t id = host.Submit(Work{0.010, 0}, 1, [&] { done = true; });
  Work left;
  sim.At(SimEpoch() + absl::Milliseconds(4), [&] { left = host.Cancel(id); });
  sim.Run();
  EXPECT_FALSE(done);
  EXPECT_NEAR(left.seconds, 0.006, 1e-9);
}

}  // namespace
}  // namespace shardlm::sim
