// `shardlm generate`: prompt in, text out (stdout: prompt + generated text),
// on one node or on N in-process nodes (--nodes N --transport local).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/gguf.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "core/tokenizer.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/commands.h"
#include "tools/shared_flags.h"
#include "transport/local/local_cluster.h"

DEFINE_string(prompt, "", "Text to continue (empty: start from BOS)");
DEFINE_int64(steps, 256, "Most tokens to generate (stops earlier at end-of-text)");
DEFINE_double(temperature, 0.8, "Sampling temperature; 0 is greedy");
DEFINE_double(top_p, 0.95, "Nucleus sampling mass in (0, 1]");
DEFINE_int32(top_k, 40, "Sample among the k most likely tokens only (0: no cut)");
DEFINE_int64(ctx, 0, "Context length in tokens (0: the model's, capped at 4096)");
DEFINE_bool(stats, false, "Print load time and prompt/decode tokens per second to stderr");
DEFINE_int32(nodes, 1, "Nodes of the tensor-parallel cluster (1: no cluster)");
DEFINE_string(transport, "local", "How the nodes talk: local (threads of this process)");
DEFINE_string(shares, "", "Relative work of each node, e.g. 1,1,2 (implies --nodes)");

namespace shardlm::cli {
namespace {

using OnToken = std::function<absl::Status(int32_t)>;

absl::Status WriteOut(const std::string& text) {
  if (text.empty()) return absl::OkStatus();
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    return absl::DataLossError("cannot write to stdout");
  }
  return absl::OkStatus();
}

// What the single-node and the cluster paths hand to RunAndPrint.
struct Target {
  const LlamaConfig* config = nullptr;
  int64_t max_seq_len = 0;
  std::string describe;  // the backend, and the cluster when there is one
  std::function<absl::StatusOr<GenerationStats>(Sampler*, absl::Span<const int32_t>,
                                                const OnToken&)>
      generate;
};

// The share vector from --nodes, --shares and --transport.
absl::StatusOr<std::vector<int>> SharesFromFlags() {
  if (FLAGS_transport == "tcp" || FLAGS_transport == "mpi") {
    return absl::UnimplementedError(absl::StrCat(
        "--transport ", FLAGS_transport, " is not available yet (use --transport local)"));
  }
  if (FLAGS_transport != "local") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --transport '", FLAGS_transport, "' (local, tcp or mpi)"));
  }
  if (FLAGS_nodes < 1 || FLAGS_nodes > kMaxPlanNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nodes must be in [1, ", kMaxPlanNodes, "], got ", FLAGS_nodes));
  }
  if (FLAGS_shares.empty()) return std::vector<int>(FLAGS_nodes, 1);
  absl::StatusOr<std::vector<int>> shares = ParseShares(FLAGS_shares);
  if (!shares.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--shares: ", shares.status().message()));
  }
  const bool nodes_given = !gflags::GetCommandLineFlagInfoOrDie("nodes").is_default;
  if (nodes_given && static_cast<int>(shares->size()) != FLAGS_nodes) {
    return absl::InvalidArgumentError(absl::StrCat("--shares ", FLAGS_shares, " gives ",
                                                   shares->size(), " nodes but --nodes is ",
                                                   FLAGS_nodes));
  }
  return shares;
}

// Checks the model against the tokenizer and the prompt against the
// context, then generates, printing the text and (--stats) the numbers.
absl::Status RunAndPrint(const Tokenizer& tokenizer, const SamplerOptions& sampling,
                         const Target& target, absl::Duration load_time, const std::string& path) {
  if (target.config->vocab_size != tokenizer.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tokenizer has ", tokenizer.vocab_size(), " tokens but the model's vocabulary is ",
        target.config->vocab_size));
  }
  const std::vector<int32_t> prompt = tokenizer.Encode(FLAGS_prompt, /*add_bos=*/true);
  if (static_cast<int64_t>(prompt.size()) >= target.max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("prompt is ", prompt.size(),
                                                   " tokens, the context holds ",
                                                   target.max_seq_len, " (see --ctx)"));
  }
  RETURN_IF_ERROR(WriteOut(FLAGS_prompt));
  Sampler sampler(sampling);
  Detokenizer detok(&tokenizer, prompt.back());
  ASSIGN_OR_RETURN(GenerationStats stats,
                   target.generate(&sampler, prompt,
                                   [&](int32_t id) { return WriteOut(detok.Push(id)); }));
  RETURN_IF_ERROR(WriteOut(detok.Flush() + "\n"));
  if (stats.context_full) {
    std::fprintf(stderr, "shardlm generate: stopped at the end of the context (%lld tokens)\n",
                 static_cast<long long>(target.max_seq_len));
  }
  if (FLAGS_stats) {
    std::fprintf(stderr,
                 "%s\nload: %.1f ms | prompt: %lld tokens, %.1f tokens/s | decode: %lld tokens, "
                 "%.1f tokens/s | %s\n",
                 target.config->ToString().c_str(), absl::ToDoubleMilliseconds(load_time),
                 static_cast<long long>(stats.prompt_tokens), stats.prefill_tokens_per_second(),
                 static_cast<long long>(stats.generated_tokens), stats.decode_tokens_per_second(),
                 target.describe.c_str());
  }
  return absl::OkStatus();
}

