#include "sim/cost_sim.h"

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/model_presets.h"
#include "core/status_macros.h"
#include "sim/cost_run.h"

namespace shardlm::sim {
namespace {

double PerSecond(int64_t tokens, absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  return s > 0 ? static_cast<double>(tokens) / s : 0;
}

absl::Status Invalid(const Scenario& s, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("scenario ", s.name(), ": ", what));
}

bool CostModeFault(Fault::Kind kind) {
  return kind == Fault::CRASH || kind == Fault::VANISH || kind == Fault::RESTART ||
         kind == Fault::PAUSE || kind == Fault::SLOW;
}

absl::Status CheckScenario(const Scenario& s) {
  if (s.mode() != Scenario::COST_MODEL) return Invalid(s, "not a cost-model scenario");
  if (s.model().preset().empty()) {
    return Invalid(s, "cost-model mode needs model.preset (no weights are loaded)");
  }
  for (const Request& q : s.requests()) {
    if (q.prompt_length() < 1 || q.steps() < 0) {
      return Invalid(s, "every request needs prompt_length >= 1 and steps >= 0");
    }
  }
  for (const Fault& f : s.faults()) {
    if (!CostModeFault(f.kind())) {
      return Invalid(s, absl::StrCat("fault ", Fault::Kind_Name(f.kind()),
                                     " is not modelled in cost-model mode"));
    }
  }
  for (int k : s.random_faults().kinds()) {
    if (!CostModeFault(static_cast<Fault::Kind>(k))) {
      return Invalid(s, absl::StrCat("random fault ", Fault::Kind_Name(static_cast<Fault::Kind>(k)),
                                     " is not modelled in cost-model mode"));
    }
  }
  const CostOptions& c = s.cost();
  if (c.threads() < 0 || c.nodes_per_host() < 0 || c.max_batch() < 0) {
    return Invalid(s, "cost.threads, cost.nodes_per_host and cost.max_batch must be >= 0");
  }
  return absl::OkStatus();
}

// The scenario's link fields, where set, replace the cost model's (the
// scenario's bandwidth is in Gbit/s, as in functional mode; the cost
// model's in GB/s).
void OverrideLink(const Link& link, LinkCost* cost) {
  if (link.latency_us() > 0) cost->set_latency_us(link.latency_us());
  if (link.bandwidth_gbps() > 0) cost->set_bandwidth_gbps(link.bandwidth_gbps() / 8);
  if (link.per_message_us() > 0) cost->set_per_message_us(link.per_message_us());
}

}  // namespace

double CostRunReport::prefill_tokens_per_s() const {
  return PerSecond(prompt_tokens, prefill_time);
}

double CostRunReport::decode_tokens_per_s() const {
  return PerSecond(decode_tokens, decode_time);
}

absl::StatusOr<std::unique_ptr<CostSimulation>> CostSimulation::Create(
    const Scenario& scenario, const std::string& scenario_dir) {
  RETURN_IF_ERROR(CheckScenario(scenario));
  const std::string& file = scenario.cost().cost_model();
  if (file.empty()) return Invalid(scenario, "cost.cost_model (a file) is required");
  std::string path = absl::StrCat(scenario_dir, "/", file);
  if (!std::ifstream(path).good()) path = file;
  ASSIGN_OR_RETURN(const CostModel model, LoadCostModel(path));
  return Create(scenario, model);
}

absl::StatusOr<std::unique_ptr<CostSimulation>> CostSimulation::Create(const Scenario& scenario,
                                                                       const CostModel& model) {
  RETURN_IF_ERROR(CheckScenario(scenario));
  CostSetup setup;
  setup.scenario = scenario;
  setup.model = model;
  OverrideLink(scenario.cluster().link(), setup.model.mutable_link());
  if (setup.model.sha256_gbps() <= 0) setup.model.set_sha256_gbps(1);
  ASSIGN_OR_RETURN(const ModelPreset preset, FindModelPreset(scenario.model().preset()));
  SyntheticModelSpec spec = preset.spec;
  if (!scenario.model().type().empty()) {
    ASSIGN_OR_RETURN(spec.type, ParseDType(scenario.model().type()));
  }
  RETURN_IF_ERROR(ValidateSyntheticModelSpec(spec));
  LlamaConfig& c = setup.config;
  c.architecture = "llama";
  c.context_length = spec.context_length;
  c.dim = spec.dim;
  c.ffn_dim = spec.ffn_dim;
  c.n_layers = spec.n_layers;
  c.n_heads = spec.n_heads;
  c.n_kv_heads = spec.n_kv_heads;
  c.head_dim = spec.dim / spec.n_heads;
  c.rope_dim = spec.rope_dim > 0 ? spec.rope_dim : c.head_dim;
  c.vocab_size = spec.vocab_size;
  PlanWeightInfo& w = setup.weights;
  w.wq = w.wo = SyntheticMatrixType(spec, spec.dim);
  w.wk = w.wv = w.gate = w.up = w.output = w.token_embd = SyntheticMatrixType(spec, spec.dim);
  w.down = SyntheticMatrixType(spec, spec.ffn_dim);
  w.tied_output = spec.tied_output;
  const CostOptions& o = scenario.cost();
  setup.threads = o.threads() > 0 ? o.threads() : 1;
  setup.nodes_per_host = o.nodes_per_host() > 0 ? o.nodes_per_host() : 1;
  setup.max_batch = o.max_batch() > 0 ? o.max_batch() : 64;
  if (!o.wire().empty()) {
    ASSIGN_OR_RETURN(setup.wire, ParseWireFormat(o.wire()));
  }
  if (!o.allreduce().empty()) {
    ASSIGN_OR_RETURN(setup.algorithm, ParseAllReduceAlgorithm(o.allreduce()));
  }
  // The plan of the whole cluster must exist (the planner's one-line error otherwise).
  const int n = scenario.cluster().nodes();
  std::vector<int> shares(scenario.cluster().shares().begin(), scenario.cluster().shares().end());
  if (shares.empty()) shares.assign(n, 1);
  RETURN_IF_ERROR(ShardPlan::Create(setup.config, shares, setup.weights).status());
  ASSIGN_OR_RETURN(OpCosts costs, OpCosts::Create(setup.model, setup.weights));
  return std::unique_ptr<CostSimulation>(new CostSimulation(std::move(setup), std::move(costs)));
}

absl::StatusOr<CostRunReport> CostSimulation::Run(uint64_t seed) const {
  CostRun run(setup_, costs_, seed);
  return run.Run();
}

}  // namespace shardlm::sim
