// The cost model file format (one-line errors), the op costs it gives a
// node's slice, and the host model's sharing of cores and memory.
#include "sim/cost_model.h"

#include <array>
#include <cmath>
#include <string>
#include <vector>

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
      {Edited("decode_gbps: 10", "decode_gbps: 10 decode_product_us: -1"),
       "decode_product_us must be >= 0"},
      {Edited("decode_gbps: 10",
              "decode_gbps: 10 decode_footprint { weight_mib: 64 gbps: 5 } "
              "decode_footprint { weight_mib: 32 gbps: 5 }"),
       "weight_mib must be > 0 and ascending"},
      {Edited("decode_gbps: 10", "decode_gbps: 10 decode_footprint { weight_mib: 64 }"),
       "decode_footprint gbps must be > 0"},
      {absl::StrCat(kGood, "busy_collective_us: -2"), "busy_collective_us must be >= 0"},
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

TEST(CostModelTest, DecodeProductsPayAFixedCost) {
  auto model = ParseCostModel(kGood, "good");
  ASSERT_TRUE(model.ok());
  model->mutable_matmul(0)->set_decode_product_us(50);
  auto costs = OpCosts::Create(*model, PlanWeightInfo(DType::kQ4_0));
  ASSERT_TRUE(costs.ok()) << costs.status();
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 1).seconds, 0.1 + 50e-6);
  // Its bytes still share the host's bandwidth; the fixed part does not.
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 1).host_seconds, 0.05);
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 1e9, 8).seconds, 0.2);  // batches: no
  EXPECT_DOUBLE_EQ(costs->MatMul(DType::kQ4_0, 0, 1).seconds, 0);      // nothing to multiply
}

// Two layers of llama3-1b's width with a small vocabulary, on one node.
NodeShard OneNode(LlamaConfig* c) {
  c->dim = 2048;
  c->ffn_dim = 8192;
  c->n_layers = 2;
  c->n_heads = 32;
  c->n_kv_heads = 8;
  c->head_dim = 64;
  c->rope_dim = 64;
  c->vocab_size = 1024;
  c->context_length = 256;
  auto plan = ShardPlan::Create(*c, {1}, PlanWeightInfo(DType::kQ4_0));
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan->nodes()[0];
}

TEST(CostModelTest, DecodeRateFollowsTheFootprint) {
  LlamaConfig c;
  const NodeShard node = OneNode(&c);
  auto model = ParseCostModel(kGood, "good");
  ASSERT_TRUE(model.ok());
  auto costs = OpCosts::Create(*model, PlanWeightInfo(DType::kQ4_0));
  ASSERT_TRUE(costs.ok());
  // q4_0 rows of 2048 columns are 1152 bytes, of 8192 (down) 4608.
  const double layer = (2048 + 512 + 512 + 2048 + 8192 + 8192) * 1152.0 + 2048 * 4608.0;
  const double streamed = 2 * layer + 1024 * 1152.0;
  EXPECT_DOUBLE_EQ(costs->StreamedBytes(c, node), streamed);

  auto rate_at = [&](const std::vector<std::array<double, 3>>& points) {
    CostModel m = *model;
    for (const auto& [mib, gbps, host] : points) {
      DecodeFootprint* f = m.mutable_matmul(0)->add_decode_footprint();
      f->set_weight_mib(mib);
      f->set_gbps(gbps);
      f->set_host_gbps(host);
    }
    auto with = OpCosts::Create(m, PlanWeightInfo(DType::kQ4_0));
    EXPECT_TRUE(with.ok()) << with.status();
    const Work w = with->ForNode(c, node).MatMul(DType::kQ4_0, 1e9, 1);
    return std::array<double, 2>{1e9 / w.seconds / 1e9, 1e9 / w.host_seconds / 1e9};
  };
  // Between two points: linear in log(footprint).
  const double t = std::log(streamed / (16.0 * 1048576)) / std::log(16.0);
  const auto between = rate_at({{16, 20, 30}, {256, 10, 20}});
  EXPECT_NEAR(between[0], 20 - 10 * t, 1e-9);
  EXPECT_NEAR(between[1], 30 - 10 * t, 1e-9);
  // Outside them the nearest holds.
  EXPECT_NEAR(rate_at({{1, 7, 9}, {2, 5, 8}})[0], 5, 1e-9);
  EXPECT_NEAR(rate_at({{512, 7, 9}, {1024, 5, 8}})[1], 9, 1e-9);
  // Without ForNode, and without points, decode_gbps holds.
  EXPECT_DOUBLE_EQ(costs->ForNode(c, node).MatMul(DType::kQ4_0, 1e9, 1).seconds, 0.1);
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
