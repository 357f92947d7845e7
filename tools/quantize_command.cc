// `shardlm quantize IN OUT --type q8_0|q4_0`: an f32/f16/bf16 GGUF model to
// Q8_0 or Q4_0 (core/quantize.h), with progress and a summary on stderr.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "core/quantize.h"
#include "core/status_macros.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"

namespace shardlm::cli {
namespace {

absl::StatusOr<DType> TargetType() {
  const std::string name = TypeFlag();
  if (name.empty()) return absl::InvalidArgumentError("missing --type (q8_0 or q4_0)");
  auto type = ParseDType(name);
  if (!type.ok() || (*type != DType::kQ8_0 && *type != DType::kQ4_0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--type must be q8_0 or q4_0, got '", name, "'"));
  }
  return *type;
}

absl::Status Quantize(const std::string& in, const std::string& out) {
  ASSIGN_OR_RETURN(const DType type, TargetType());
  RealClock clock;
  const absl::Time start = clock.Now();
  ProgressLine progress(absl::StrCat("quantizing to ", DTypeName(type)));
  QuantizeOptions options;
  options.type = type;
  options.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
  absl::StatusOr<QuantizeStats> stats = QuantizeModel(in, out, options);
  if (!stats.ok()) {
    progress.Clear();
    return stats.status();
  }
  const double seconds = absl::ToDoubleSeconds(clock.Now() - start);
  const std::string kept = stats->kept_all_f32 ? "kept as f32" : "kept unquantized";
  progress.Finish(absl::StrFormat(
      "quantized %d tensors (%d %s), %.1f MiB -> %.1f MiB in %.1f s", stats->tensors_quantized,
      stats->tensors_kept, kept, stats->input_file_bytes / 1048576.0,
      stats->output_file_bytes / 1048576.0, seconds));
  return absl::OkStatus();
}

}  // namespace

int RunQuantize(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail("quantize", absl::InvalidArgumentError(absl::StrCat(
                                "expected IN and OUT, got ", args.size(),
                                " argument(s) (usage: shardlm quantize IN OUT --type q8_0|q4_0)")));
  }
  absl::Status s = Quantize(args[0], args[1]);
  return s.ok() ? 0 : Fail("quantize", s);
}

}  // namespace shardlm::cli
