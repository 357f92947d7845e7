// The shipped scenarios on the simulator: the invariants hold for a sweep
// of seeds, each seed's trace hash is reproducible, faults that kill no node
// leave the single-node text intact, a crash fails requests with a reason,
// and an injected sharding bug is caught.
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/scenario_runner.h"

namespace shardlm::sim {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

std::string ScenarioDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "shardlm", "/sim/scenarios");
}

// The runner of scenario `name`, or null (and the test skipped) when its
// model is absent.
std::unique_ptr<ScenarioRunner> Runner(const std::string& name) {
  auto scenario = LoadScenario(absl::StrCat(ScenarioDir(), "/", name, ".textproto"));
  EXPECT_TRUE(scenario.ok()) << scenario.status();
  if (!scenario.ok()) return nullptr;
  // Real models come from the runfiles (@models) when present.
  const char* srcdir = std::getenv("TEST_SRCDIR");
  auto runner = ScenarioRunner::Create(*scenario, absl::StrCat(srcdir ? srcdir : ".", "/models"));
  if (!runner.ok()) {
    EXPECT_TRUE(absl::IsNotFound(runner.status())) << runner.status();
    return nullptr;
  }
  return *std::move(runner);
}

class ShippedScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedScenarioTest, InvariantsHoldAndRunsRepeat) {
  auto runner = Runner(GetParam());
  if (runner == nullptr) GTEST_SKIP() << "model of " << GetParam() << " is absent";
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SimRunOptions options;
    options.seed = seed;
    auto a = runner->Run(options);
    auto b = runner->Run(options);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(a->violations.empty()) << "seed " << seed << ": " << a->violations[0];
    EXPECT_EQ(a->trace_hash, b->trace_hash) << "seed " << seed;
    EXPECT_EQ(a->events, b->events);
    if (runner->scenario().expect_all_complete()) {
      for (const RequestOutcome& q : a->requests) EXPECT_TRUE(q.completed) << q.error;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ShippedScenarioTest,
                         ::testing::Values("healthy_4_nodes", "uneven_jittery_3_nodes",
                                           "gray_failures_5_nodes", "tiny_8_nodes",
                                           "worker_crash", "lost_machines"));

TEST(ScenarioTest, ACrashFailsRequestsWithAReason) {
  auto runner = Runner("worker_crash");
  if (runner == nullptr) GTEST_SKIP() << "stories260K is absent";
  auto r = runner->Run(SimRunOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->violations.empty());
  ASSERT_EQ(r->requests.size(), 2u);
  EXPECT_FALSE(r->requests[0].completed);
  EXPECT_THAT(r->requests[0].error, HasSubstr("rank 2"));
  EXPECT_THAT(r->requests[1].error, HasSubstr("not run"));
  // Detected within a link latency of the crash, long before the 500 ms timeout.
  EXPECT_LT(r->virtual_time, absl::Milliseconds(100));
}

TEST(ScenarioTest, InjectedShardingBugIsCaught) {
  auto runner = Runner("tiny_8_nodes");
  ASSERT_NE(runner, nullptr);
  SimRunOptions options;
  options.seed = 3;
  options.inject_plan_bug = true;
  auto r = runner->Run(options);
  ASSERT_TRUE(r.ok());
  // Both the plan-coverage and the reference-text invariants see it.
  EXPECT_THAT(r->violations, Contains(HasSubstr("FFN rows")));
  EXPECT_THAT(r->violations, Contains(HasSubstr("held by 0 nodes")));
  EXPECT_THAT(r->violations, Contains(HasSubstr("differs from the single-node reference")));
}

TEST(ScenarioTest, DifferentSeedsDrawDifferentFaults) {
  auto runner = Runner("tiny_8_nodes");
  ASSERT_NE(runner, nullptr);
  SimRunOptions a, b;
  a.seed = 1;
  b.seed = 2;
  EXPECT_NE(runner->Run(a)->faults, runner->Run(b)->faults);
}

TEST(ScenarioTest, BadScenariosAreClearErrors) {
  EXPECT_THAT(ParseScenario("cluster { nodes: 0 }", "x").status().message(),
              HasSubstr("cluster.nodes"));
  EXPECT_THAT(ParseScenario("cluster { nodes: 2 } frobnicate: 1", "x").status().message(),
              HasSubstr("line 1"));
  EXPECT_THAT(ParseScenario("cluster { nodes: 2 } model { preset: \"tiny\" }", "x")
                  .status()
                  .message(),
              HasSubstr("no requests"));
  EXPECT_THAT(ParseScenario("cluster { nodes: 2 } model { preset: \"tiny\" } requests {} "
                            "faults { kind: CRASH node: 5 }",
                            "x")
                  .status()
                  .message(),
              HasSubstr("outside"));
  EXPECT_THAT(ParseScenario("cluster { nodes: 4 max_nodes: 3 } model { preset: \"tiny\" } "
                            "requests {}", "x").status().message(),
              HasSubstr("max_nodes"));
  EXPECT_THAT(ParseScenario("cluster { nodes: 2 max_nodes: 3 shares: [1, 2] } "
                            "model { preset: \"tiny\" } requests {}", "x").status().message(),
              HasSubstr("max_nodes"));
}

TEST(ScenarioTest, SeedsDrawEveryClusterSizeInTheRange) {
  Cluster c;
  c.set_nodes(2);
  c.set_max_nodes(8);
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const int n = NodesForSeed(c, seed);
    EXPECT_EQ(n, NodesForSeed(c, seed));
    ASSERT_GE(n, 2);
    ASSERT_LE(n, 8);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 7u);
  c.set_max_nodes(0);
  EXPECT_EQ(NodesForSeed(c, 5), 2);
}

// A seed's run uses the drawn cluster size; the faults stay inside it.
TEST(ScenarioTest, SwarmOverClusterSizesRunsTheDrawnSize) {
  absl::StatusOr<Scenario> s = ParseScenario(
      "name: \"sizes\" cluster { nodes: 2 max_nodes: 5 timeout_ms: 30 } "
      "model { preset: \"tiny\" type: \"f32\" } requests { prompt: \"a b\" steps: 6 } "
      "random_faults { count: 2 kinds: [CRASH, PAUSE] within_ms: 5 max_duration_ms: 10 } "
      "recover: true",
      "x");
  ASSERT_TRUE(s.ok()) << s.status();
  auto runner = ScenarioRunner::Create(*s, ".");
  ASSERT_TRUE(runner.ok()) << runner.status();
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SimRunOptions o;
    o.seed = seed;
    absl::StatusOr<SimRunReport> r = (*runner)->Run(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->nodes, NodesForSeed(s->cluster(), seed));
    EXPECT_TRUE(r->violations.empty()) << r->violations[0];
  }
}

}  // namespace
}  // namespace shardlm::sim
