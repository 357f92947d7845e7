// CPUID dispatch between the kernel paths.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/kernels.h"

namespace shardlm::cpu {
namespace {

struct IsaPath {
  const char* name;
  const KernelTable* (*table)();
};

// Best first.
constexpr IsaPath kPaths[] = {
    {"avx512", &Avx512Kernels},
    {"avx2", &Avx2Kernels},
    {"scalar", &ScalarKernels},
};

// The first CPU feature `isa` needs that the running CPU lacks, or "" when
// it has them all. Unknown names report themselves.
std::string MissingFeature(const std::string& isa) {
  if (isa == "scalar") return "";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  const bool fma = __builtin_cpu_supports("fma");
  const bool f16c = __builtin_cpu_supports("f16c");
  if (isa == "avx2" || isa == "avx512") {
    if (!avx2) return "avx2";
    if (!fma) return "fma";
    if (!f16c) return "f16c";
  }
  if (isa == "avx512") {
    if (!__builtin_cpu_supports("avx512f")) return "avx512f";
    if (!__builtin_cpu_supports("avx512bw")) return "avx512bw";
    if (!__builtin_cpu_supports("avx512vl")) return "avx512vl";
    if (!__builtin_cpu_supports("avx512dq")) return "avx512dq";
    if (!__builtin_cpu_supports("avx512vnni")) return "avx512vnni";
    return "";
  }
  if (isa == "avx2") return "";
#endif
  return isa;
}

const IsaPath* FindPath(const std::string& isa) {
  for (const IsaPath& p : kPaths) {
    if (isa == p.name) return &p;
  }
  return nullptr;
}

}  // namespace

bool CpuSupports(const std::string& isa) {
  return FindPath(isa) != nullptr && MissingFeature(isa).empty();
}

std::vector<std::string> SupportedIsas() {
  std::vector<std::string> out;
  for (const IsaPath& p : kPaths) {
    if (p.table() != nullptr && CpuSupports(p.name)) out.push_back(p.name);
  }
  return out;
}

absl::StatusOr<const KernelTable*> SelectKernels(const std::string& isa) {
  if (isa == "auto") {
    for (const IsaPath& p : kPaths) {
      if (p.table() != nullptr && CpuSupports(p.name)) return p.table();
    }
    return absl::InternalError("no kernel path available");  // scalar always is
  }
  const IsaPath* p = FindPath(isa);
  if (p == nullptr) {
    std::vector<std::string> names = {"auto"};
    for (const IsaPath& q : kPaths) names.push_back(q.name);
    return absl::InvalidArgumentError(absl::StrCat("unknown kernel ISA \"", isa,
                                                   "\"; valid: ", absl::StrJoin(names, ", ")));
  }
  const std::string missing = MissingFeature(isa);
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("kernel ISA \"", isa, "\" needs ", missing, ", which this CPU lacks"));
  }
  if (p->table() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("kernel ISA \"", isa, "\" is not built into this binary"));
  }
  return p->table();
}

}  // namespace shardlm::cpu
