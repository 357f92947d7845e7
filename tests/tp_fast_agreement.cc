// Measures fast tensor-parallel numerics against exact single-node numerics
// on a real GGUF: the single-node exact Engine generates --steps greedy
// tokens from BOS, then the same sequence is teacher-forced through an
// --nodes rank in-process fast cluster whose row-parallel all-reduces carry
// --wire. Prints the top-1 agreement and rank 0's traffic per token.
//
//   bazel run //tests:tp_fast_agreement -- --model /tmp/l1b_q4.gguf
//       --nodes 2 --steps 256 --wire q8_0 --threads 1   (one line)
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "backends/cpu/cpu_backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/gguf.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "core/tokenizer.h"
#include "gflags/gflags.h"
#include "transport/collectives.h"
#include "transport/local/local_cluster.h"

DEFINE_string(model, "", "GGUF model to measure");
DEFINE_int32(nodes, 2, "Ranks of the fast cluster");
DEFINE_int32(steps, 256, "Greedy tokens generated from BOS");
DEFINE_string(wire, "q8_0", "All-reduce wire format of the fast cluster: f32, f16 or q8_0");
DEFINE_int32(threads, 1, "Compute threads per backend (single node and each rank)");

namespace shardlm {
namespace {

BackendOptions Options(Numerics numerics) {
  BackendOptions o;
  o.threads = FLAGS_threads;
  o.numerics = numerics;
  return o;
}

// BOS then FLAGS_steps greedy tokens of the single-node exact Engine.
absl::StatusOr<std::vector<int32_t>> ExactGreedy(const GgufFile& file, int32_t bos, Clock& clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend,
                   CpuBackend::Create(Options(Numerics::kExact)));
  EngineOptions options;
  options.max_seq_len = FLAGS_steps + 1;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(&file, backend.get(), options));
  const absl::Time start = clock.Now();
  std::vector<int32_t> tokens = {bos};
  for (int i = 0; i < FLAGS_steps; ++i) {
    ASSIGN_OR_RETURN(std::vector<float> logits, engine->Forward({tokens.back()}));
    tokens.push_back(Argmax(logits));
  }
  std::printf("exact single node: %d tokens in %.1f s\n", FLAGS_steps,
              absl::ToDoubleSeconds(clock.Now() - start));
  return tokens;
}

// Teacher-forces `tokens` through the fast cluster; prints the figures.
absl::Status FastCluster(const GgufFile& file, const std::vector<int32_t>& tokens, WireFormat wire,
                         Clock& clock) {
  ASSIGN_OR_RETURN(LlamaConfig config, LlamaConfigFromGguf(file));
  ASSIGN_OR_RETURN(PlanWeightInfo info, PlanWeightInfo::FromGguf(file));
  ASSIGN_OR_RETURN(ShardPlan plan,
                   ShardPlan::Create(config, std::vector<int>(FLAGS_nodes, 1), info));
  ShardedEngineOptions engine_options;
  engine_options.clock = &clock;
  engine_options.wire = wire;
  engine_options.max_seq_len = FLAGS_steps + 1;
  ClusterOptions cluster_options;
  cluster_options.clock = &clock;
  auto make_backend = [](int) -> absl::StatusOr<std::unique_ptr<Backend>> {
    ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> b, CpuBackend::Create(Options(Numerics::kFast)));
    return std::unique_ptr<Backend>(std::move(b));
  };
  ASSIGN_OR_RETURN(std::unique_ptr<LocalCluster> cluster,
                   LocalCluster::Start(&file, plan, make_backend, engine_options, cluster_options));
  const absl::Time start = clock.Now();
  int agree = 0;
  const int steps = static_cast<int>(tokens.size()) - 1;
  for (int i = 0; i < steps; ++i) {
    ASSIGN_OR_RETURN(ShardedLogits logits, cluster->root()->Forward({tokens[i]}));
    agree += logits.greedy.at(0) == tokens[i + 1];
  }
  const double seconds = absl::ToDoubleSeconds(clock.Now() - start);
  const ShardedEngine& root = *cluster->root()->engine();
  const CollectiveStats& t = root.traffic();
  RETURN_IF_ERROR(cluster->Stop());
  std::printf("fast %d nodes, wire %s: %d tokens in %.1f s\n", FLAGS_nodes, WireFormatName(wire),
              steps, seconds);
  std::printf("top1 agreement: %d/%d (%.1f%%)\n", agree, steps, 100.0 * agree / steps);
  std::printf(
      "node 0 per token: %.0f bytes sent, %.0f received (%.1f + %.1f messages), "
      "%.2f ms in collectives\n",
      static_cast<double>(t.bytes_sent) / steps, static_cast<double>(t.bytes_received) / steps,
      static_cast<double>(t.messages_sent) / steps,
      static_cast<double>(t.messages_received) / steps,
      absl::ToDoubleMilliseconds(root.sync_time()) / steps);
  return absl::OkStatus();
}

absl::Status Run() {
  if (FLAGS_model.empty()) return absl::InvalidArgumentError("--model is required");
  if (FLAGS_steps < 1 || FLAGS_nodes < 1) {
    return absl::InvalidArgumentError("--steps and --nodes must be positive");
  }
  ASSIGN_OR_RETURN(WireFormat wire, ParseWireFormat(FLAGS_wire));
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(FLAGS_model));
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromGguf(*file);
  const int32_t bos = tokenizer.ok() ? (*tokenizer)->bos_id() : 1;
  RealClock clock;
  ASSIGN_OR_RETURN(std::vector<int32_t> tokens, ExactGreedy(*file, bos, clock));
  return FastCluster(*file, tokens, wire, clock);
}

}  // namespace
}  // namespace shardlm

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const absl::Status status = shardlm::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "tp_fast_agreement: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
