// `shardlm generate`: prompt in, text out (stdout: prompt + generated text),
// on one node, on N in-process nodes (--nodes N --transport local), on a
// TCP cluster of `shardlm worker` processes (--transport tcp --workers ...)
// or on the ranks of an MPI job (mpirun -np N shardlm generate --transport
// mpi: rank 0 prints, the others serve it silently).
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
#include "core/run_record.pb.h"
#include "core/run_recorder.h"
#include "core/sampler.h"
#include "core/shard_plan.h"
#include "core/sharded_engine.h"
#include "core/status_macros.h"
#include "core/tokenizer.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/commands.h"
#include "tools/model_open.h"
#include "tools/shared_flags.h"
#include "tools/cluster_launch.h"

DEFINE_string(prompt, "", "Text to continue (empty: start from BOS)");
DEFINE_string(prompts, "",
              "File of prompts, one per line: each is a request of its own, run in turn on the "
              "same model or cluster (the same seed each), its text printed on a line of its own");
DEFINE_int64(steps, 256, "Most tokens to generate (stops earlier at end-of-text)");
DEFINE_double(temperature, 0.8, "Sampling temperature; 0 is greedy");
DEFINE_double(top_p, 0.95, "Nucleus sampling mass in (0, 1]");
DEFINE_int32(top_k, 40, "Sample among the k most likely tokens only (0: no cut)");
DEFINE_int64(ctx, 0, "Context length in tokens (0: the model's, capped at 4096)");
DEFINE_bool(stats, false, "Print load time and prompt/decode tokens per second to stderr");

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
  // Readies the model or cluster for the next request.
  std::function<absl::Status()> next_request;
};

// The requests the flags ask for: --prompt, or each line of --prompts.
absl::StatusOr<std::vector<std::string>> PromptsFromFlags() {
  if (FLAGS_prompts.empty()) return std::vector<std::string>{FLAGS_prompt};
  if (!FLAGS_prompt.empty()) {
    return absl::InvalidArgumentError("give --prompt or --prompts, not both");
  }
  std::FILE* f = std::fopen(FLAGS_prompts.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("--prompts: cannot open ", FLAGS_prompts));
  }
  std::vector<std::string> prompts(1);
  for (int c; (c = std::fgetc(f)) != EOF;) {
    if (c == '\n') {
      prompts.emplace_back();
    } else if (c != '\r') {
      prompts.back().push_back(static_cast<char>(c));
    }
  }
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) return absl::DataLossError(absl::StrCat("--prompts: cannot read ", FLAGS_prompts));
  if (prompts.back().empty()) prompts.pop_back();  // the newline ending the last line
  if (prompts.empty()) return absl::InvalidArgumentError(absl::StrCat("--prompts: ", FLAGS_prompts, " is empty"));
  return prompts;
}

// Generates from one prompt, printing the text and (--stats) the numbers.
absl::Status RunRequest(const Tokenizer& tokenizer, const SamplerOptions& sampling,
                        const Target& target, absl::Duration load_time,
                        const std::string& text) {
  const std::vector<int32_t> prompt = tokenizer.Encode(text, tokenizer.add_bos_token() || text.empty());
  if (static_cast<int64_t>(prompt.size()) >= target.max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("prompt is ", prompt.size(),
                                                   " tokens, the context holds ",
                                                   target.max_seq_len, " (see --ctx)"));
  }
  RETURN_IF_ERROR(WriteOut(text));
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

// Checks the model against the tokenizer, then runs every request.
absl::Status RunAndPrint(const Tokenizer& tokenizer, const SamplerOptions& sampling,
                         const Target& target, absl::Duration load_time, const std::string& path) {
  if (target.config->vocab_size != tokenizer.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tokenizer has ", tokenizer.vocab_size(), " tokens but the model's vocabulary is ",
        target.config->vocab_size));
  }
  ASSIGN_OR_RETURN(const std::vector<std::string> prompts, PromptsFromFlags());
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (i > 0) RETURN_IF_ERROR(target.next_request());
    RETURN_IF_ERROR(RunRequest(tokenizer, sampling, target, load_time, prompts[i]));
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
  target.next_request = [&] {
    engine->Reset();
    return absl::OkStatus();
  };
  return RunAndPrint(tokenizer, sampling, target, clock->Now() - load_start, path);
}

