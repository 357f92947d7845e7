// Cost-model runs: deterministic per seed, physically sane (memory
// bandwidth, shared cores), faults shift the timeline, crashes cost a
// recovery, and bad scenarios are one-line errors; a job alone on a host
// ends when HostModel::SoloFinish says (the quiet-phase shortcut).
#include "sim/cost_sim.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/host_model.h"
#include "sim/scenario_runner.h"
#include "sim/simulator.h"

namespace shardlm::sim {
namespace {

using ::testing::HasSubstr;

CostModel TestModel(double memory_gbps = 10, double decode_gbps = 100) {
  CostModel m;
  m.set_machine("test");
  m.set_cores_per_host(2);
  m.set_memory_read_gbps(memory_gbps);
  MatMulRate* r = m.add_matmul();
  r->set_type("q4_0");
  r->set_decode_gbps(decode_gbps);
  r->set_prefill_gbps(40);
  r->set_host_decode_gbps(memory_gbps);  // a host's streams share its memory bandwidth
  r->set_host_prefill_gbps(80);
  m.set_attention_gbps(20);
  m.set_op_overhead_us(0);
  m.set_sha256_gbps(1);
  m.mutable_link()->set_latency_us(10);
  m.mutable_link()->set_bandwidth_gbps(1);
  m.mutable_link()->set_per_message_us(2);
  return m;
}

Scenario MakeScenario(int nodes, int per_host, const std::string& extra = "") {
  auto s = ParseScenario(absl::StrCat(R"(
      name: "t" mode: COST_MODEL
      model { preset: "llama3-1b" type: "q4_0" }
      requests { prompt_length: 16 steps: 20 }
      cluster { nodes: )", nodes, " timeout_ms: 500 }\n cost { nodes_per_host: ", per_host,
                                      " }\n", extra),
                         "test");
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

CostRunReport RunOnce(const Scenario& s, const CostModel& m, uint64_t seed = 1) {
  auto sim = CostSimulation::Create(s, m);
  EXPECT_TRUE(sim.ok()) << sim.status();
  auto r = (*sim)->Run(seed);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(HostModelTest, SoloFinishIsWhenASoloJobEnds) {
  uint64_t state = 7;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  for (int i = 0; i < 2000; ++i) {
    const Work work{next() * std::pow(10.0, -7 + 7 * next()), next() * 1e9,
                    i % 3 == 0 ? 0 : next() * 1e-2};
    const int threads = 1 + i % 4, cores = 1 + (i / 4) % 4;
    Simulator sim;
    sim.At(SimEpoch() + absl::Nanoseconds(i), [] {});
    sim.Run();  // starts at a time other than the epoch
    HostModel host(&sim, cores);
    absl::Time done = absl::InfinitePast();
    host.Submit(work, threads, [&] { done = sim.Now(); });
    const absl::Time start = sim.Now();
    sim.Run();
    ASSERT_EQ(done - start, HostModel::SoloFinish(work, threads, cores))
        << "work " << work.seconds << " s, " << work.host_seconds << " host s, " << threads
        << " threads, " << cores << " cores";
  }
}

// Nodes alone on their hosts take the quiet-phase shortcut; a slow node
// (here slowed by nothing, for the whole run) makes every phase run job by
// job: the same timeline, with more events.
TEST(CostSimTest, QuietPhasesKeepTheTimeline) {
  const CostRunReport quiet = RunOnce(MakeScenario(8, 1), TestModel());
  const CostRunReport stepped = RunOnce(
      MakeScenario(8, 1, "faults { kind: SLOW at_ms: 0 node: 3 duration_ms: 1e9 extra_us: 0 }"),
      TestModel());
  EXPECT_EQ(quiet.trace_hash, stepped.trace_hash);
  EXPECT_EQ(quiet.virtual_time, stepped.virtual_time);
  EXPECT_EQ(quiet.prefill_time, stepped.prefill_time);
  EXPECT_EQ(quiet.decode_time, stepped.decode_time);
  EXPECT_EQ(quiet.collectives, stepped.collectives);
  EXPECT_LT(quiet.events * 3, stepped.events);
}

TEST(CostSimTest, SameSeedSameResult) {
  Scenario s = MakeScenario(4, 1);
  s.mutable_cluster()->mutable_link()->set_jitter_us(30);
  const CostRunReport a = RunOnce(s, TestModel(), 7);
  const CostRunReport b = RunOnce(s, TestModel(), 7);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.virtual_time, b.virtual_time);
  EXPECT_NE(RunOnce(s, TestModel(), 8).trace_hash, a.trace_hash);  // jitter follows the seed
  EXPECT_EQ(a.decode_tokens, 20);
  EXPECT_EQ(a.prompt_tokens, 16);
  EXPECT_TRUE(a.failed.empty());
}

TEST(CostSimTest, DoublingMemoryBandwidthDoublesAMemoryBoundDecode) {
  const Scenario s = MakeScenario(1, 1);
  const double slow = RunOnce(s, TestModel(10)).decode_tokens_per_s();
  const double fast = RunOnce(s, TestModel(20)).decode_tokens_per_s();
  EXPECT_GT(fast / slow, 1.8);
  EXPECT_LT(fast / slow, 2.05);
}

TEST(CostSimTest, NodesOnOneHostDoNotBeatItsCores) {
  // Compute-bound kernels (1 GB/s a thread, memory plentiful) on a 2-core host.
  const CostModel m = TestModel(1000, 1);
  const double one = RunOnce(MakeScenario(1, 1), m).decode_tokens_per_s();
  const double two = RunOnce(MakeScenario(2, 2), m).decode_tokens_per_s();
  const double four = RunOnce(MakeScenario(4, 4), m).decode_tokens_per_s();
  const double eight = RunOnce(MakeScenario(8, 8), m).decode_tokens_per_s();
  EXPECT_GT(two / one, 1.6);
  EXPECT_LE(four, two * 1.01);
  EXPECT_LE(eight, two * 1.01);
  // On hosts of their own they do scale.
  EXPECT_GT(RunOnce(MakeScenario(4, 1), m).decode_tokens_per_s() / two, 1.5);
}

TEST(CostSimTest, BusyCollectivesDelayEveryOne) {
  // Two nodes on hosts of their own: a decode step runs the step's command,
  // the embedding's broadcast, 2 all-reduces a layer and the output layer's
  // gather, each of one hop.
  const Scenario s = MakeScenario(2, 1);
  CostModel m = TestModel();
  const double plain = RunOnce(s, m).decode_tokens_per_s();
  m.set_busy_collective_us(1000);
  const double busy = RunOnce(s, m).decode_tokens_per_s();
  EXPECT_NEAR(1 / busy - 1 / plain, (2 + 2 * 16 + 1) * 1e-3, 1e-4);
}

TEST(CostSimTest, ACrashCostsARecovery) {
  const CostRunReport clean = RunOnce(MakeScenario(4, 1), TestModel());
  // Crash worker 2 in the middle of decoding.
  const double mid_ms = absl::ToDoubleMilliseconds(clean.virtual_time - clean.decode_time / 2);
  const std::string crash =
      absl::StrCat("faults { kind: CRASH at_ms: ", mid_ms, " node: 2 }\n");
  const CostRunReport r = RunOnce(MakeScenario(4, 1, crash + "recover: true"), TestModel());
  ASSERT_EQ(r.recoveries.size(), 1u);
  const RecoveryEvent& e = r.recoveries[0];
  EXPECT_EQ(e.nodes_before, 4);
  EXPECT_EQ(e.nodes_after, 3);
  EXPECT_GT(e.weight_bytes, 0);
  EXPECT_GT(e.rebuilt_tokens, 16);
  EXPECT_GT(e.rebuild, absl::ZeroDuration());
  EXPECT_GT(r.virtual_time, clean.virtual_time + e.replan);
  EXPECT_EQ(r.decode_tokens, clean.decode_tokens);
  EXPECT_TRUE(r.failed.empty());
  // Without recovery the request fails, with the reason.
  const CostRunReport lost = RunOnce(MakeScenario(4, 1, crash), TestModel());
  ASSERT_EQ(lost.failed.size(), 1u);
  EXPECT_THAT(lost.failed[0], HasSubstr("node 2"));
}

TEST(CostSimTest, SlowAndPausedNodesShiftTheTimeline) {
  const CostRunReport clean = RunOnce(MakeScenario(4, 1), TestModel());
  const CostRunReport slow = RunOnce(
      MakeScenario(4, 1, "faults { kind: SLOW at_ms: 0 node: 1 duration_ms: 1e6 extra_us: 100 }"),
      TestModel());
  EXPECT_GT(slow.virtual_time, clean.virtual_time);
  const double mid_ms = absl::ToDoubleMilliseconds(clean.virtual_time - clean.decode_time / 2);
  const CostRunReport paused = RunOnce(
      MakeScenario(4, 1, absl::StrCat("faults { kind: PAUSE at_ms: ", mid_ms,
                                      " node: 3 duration_ms: 50 }")),
      TestModel());
  EXPECT_GE(paused.virtual_time, clean.virtual_time + absl::Milliseconds(40));
  EXPECT_TRUE(paused.recoveries.empty());
}

TEST(CostSimTest, BadScenariosAreOneLineErrors) {
  // tiny q4_0 has 6 FFN blocks: 7 nodes cannot each get one.
  auto tiny = ParseScenario(R"(
      name: "t" mode: COST_MODEL model { preset: "tiny" type: "q4_0" }
      requests { prompt_length: 4 steps: 2 } cluster { nodes: 7 })",
                            "test");
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  auto too_many = CostSimulation::Create(*tiny, TestModel());
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.status().message(), HasSubstr("over 7 nodes"));
  auto clog = CostSimulation::Create(
      MakeScenario(4, 1, "faults { kind: CLOG at_ms: 1 node: 1 peer: 2 duration_ms: 1 }"),
      TestModel());
  ASSERT_FALSE(clog.ok());
  EXPECT_THAT(clog.status().message(), HasSubstr("CLOG is not modelled"));
  Scenario functional = MakeScenario(2, 1);
  functional.set_mode(Scenario::FUNCTIONAL);
  EXPECT_FALSE(CostSimulation::Create(functional, TestModel()).ok());
  CostModel f32_only = TestModel();
  f32_only.mutable_matmul(0)->set_type("f32");
  auto no_rate = CostSimulation::Create(MakeScenario(2, 1), f32_only);
  ASSERT_FALSE(no_rate.ok());
  EXPECT_THAT(no_rate.status().message(), HasSubstr("q4_0"));
}

}  // namespace
}  // namespace shardlm::sim
