// `shardlm sim`: runs a simulation scenario (sim/scenarios/*.textproto) on
// the deterministic simulator, for one seed or a range of seeds, checks the
// invariants, and prints a summary table; a failing seed gets a line that
// reproduces it. Traces: JSON lines of every network event, or a Chrome
// trace for Perfetto. Cost-model scenarios and --calibrate: tools/sim_cost.h.
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "core/run_recorder.h"
#include "sim/replay.h"
#include "sim/scenario_runner.h"
#include "tools/commands.h"
#include "tools/shared_flags.h"
#include "tools/sim_cost.h"

DEFINE_string(scenario, "", "Scenario file (sim/scenarios/*.textproto)");
DEFINE_string(seeds, "", "Swarm mode: run every seed in A:B (inclusive)");
DEFINE_string(trace, "", "Write every network event of the (single) run as JSON lines here");
DEFINE_string(chrome_trace, "", "Write a Chrome trace (open in Perfetto) of the (single) run here");
DEFINE_bool(check_determinism, false,
            "Run every seed twice and fail on the first event where the runs diverge");
DEFINE_string(replay, "",
              "Replay a recorded real run (generate --record FILE, exact numerics) on the "
              "simulator and compare it call by call with the recording");
DEFINE_bool(calibrate, false,
            "Measure this machine and write a cost model (sim/cost_model.proto) to --out");
DEFINE_string(cost_model, "",
              "Cost-model scenarios: use this cost model file instead of the scenario's");
DEFINE_bool(inject_plan_bug, false,
            "Testing: node 1 loads its FFN slice one row off; the invariants must catch it");

namespace shardlm::cli {
namespace {

using sim::NetEvent;

std::string EventJson(const NetEvent& e) {
  return absl::StrFormat(
      "{\"t_ns\": %d, \"kind\": \"%s\", \"node\": %d, \"peer\": %d, \"tag\": %u, "
      "\"bytes\": %d, \"hash\": \"%016x\"}",
      absl::ToInt64Nanoseconds(e.time - sim::SimEpoch()), e.kind, e.node, e.peer, e.tag, e.bytes,
      e.hash);
}

std::string ChromeEvent(const NetEvent& e) {
  return absl::StrFormat(
      "{\"name\": \"%s\", \"ph\": \"i\", \"s\": \"t\", \"ts\": %.3f, \"pid\": 0, \"tid\": %d, "
      "\"args\": {\"peer\": %d, \"tag\": %u, \"bytes\": %d}}",
      e.kind, absl::ToDoubleMicroseconds(e.time - sim::SimEpoch()), e.node, e.peer, e.tag,
      e.bytes);
}

absl::Status WriteTraces(const std::vector<NetEvent>& events) {
  if (!FLAGS_trace.empty()) {
    std::ofstream out(FLAGS_trace);
    for (const NetEvent& e : events) out << EventJson(e) << "\n";
    if (!out) return absl::DataLossError(absl::StrCat("cannot write ", FLAGS_trace));
  }
  if (!FLAGS_chrome_trace.empty()) {
    std::ofstream out(FLAGS_chrome_trace);
    out << "{\"traceEvents\": [\n";
    for (size_t i = 0; i < events.size(); ++i) {
      out << ChromeEvent(events[i]) << (i + 1 < events.size() ? ",\n" : "\n");
    }
    out << "]}\n";
    if (!out) return absl::DataLossError(absl::StrCat("cannot write ", FLAGS_chrome_trace));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> SeedRange() {
  if (FLAGS_seeds.empty()) return std::make_pair(SeedFlag(), SeedFlag());
  std::vector<std::string> parts = absl::StrSplit(FLAGS_seeds, ':');
  uint64_t a, b;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &a) || !absl::SimpleAtoi(parts[1], &b) ||
      a > b) {
    return absl::InvalidArgumentError(absl::StrCat("--seeds must be A:B with A <= B, got '",
                                                   FLAGS_seeds, "'"));
  }
  return std::make_pair(a, b);
}

// One seed (twice with --check-determinism); the events of the first run.
absl::StatusOr<sim::SimRunReport> RunSeed(const sim::ScenarioRunner& runner, uint64_t seed,
                                          std::vector<NetEvent>* events) {
  sim::SimRunOptions options;
  options.seed = seed;
  options.inject_plan_bug = FLAGS_inject_plan_bug;
  options.observer = [events](const NetEvent& e) { events->push_back(e); };
  ASSIGN_OR_RETURN(sim::SimRunReport report, runner.Run(options));
  if (!FLAGS_check_determinism) return report;
  std::vector<NetEvent> again;
  options.observer = [&again](const NetEvent& e) { again.push_back(e); };
  ASSIGN_OR_RETURN(const sim::SimRunReport second, runner.Run(options));
  for (size_t i = 0; i < std::max(events->size(), again.size()); ++i) {
    if (i >= events->size() || i >= again.size() ||
        EventJson((*events)[i]) != EventJson(again[i])) {
      report.violations.push_back(absl::StrCat("not deterministic: the runs diverge at event ", i));
      return report;
    }
  }
  if (second.trace_hash != report.trace_hash) {
    report.violations.push_back("not deterministic: trace hashes differ");
  }
  return report;
}

void PrintRow(const sim::SimRunReport& r, double wall_ms) {
  int done = 0;
  for (const auto& q : r.requests) done += q.completed;
  std::printf("%8llu  %5d  %4d/%-4zu  %6zu  %9lld  %8lld  %11.3f  %8.1f  %016llx  %s\n",
              static_cast<unsigned long long>(r.seed), r.nodes, done, r.requests.size(),
              r.faults.size(),
              static_cast<long long>(r.events), static_cast<long long>(r.messages),
              absl::ToDoubleMilliseconds(r.virtual_time), wall_ms,
              static_cast<unsigned long long>(r.trace_hash),
              r.violations.empty() ? "ok" : r.violations[0].c_str());
}

// What a swarm of seeds covered: cluster sizes, faults, recoveries.
class SwarmTally {
 public:
  void Add(const sim::SimRunReport& r) {
    ++nodes_[r.nodes];
    for (sim::Fault::Kind k : r.fault_kinds) ++faults_[sim::Fault::Kind_Name(k)];
    recoveries_ += static_cast<int64_t>(r.recoveries.size());
    for (const auto& q : r.requests) completed_ += q.completed;
    requests_ += static_cast<int64_t>(r.requests.size());
  }
  void Print() const {
    std::string nodes, faults;
    for (const auto& [n, count] : nodes_) absl::StrAppend(&nodes, " ", n, ":", count);
    for (const auto& [kind, count] : faults_) absl::StrAppend(&faults, " ", kind, ":", count);
    std::printf("runs per node count:%s\nfaults injected:%s\nrecoveries: %lld; requests "
                "completed: %lld of %lld\n",
                nodes.c_str(), faults.c_str(), static_cast<long long>(recoveries_),
                static_cast<long long>(completed_), static_cast<long long>(requests_));
  }