absl::Status RunSingleNode(const GgufFile& file, const Tokenizer& tokenizer,
                           const SamplerOptions& sampling, const std::string& path,
                           RealClock* clock, absl::Time load_start) {
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend(BackendNameFromFlags(), backend_options));
  EngineOptions engine_options;
  engine_options.max_seq_len = FLAGS_ctx;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   Engine::Create(&file, backend.get(), engine_options));
  Target target;
  target.config = &engine->config();
  target.max_seq_len = engine->max_seq_len();
  target.describe = backend->Describe();
  target.generate = [&](Sampler* sampler, absl::Span<const int32_t> prompt,
                        const OnToken& on_token) {
    return Generate(engine.get(), sampler, prompt, FLAGS_steps, tokenizer.eos_id(), clock,
                    on_token);
  };
  return RunAndPrint(tokenizer, sampling, target, clock->Now() - load_start, path);
}

absl::Status RunCluster(const GgufFile& file, const Tokenizer& tokenizer,
                        const SamplerOptions& sampling, const std::vector<int>& shares,
                        const std::string& path, RealClock* clock, absl::Time load_start) {
  const int n = static_cast<int>(shares.size());
  ASSIGN_OR_RETURN(BackendOptions backend_options, BackendOptionsFromFlags());
  if (backend_options.numerics != Numerics::kExact) {
    return absl::UnimplementedError(
        "--numerics fast is not available with --nodes > 1 yet (use --numerics exact)");
  }
  // The nodes share this machine's cores (--threads 0: all of them).
  const int total_threads = backend_options.threads > 0
                                ? backend_options.threads
                                : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  backend_options.threads = std::max(1, total_threads / n);
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(file));
  ASSIGN_OR_RETURN(const PlanWeightInfo info, PlanWeightInfo::FromGguf(file));
  absl::StatusOr<ShardPlan> plan = ShardPlan::Create(config, shares, info);
  if (!plan.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot split the model over ", n,
                                                   " nodes: ", plan.status().message()));
  }
  ShardedEngineOptions engine_options;
  engine_options.max_seq_len = FLAGS_ctx;
  engine_options.clock = clock;
  ClusterOptions cluster_options;
  cluster_options.clock = clock;
  const std::string backend_name = BackendNameFromFlags();
  ASSIGN_OR_RETURN(std::unique_ptr<LocalCluster> cluster,
                   LocalCluster::Start(
                       &file, *plan,
                       [&](int) { return CreateBackend(backend_name, backend_options); },
                       engine_options, cluster_options));
  ClusterRoot* root = cluster->root();
  Target target;
  target.config = &root->engine()->config();
  target.max_seq_len = root->engine()->max_seq_len();
  target.describe = absl::StrCat(cluster->backend(0)->Describe(), " | nodes ", n, " (shares ",
                                 FormatShares(shares), ")");
  target.generate = [&](Sampler* sampler, absl::Span<const int32_t> prompt,
                        const OnToken& on_token) {
    return GenerateDistributed(root, sampler, prompt, FLAGS_steps, tokenizer.eos_id(), clock,
                               on_token);
  };
  const absl::Status generated =
      RunAndPrint(tokenizer, sampling, target, clock->Now() - load_start, path);
  const absl::Status stopped = cluster->Stop();
  RETURN_IF_ERROR(generated);
  return stopped;
}

absl::Status RunGenerateImpl() {
  if (FLAGS_steps < 0) return absl::InvalidArgumentError("--steps must be >= 0");
  if (FLAGS_ctx < 0) return absl::InvalidArgumentError("--ctx must be >= 0");
  const SamplerOptions sampling{FLAGS_temperature, FLAGS_top_p, SeedFlag(), FLAGS_top_k};
  RETURN_IF_ERROR(ValidateSamplerOptions(sampling));
  ASSIGN_OR_RETURN(const std::vector<int> shares, SharesFromFlags());
  ASSIGN_OR_RETURN(const std::string path, ResolveModelPath(ModelFlag()));

  RealClock clock;
  const absl::Time load_start = clock.Now();
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromGguf(*file));
  if (shares.size() == 1) {
    return RunSingleNode(*file, *tokenizer, sampling, path, &clock, load_start);
  }
  return RunCluster(*file, *tokenizer, sampling, shares, path, &clock, load_start);
}

}  // namespace

int RunGenerate(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("generate", absl::InvalidArgumentError(absl::StrCat(
                                "unexpected argument '", args[0], "' (use --prompt TEXT)")));
  }
  absl::Status s = RunGenerateImpl();
  return s.ok() ? 0 : Fail("generate", s);
}

}  // namespace shardlm::cli
