#include "tools/model_open.h"

#include "absl/strings/str_cat.h"
#include "core/model_loader.h"
#include "tools/progress.h"
#include "tools/shared_flags.h"

namespace shardlm::cli {

absl::StatusOr<std::unique_ptr<GgufFile>> OpenModel(const std::string& path) {
  ProgressLine progress(absl::StrCat("converting ", path));
  absl::StatusOr<std::unique_ptr<GgufFile>> file =
      OpenModelFile(path, [&](uint64_t done, uint64_t total) { progress.Update(done, total); },
                    ModelMemoryFlag());
  progress.Clear();
  return file;
}

}  // namespace shardlm::cli
