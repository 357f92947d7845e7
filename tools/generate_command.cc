// `shardlm generate`: prompt in, text out (stdout: prompt + generated text).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/gguf.h"
#include "core/sampler.h"
#include "core/status_macros.h"
#include "core/tokenizer.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/commands.h"
#include "tools/shared_flags.h"

DEFINE_string(prompt, "", "Text to continue (empty: start from BOS)");
DEFINE_int64(steps, 256, "Most tokens to generate (stops earlier at end-of-text)");
DEFINE_double(temperature, 0.8, "Sampling temperature; 0 is greedy");
DEFINE_double(top_p, 0.95, "Nucleus sampling mass in (0, 1]");
DEFINE_int64(ctx, 0, "Context length in tokens (0: the model's, capped at 4096)");
DEFINE_bool(stats, false, "Print load time and prompt/decode tokens per second to stderr");

namespace shardlm::cli {
namespace {

absl::Status WriteOut(const std::string& text) {
  if (text.empty()) return absl::OkStatus();
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    return absl::DataLossError("cannot write to stdout");
  }
  return absl::OkStatus();
}

absl::Status RunGenerateImpl() {
  if (FLAGS_steps < 0) return absl::InvalidArgumentError("--steps must be >= 0");
  if (FLAGS_ctx < 0) return absl::InvalidArgumentError("--ctx must be >= 0");
  const SamplerOptions sampling{FLAGS_temperature, FLAGS_top_p, SeedFlag()};
  RETURN_IF_ERROR(ValidateSamplerOptions(sampling));
  ASSIGN_OR_RETURN(const std::string path, ResolveModelPath(ModelFlag()));

  RealClock clock;
  const absl::Time load_start = clock.Now();
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromGguf(*file));
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend(BackendNameFromFlags(), backend_options));
  EngineOptions engine_options;
  engine_options.max_seq_len = FLAGS_ctx;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   Engine::Create(file.get(), backend.get(), engine_options));
  if (engine->config().vocab_size != tokenizer->vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tokenizer has ", tokenizer->vocab_size(), " tokens but the model's vocabulary is ",
        engine->config().vocab_size));
  }
  const absl::Duration load_time = clock.Now() - load_start;

  const std::vector<int32_t> prompt = tokenizer->Encode(FLAGS_prompt, /*add_bos=*/true);
  if (static_cast<int64_t>(prompt.size()) >= engine->max_seq_len()) {
    return absl::InvalidArgumentError(absl::StrCat("prompt is ", prompt.size(),
                                                   " tokens, the context holds ",
                                                   engine->max_seq_len(), " (see --ctx)"));
  }
  RETURN_IF_ERROR(WriteOut(FLAGS_prompt));
  Sampler sampler(sampling);
  Detokenizer detok(tokenizer.get(), prompt.back());
  ASSIGN_OR_RETURN(GenerationStats stats,
                   Generate(engine.get(), &sampler, prompt, FLAGS_steps, tokenizer->eos_id(),
                            &clock, [&](int32_t id) { return WriteOut(detok.Push(id)); }));
  RETURN_IF_ERROR(WriteOut(detok.Flush() + "\n"));
  if (stats.context_full) {
    std::fprintf(stderr, "shardlm generate: stopped at the end of the context (%lld tokens)\n",
                 static_cast<long long>(engine->max_seq_len()));
  }
  if (FLAGS_stats) {
    std::fprintf(stderr,
                 "%s\nload: %.1f ms | prompt: %lld tokens, %.1f tokens/s | decode: %lld tokens, "
                 "%.1f tokens/s | %s\n",
                 engine->config().ToString().c_str(), absl::ToDoubleMilliseconds(load_time),
                 static_cast<long long>(stats.prompt_tokens), stats.prefill_tokens_per_second(),
                 static_cast<long long>(stats.generated_tokens), stats.decode_tokens_per_second(),
                 backend->Describe().c_str());
  }
  return absl::OkStatus();
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