// One request on the cluster; with --stats, every node's traffic after the
// prompt and at the end (of the session then running: a recovery starts a
// new one).
absl::StatusOr<GenerationStats> GenerateOnCluster(LaunchedCluster* cluster,
                                                  const Tokenizer& tokenizer, Sampler* sampler,
                                                  absl::Span<const int32_t> prompt, Clock* clock,
                                                  const OnToken& on_token) {
  std::vector<NodeTraffic> start, after_prompt;
  int64_t tokens_out = 0;
  const int recoveries_before = cluster->recoveries();
  if (FLAGS_stats) {
    ASSIGN_OR_RETURN(start, cluster->root()->CollectStats());
  }
  ASSIGN_OR_RETURN(GenerationStats stats,
                   Generate(cluster->stepper(), sampler, prompt, FLAGS_steps, tokenizer.eos_id(),
                            clock, [&](int32_t id) -> absl::Status {
                              if (FLAGS_stats && tokens_out++ == 0) {
                                ASSIGN_OR_RETURN(after_prompt, cluster->root()->CollectStats());
                              }
                              return on_token(id);
                            }));
  const int recovered = cluster->recoveries() - recoveries_before;
  if (FLAGS_stats && recovered > 0) {
    std::fprintf(stderr, "recovered from %d lost worker(s) (timelines above); per-node traffic "
                 "not shown (the sessions changed)\n", recovered);
  } else if (FLAGS_stats && tokens_out > 0) {
    ASSIGN_OR_RETURN(const std::vector<NodeTraffic> end, cluster->root()->CollectStats());
    PrintTrafficTable(start, after_prompt, static_cast<int64_t>(prompt.size()), "prompt");
    PrintTrafficTable(after_prompt, end, tokens_out - 1, "decode");
  }
  return stats;
}

// What --record notes of a request before it runs.
record::RecordedRequest RecordedRequestOf(absl::Span<const int32_t> prompt,
                                          const SamplerOptions& sampling) {
  record::RecordedRequest r;
  for (int32_t t : prompt) r.add_prompt_tokens(t);
  r.set_steps(FLAGS_steps);
  r.set_temperature(sampling.temperature);
  r.set_top_p(sampling.top_p);
  r.set_top_k(sampling.top_k);
  r.set_seed(sampling.seed);
  return r;
}

absl::Status RunCluster(std::shared_ptr<const GgufFile> file, const Tokenizer& tokenizer,
                        const SamplerOptions& sampling, const std::vector<int>& shares,
                        const std::string& path, RealClock* clock, absl::Time load_start,
                        ClusterProcess* process) {
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  ASSIGN_OR_RETURN(std::unique_ptr<LaunchedCluster> cluster,
                   LaunchClusterFromFlags(path, std::move(file), shares, backend_options, FLAGS_ctx, clock,
                                          process));
  Target target;
  target.config = &cluster->root()->engine()->config();
  target.max_seq_len = cluster->root()->engine()->max_seq_len();
  target.describe = cluster->describe();
  target.next_request = [&] { return cluster->NextRequest(); };
  RunRecorder* recorder = cluster->recorder();
  target.generate = [&](Sampler* sampler, absl::Span<const int32_t> prompt,
                        const OnToken& on_token) -> absl::StatusOr<GenerationStats> {
    if (recorder != nullptr) recorder->BeginRequest(RecordedRequestOf(prompt, sampling));
    absl::StatusOr<GenerationStats> stats = GenerateOnCluster(
        cluster.get(), tokenizer, sampler, prompt, clock, [&](int32_t id) {
          if (recorder != nullptr) recorder->AddToken(id);
          return on_token(id);
        });
    if (recorder != nullptr) recorder->EndRequest(stats.status());
    return stats;
  };
  const absl::Status generated =
      RunAndPrint(tokenizer, sampling, target, clock->Now() - load_start, path);
  const absl::Status stopped = cluster->Stop();
  const absl::Status saved = cluster->SaveRecording();  // a failed run's too
  if (generated.ok() && stopped.ok()) RETURN_IF_ERROR(saved);
  RETURN_IF_ERROR(generated);
  return stopped;
}

absl::Status RunGenerateImpl(ClusterProcess* process) {
  if (FLAGS_steps < 0) return absl::InvalidArgumentError("--steps must be >= 0");
  if (FLAGS_ctx < 0) return absl::InvalidArgumentError("--ctx must be >= 0");
  const SamplerOptions sampling{FLAGS_temperature, FLAGS_top_p, SeedFlag(), FLAGS_top_k};
  RETURN_IF_ERROR(ValidateSamplerOptions(sampling));
  ASSIGN_OR_RETURN(const std::vector<int> shares, ClusterSharesFromFlags(*process));
  ASSIGN_OR_RETURN(const std::string path, ResolveModelPath(ModelFlag()));

  RealClock clock;
  const absl::Time load_start = clock.Now();
  ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> file, OpenModel(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromGguf(*file));
  if (shares.size() == 1) {
    return RunSingleNode(*file, *tokenizer, sampling, path, &clock, load_start);
  }
  return RunCluster(file, *tokenizer, sampling, shares, path, &clock, load_start, process);
}

}  // namespace

int RunGenerate(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("generate", absl::InvalidArgumentError(absl::StrCat(
                                "unexpected argument '", args[0], "' (use --prompt TEXT)")));
  }
  absl::StatusOr<std::unique_ptr<ClusterProcess>> process = ClusterProcess::FromFlags();
  if (!process.ok()) return Fail("generate", process.status());
  if ((*process)->is_worker()) return (*process)->ServeAsWorker("generate");
  return (*process)->Finish("generate", RunGenerateImpl(process->get()));
}

}  // namespace shardlm::cli
