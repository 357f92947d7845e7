// `shardlm convert HF_DIR OUT.gguf [--type q8_0|q4_0]`: a Hugging Face model
// folder to a GGUF file that loads exactly as the folder does (same bytes
// as the in-memory conversion `--model HF_DIR` uses), optionally quantized.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "core/gguf_writer.h"
#include "core/hf_model.h"
#include "core/model_loader.h"
#include "core/quantize.h"
#include "core/status_macros.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"

namespace shardlm::cli {
namespace {

// Writes through OUT.partial and renames, so a failure never leaves a
// truncated model behind.
absl::Status WriteGguf(const GgufWriter& writer, const std::string& out, ProgressLine* progress) {
  const std::string partial = out + ".partial";
  absl::Status s = writer.Write(partial, [&](uint64_t done, uint64_t total) {
    progress->Update(done, total);
  });
  if (s.ok() && std::rename(partial.c_str(), out.c_str()) != 0) {
    s = absl::PermissionDeniedError(absl::StrCat(out, ": cannot rename ", partial));
  }
  if (!s.ok()) std::remove(partial.c_str());
  return s;
}

absl::Status Convert(const std::string& dir, const std::string& out) {
  if (!IsHfModelDir(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": not a Hugging Face model folder (no config.json)"));
  }
  RealClock clock;
  const absl::Time start = clock.Now();
  const std::string type = TypeFlag();
  ProgressLine progress(absl::StrCat("converting ", dir, type.empty() ? "" : " to " + type));
  if (!type.empty()) {
    absl::StatusOr<DType> target = ParseDType(type);
    if (!target.ok() || (*target != DType::kQ8_0 && *target != DType::kQ4_0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--type must be q8_0 or q4_0 (or left out to keep the folder's types), got '", type, "'"));
    }
    QuantizeOptions options;
    options.type = *target;
    options.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
    absl::StatusOr<QuantizeStats> stats = QuantizeModel(dir, out, options);
    if (!stats.ok()) {
      progress.Clear();
      return stats.status();
    }
    progress.Finish(absl::StrFormat("wrote %s (%.1f MiB, %d tensors %s) in %.1f s", out,
                                    stats->output_file_bytes / 1048576.0, stats->tensors_quantized,
                                    type, absl::ToDoubleSeconds(clock.Now() - start)));
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<GgufWriter>> writer = ConvertHfDir(dir);
  absl::Status s = writer.ok() ? WriteGguf(**writer, out, &progress) : writer.status();
  if (!s.ok()) {
    progress.Clear();
    return s;
  }
  progress.Finish(absl::StrFormat("wrote %s (%.1f MiB) in %.1f s", out,
                                  (*writer)->file_size() / 1048576.0,
                                  absl::ToDoubleSeconds(clock.Now() - start)));
  return absl::OkStatus();
}

}  // namespace

int RunConvert(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail("convert", absl::InvalidArgumentError(absl::StrCat(
                               "expected HF_DIR and OUT, got ", args.size(),
                               " argument(s) (usage: shardlm convert HF_DIR OUT.gguf [--type q8_0|q4_0])")));
  }
  absl::Status s = Convert(args[0], args[1]);
  return s.ok() ? 0 : Fail("convert", s);
}

}  // namespace shardlm::cli
