#include "tools/sim_cost.h"

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/clock.h"
#include "core/status_macros.h"
#include "sim/calibrate.h"
#include "sim/cost_model.h"
#include "sim/cost_sim.h"

namespace shardlm::cli {
namespace {

void PrintHeader(const sim::CostSimulation& simulation) {
  const sim::CostSetup& s = simulation.setup();
  const sim::Scenario& q = s.scenario;
  std::printf("scenario %s: %s\n", q.name().c_str(), q.description().c_str());
  std::printf("cost model: %s\n", s.model.machine().c_str());
  std::printf(
      "cluster: %d nodes, %d per host of %d cores, %d thread(s) each; %s %s; wire %s, "
      "all-reduce %s; link %.1f us, %.2f GB/s, %.2f us per message\n",
      q.cluster().nodes(), s.nodes_per_host, s.model.cores_per_host(), s.threads,
      q.model().preset().c_str(), q.model().type().c_str(), WireFormatName(s.wire),
      AllReduceAlgorithmName(s.algorithm), s.model.link().latency_us(),
      s.model.link().bandwidth_gbps(), s.model.link().per_message_us());
  std::printf("%6s  %7s  %7s  %13s  %12s  %13s  %9s  %10s  %10s  %16s  %s\n", "seed", "prompt",
              "decode", "prefill tok/s", "decode tok/s", "simulated ms", "wall ms", "events",
              "events/s", "trace hash", "requests");
}

void PrintRow(const sim::CostRunReport& r, double wall_s) {
  std::printf("%6llu  %7lld  %7lld  %13.1f  %12.2f  %13.1f  %9.1f  %10lld  %10.3g  %016llx  %s\n",
              static_cast<unsigned long long>(r.seed), static_cast<long long>(r.prompt_tokens),
              static_cast<long long>(r.decode_tokens), r.prefill_tokens_per_s(),
              r.decode_tokens_per_s(), absl::ToDoubleMilliseconds(r.virtual_time), wall_s * 1e3,
              static_cast<long long>(r.events), r.events / std::max(wall_s, 1e-9),
              static_cast<unsigned long long>(r.trace_hash),
              r.failed.empty() ? "ok" : r.failed[0].c_str());
}

void PrintDetails(const sim::CostRunReport& r, double wall_s) {
  for (const std::string& f : r.faults) std::printf("  fault    %s\n", f.c_str());
  for (const RecoveryEvent& e : r.recoveries) {
    const double replan_ms = absl::ToDoubleMilliseconds(e.replan);
    std::printf(
        "  recovery %s\n  recovery timeline: detection %.1f ms; re-plan %d -> %d nodes with "
        "%.1f MB of weights moved in %.1f ms; KV rebuild of %lld tokens in %.1f ms; total %.1f "
        "ms\n",
        e.ToString().c_str(), absl::ToDoubleMilliseconds(e.detect), e.nodes_before,
        e.nodes_after, e.weight_bytes / 1e6, replan_ms, static_cast<long long>(e.rebuilt_tokens),
        absl::ToDoubleMilliseconds(e.rebuild),
        absl::ToDoubleMilliseconds(e.detect + e.replan + e.rebuild));
  }
  std::printf("  prefill %.1f ms, decode %.1f ms; %lld collectives; simulated %.3f s in %.3f s "
              "of wall time (%.0fx faster than real time)\n",
              absl::ToDoubleMilliseconds(r.prefill_time), absl::ToDoubleMilliseconds(r.decode_time),
              static_cast<long long>(r.collectives), absl::ToDoubleSeconds(r.virtual_time), wall_s,
              absl::ToDoubleSeconds(r.virtual_time) / std::max(wall_s, 1e-9));
}

bool SameResult(const sim::CostRunReport& a, const sim::CostRunReport& b) {
  return a.trace_hash == b.trace_hash && a.events == b.events &&
         a.virtual_time == b.virtual_time && a.recoveries.size() == b.recoveries.size();
}

}  // namespace

absl::Status RunCostScenario(const sim::Scenario& scenario, const std::string& dir,
                             uint64_t first, uint64_t last, bool check_determinism,
                             int* failures) {
  ASSIGN_OR_RETURN(std::unique_ptr<sim::CostSimulation> simulation,
                   sim::CostSimulation::Create(scenario, dir));
  PrintHeader(*simulation);
  RealClock clock;
  for (uint64_t seed = first; seed <= last; ++seed) {
    const absl::Time start = clock.Now();
    ASSIGN_OR_RETURN(const sim::CostRunReport report, simulation->Run(seed));
    const double wall_s = absl::ToDoubleSeconds(clock.Now() - start);
    PrintRow(report, wall_s);
    if (first == last) PrintDetails(report, wall_s);
    bool bad = !report.failed.empty() && scenario.expect_all_complete();
    if (check_determinism) {
      ASSIGN_OR_RETURN(const sim::CostRunReport again, simulation->Run(seed));
      if (!SameResult(report, again)) {
        std::printf("  violation: not deterministic: seed %llu gave two results\n",
                    static_cast<unsigned long long>(seed));
        bad = true;
      }
    }
    *failures += bad;
  }
  std::printf("%llu runs, %d with broken invariants\n",
              static_cast<unsigned long long>(last - first + 1), *failures);
  return absl::OkStatus();
}

absl::Status RunCalibrate(const std::string& out) {
  if (out.empty()) return absl::InvalidArgumentError("--calibrate needs --out FILE");
  RealClock clock;
  sim::CalibrateOptions options;
  options.clock = &clock;
  options.progress = [](const std::string& line) {
    std::fprintf(stderr, "calibrate: %s\n", line.c_str());
  };
  const absl::Time start = clock.Now();
  ASSIGN_OR_RETURN(const sim::CostModel model, sim::Calibrate(options));
  RETURN_IF_ERROR(sim::WriteCostModel(model, out));
  std::fprintf(stderr, "calibrate: wrote %s in %.1f s\n", out.c_str(),
               absl::ToDoubleSeconds(clock.Now() - start));
  return absl::OkStatus();
}

}  // namespace shardlm::cli