 private:
  std::map<int, int64_t> nodes_;
  std::map<std::string, int64_t> faults_;
  int64_t recoveries_ = 0, completed_ = 0, requests_ = 0;
};

// --replay: runs the recording on the simulator (twice with
// --check-determinism) and says whether it did what the real run did.
absl::Status RunReplay(int* failures) {
  if (!FLAGS_scenario.empty() || !FLAGS_seeds.empty()) {
    return absl::InvalidArgumentError("--replay takes no --scenario or --seeds");
  }
  ASSIGN_OR_RETURN(const record::Recording recording, LoadRecording(FLAGS_replay));
  std::vector<NetEvent> events;
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(const sim::ReplayReport report,
                   sim::Replay(recording, SeedFlag(),
                               [&events](const NetEvent& e) { events.push_back(e); }));
  const double wall_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  std::printf("replay of %s: %s run of %s, %d nodes, %d request(s)\n", FLAGS_replay.c_str(),
              recording.transport().c_str(), recording.model_path().c_str(), recording.nodes(),
              recording.requests_size());
  std::printf("sessions: %d recorded, %d replayed; root calls: %lld recorded, %lld compared\n",
              report.sessions_recorded, report.sessions_replayed,
              static_cast<long long>(report.ops_recorded),
              static_cast<long long>(report.ops_compared));
  for (const RecoveryEvent& e : report.run.recoveries) {
    std::printf("  recovery %s\n", e.ToString().c_str());
  }
  std::printf("virtual %.3f ms, wall %.1f ms, %lld events, trace hash %016llx\n",
              absl::ToDoubleMilliseconds(report.run.virtual_time), wall_ms,
              static_cast<long long>(report.run.events),
              static_cast<unsigned long long>(report.run.trace_hash));
  if (FLAGS_check_determinism) {
    ASSIGN_OR_RETURN(const sim::ReplayReport again, sim::Replay(recording, SeedFlag()));
    if (again.run.trace_hash != report.run.trace_hash) {
      std::printf("not deterministic: the second replay's trace hash is %016llx\n",
                  static_cast<unsigned long long>(again.run.trace_hash));
      ++*failures;
    }
  }
  RETURN_IF_ERROR(WriteTraces(events));
  for (const std::string& v : report.run.violations) {
    std::printf("violation: %s\n", v.c_str());
    ++*failures;
  }
  if (!report.matches()) {
    std::printf("diverged: %s\n", report.divergence.c_str());
    ++*failures;
  } else {
    std::printf("replay matches the recording: every root call and every token\n");
  }
  return absl::OkStatus();
}

absl::Status RunSimImpl(int* failures) {
  if (!FLAGS_replay.empty()) return RunReplay(failures);
  if (FLAGS_scenario.empty()) return absl::InvalidArgumentError("--scenario FILE is required");
  ASSIGN_OR_RETURN(const auto range, SeedRange());
  ASSIGN_OR_RETURN(const sim::Scenario scenario, sim::LoadScenario(FLAGS_scenario));
  const std::string dir = FLAGS_scenario.substr(0, FLAGS_scenario.find_last_of('/') + 1);
  if (scenario.mode() == sim::Scenario::COST_MODEL) {
    sim::Scenario cost_scenario = scenario;
    if (!FLAGS_cost_model.empty()) cost_scenario.mutable_cost()->set_cost_model(FLAGS_cost_model);
    return RunCostScenario(cost_scenario, dir.empty() ? "." : dir, range.first, range.second,
                           FLAGS_check_determinism, failures);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<sim::ScenarioRunner> runner,
                   sim::ScenarioRunner::Create(scenario, dir.empty() ? "." : dir));
  std::printf("scenario %s: %s\n", scenario.name().c_str(), scenario.description().c_str());
  std::printf("%8s  %5s  %9s  %6s  %9s  %8s  %11s  %8s  %16s  %s\n", "seed", "nodes", "requests", "faults",
              "events", "messages", "virtual ms", "wall ms", "trace hash", "invariants");
  std::vector<std::string> repro;
  SwarmTally tally;
  for (uint64_t seed = range.first; seed <= range.second; ++seed) {
    std::vector<NetEvent> events;
    const absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(const sim::SimRunReport report, RunSeed(*runner, seed, &events));
    PrintRow(report, absl::ToDoubleMilliseconds(absl::Now() - start));
    tally.Add(report);
    if (range.first == range.second) {
      for (const std::string& f : report.faults) std::printf("  fault   %s\n", f.c_str());
      for (const RecoveryEvent& e : report.recoveries) {
        std::printf("  recovery %s\n", e.ToString().c_str());
      }
      for (size_t i = 0; i < report.requests.size(); ++i) {
        const auto& q = report.requests[i];
        std::printf("  request %zu: %s\n", i,
                    q.completed ? absl::StrCat("completed: ", q.text).c_str()
                                : absl::StrCat("failed: ", q.error).c_str());
      }
      RETURN_IF_ERROR(WriteTraces(events));
    }
    if (!report.violations.empty()) {
      for (const std::string& v : report.violations) std::printf("  violation: %s\n", v.c_str());
      ++*failures;
      repro.push_back(absl::StrCat("shardlm sim --scenario ", FLAGS_scenario, " --seed ", seed,
                                   FLAGS_inject_plan_bug ? " --inject-plan-bug" : ""));
    }
  }
  const uint64_t runs = range.second - range.first + 1;
  if (runs > 1) tally.Print();
  std::printf("%llu runs, %d with broken invariants\n", static_cast<unsigned long long>(runs),
              *failures);
  for (const std::string& line : repro) std::printf("reproduce: %s\n", line.c_str());
  return absl::OkStatus();
}

}  // namespace

int RunSim(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("sim", absl::InvalidArgumentError(
                           absl::StrCat("unexpected argument '", args[0], "' (use --scenario)")));
  }
  if (FLAGS_calibrate) {
    const absl::Status s = RunCalibrate(OutFlag());
    return s.ok() ? 0 : Fail("sim", s);
  }
  int failures = 0;
  const absl::Status s = RunSimImpl(&failures);
  if (!s.ok()) return Fail("sim", s);
  return failures == 0 ? 0 : 1;
}

}  // namespace shardlm::cli
