// `shardlm inspect PATH [--plan SPEC]`: what is inside a GGUF file and,
// with --plan, how it would be sharded over a cluster.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/gguf.h"
#include "core/model_config.h"
#include "core/shard_plan.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "tools/commands.h"
#include "tools/model_open.h"

DEFINE_int32(max_array, 8, "Array elements shown per metadata value");
DEFINE_string(plan, "",
              "Also print the shard plan for this many nodes (\"3\") or these shares "
              "(\"1,1,2\"): each node's heads, FFN and vocabulary rows, bytes");

namespace shardlm::cli {
namespace {

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = b;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(b, " B") : absl::StrFormat("%.2f %s", v, units[u]);
}

// The plan of `file` over `shares`; errors start with "--plan SPEC: ".
absl::StatusOr<ShardPlan> PlanFor(const GgufFile& file, const std::vector<int>& shares) {
  absl::StatusOr<ShardPlan> plan = [&]() -> absl::StatusOr<ShardPlan> {
    ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(file));
    ASSIGN_OR_RETURN(const PlanWeightInfo weights, PlanWeightInfo::FromGguf(file));
    return ShardPlan::Create(config, shares, weights);
  }();
  if (plan.ok()) return plan;
  return absl::Status(plan.status().code(),
                      absl::StrCat("--plan ", FLAGS_plan, ": ", plan.status().message()));
}

// Prints the file; with `shares`, plans first (so an impossible plan prints
// nothing but its error) and prints the plan last.
absl::Status Inspect(const std::string& path, const std::vector<int>* shares) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, OpenModel(path));
  std::optional<ShardPlan> plan;
  if (shares != nullptr) {
    ASSIGN_OR_RETURN(plan, PlanFor(*file, *shares));
  }
  std::printf("file: %s\nformat: GGUF v%u, %s, alignment %llu, data at offset %llu\n",
              path.c_str(), file->version(), HumanBytes(file->file_size()).c_str(),
              static_cast<unsigned long long>(file->alignment()),
              static_cast<unsigned long long>(file->data_offset()));
  std::printf("\nmetadata (%zu keys):\n", file->metadata().size());
  for (const auto& [key, value] : file->metadata()) {
    std::printf("  %-44s %s\n", key.c_str(),
                value.DebugString(std::max(0, FLAGS_max_array)).c_str());
  }
  std::printf("\ntensors (%zu):\n  %-36s %-6s %-22s %12s\n", file->tensors().size(), "name",
              "type", "shape", "bytes");
  uint64_t total = 0, elements = 0;
  std::map<std::string, uint64_t> by_type;
  for (const GgufTensorInfo& t : file->tensors()) {
    std::printf("  %-36s %-6s %-22s %12llu\n", t.name.c_str(), DTypeName(t.type).c_str(),
                absl::StrCat("[", absl::StrJoin(t.dims, ", "), "]").c_str(),
                static_cast<unsigned long long>(t.size_bytes));
    total += t.size_bytes;
    elements += t.num_elements;
    by_type[DTypeName(t.type)] += t.size_bytes;
  }
  std::vector<std::string> parts;
  for (const auto& [type, bytes] : by_type) parts.push_back(absl::StrCat(type, " ", HumanBytes(bytes)));
  std::printf("\ntotal: %zu tensors, %llu parameters, %s (%s)\n", file->tensors().size(),
              static_cast<unsigned long long>(elements), HumanBytes(total).c_str(),
              absl::StrJoin(parts, ", ").c_str());
  auto config = LlamaConfigFromGguf(*file);
  if (config.ok()) {
    std::printf("model: %s\n", config->ToString().c_str());
  } else {
    std::printf("model: not a supported llama-family model (%s)\n",
                std::string(config.status().message()).c_str());
  }
  if (plan.has_value()) std::printf("\n%s", plan->ToString().c_str());
  return absl::OkStatus();
}

}  // namespace

int RunInspect(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return Fail("inspect", absl::InvalidArgumentError(
                               args.empty() ? "missing PATH (usage: shardlm inspect PATH)"
                                            : "expected exactly one PATH"));
  }
  // An explicit `--plan ""` is an error, not "no plan".
  const bool want_plan = !gflags::GetCommandLineFlagInfoOrDie("plan").is_default;
  std::vector<int> shares;
  if (want_plan) {
    absl::StatusOr<std::vector<int>> parsed = ParseShares(FLAGS_plan);
    if (!parsed.ok()) {
      return Fail("inspect", absl::InvalidArgumentError(absl::StrCat(
                                 "--plan ", FLAGS_plan, ": ", parsed.status().message())));
    }
    shares = *std::move(parsed);
  }
  absl::Status s = Inspect(args[0], want_plan ? &shares : nullptr);
  return s.ok() ? 0 : Fail("inspect", s);
}

}  // namespace shardlm::cli
