// `shardlm make-model --preset NAME --out PATH [--type T] [--seed S] [--zeros]`:
// a synthetic llama model of a named shape (core/model_presets.h); `--list`
// shows the presets with parameter counts and file sizes per type; `--zeros`
// writes zero matrices as a sparse file (shapes only).
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "core/model_presets.h"
#include "core/status_macros.h"
#include "core/synthetic_model.h"
#include "gflags/gflags.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"

DEFINE_string(preset, "", "Model shape: tiny, llama3-1b, llama2-7b or llama3-8b (see --list)");
DEFINE_bool(list, false, "List the presets with parameter counts and file sizes, then exit");
DEFINE_bool(zeros, false,
            "All-zero weight matrices, written as a sparse file: the preset's shapes for "
            "inspect --plan and planning, without its disk space or generation time");
// Given as --seed (tools/shardlm_main.cc): `generate` owns the name "seed".

namespace shardlm::cli {
namespace {

constexpr DType kListTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                DType::kQ4_0};

std::string HumanCount(int64_t n) {
  if (n >= 1000000000) return absl::StrFormat("%.2f B", n / 1e9);
  if (n >= 1000000) return absl::StrFormat("%.2f M", n / 1e6);
  return absl::StrFormat("%.1f K", n / 1e3);
}

absl::Status ListPresets() {
  std::printf("%-10s %6s %5s %6s %5s %3s %7s %9s", "preset", "layers", "dim", "ffn", "heads",
              "kv", "vocab", "params");
  for (DType t : kListTypes) std::printf(" %10s", DTypeName(t).c_str());
  std::printf("  description\n");
  for (const ModelPreset& p : ModelPresets()) {
    const SyntheticModelSpec& s = p.spec;
    std::printf("%-10s %6lld %5lld %6lld %5lld %3lld %7lld %9s", p.name.c_str(),
                static_cast<long long>(s.n_layers), static_cast<long long>(s.dim),
                static_cast<long long>(s.ffn_dim), static_cast<long long>(s.n_heads),
                static_cast<long long>(s.n_kv_heads), static_cast<long long>(s.vocab_size),
                HumanCount(SyntheticParameterCount(s)).c_str());
    for (DType t : kListTypes) {
      SyntheticModelSpec typed = s;
      typed.type = t;
      ASSIGN_OR_RETURN(const uint64_t bytes, SyntheticFileSize(typed));
      std::printf(" %10s", HumanBytes(bytes).c_str());
    }
    std::printf("  %s\n", p.description.c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<SyntheticModelSpec> SpecFromFlags() {
  if (FLAGS_preset.empty()) {
    return absl::InvalidArgumentError("missing --preset NAME (see shardlm make-model --list)");
  }
  if (OutFlag().empty()) return absl::InvalidArgumentError("missing --out PATH");
  ASSIGN_OR_RETURN(const ModelPreset preset, FindModelPreset(FLAGS_preset));
  SyntheticModelSpec spec = preset.spec;
  if (!TypeFlag().empty()) {
    auto type = ParseDType(TypeFlag());
    if (!type.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--type must be f32, f16, bf16, q8_0 or q4_0, got '", TypeFlag(), "'"));
    }
    spec.type = *type;
  }
  spec.seed = SeedFlag();
  spec.zero_weights = FLAGS_zeros;
  return spec;
}

absl::Status MakeModel() {
  ASSIGN_OR_RETURN(const SyntheticModelSpec spec, SpecFromFlags());
  RealClock clock;
  const absl::Time start = clock.Now();
  ProgressLine progress(absl::StrCat("writing ", OutFlag()));
  const absl::Status written = WriteSyntheticModel(
      spec, OutFlag(), [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  if (!written.ok()) {
    progress.Clear();
    return written;
  }
  struct stat st;
  const uint64_t bytes = stat(OutFlag().c_str(), &st) == 0 ? st.st_size : 0;
  progress.Finish(absl::StrFormat("wrote %s: %s, %s, %s parameters, seed %d, %s in %.1f s",
                                  OutFlag(), spec.name, DTypeName(spec.type),
                                  HumanCount(SyntheticParameterCount(spec)), spec.seed,
                                  HumanBytes(bytes), absl::ToDoubleSeconds(clock.Now() - start)));
  return absl::OkStatus();
}

}  // namespace

int RunMakeModel(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("make-model", absl::InvalidArgumentError(absl::StrCat(
                                  "unexpected argument '", args[0], "' (use --out PATH)")));
  }
  absl::Status s = FLAGS_list ? ListPresets() : MakeModel();
  return s.ok() ? 0 : Fail("make-model", s);
}

}  // namespace shardlm::cli
