// Named shapes of synthetic llama models for `shardlm make-model`: a tiny
// one for tests and the shapes of real Llama 2/3 models for benchmarks.
#ifndef SHARDLM_CORE_MODEL_PRESETS_H_
#define SHARDLM_CORE_MODEL_PRESETS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/synthetic_model.h"

namespace shardlm {

// A preset: its name, a one-line description and the model's shape (type
// f32, seed 1, general.name set to the preset name).
struct ModelPreset {
  std::string name;
  std::string description;
  SyntheticModelSpec spec;
};

// Every preset, smallest first.
const std::vector<ModelPreset>& ModelPresets();

// The preset called `name`; NotFound listing the known names otherwise.
absl::StatusOr<ModelPreset> FindModelPreset(absl::string_view name);

// Weights (elements of every tensor) of the model `spec` describes.
int64_t SyntheticParameterCount(const SyntheticModelSpec& spec);

// Bytes of the GGUF file WriteSyntheticModel produces for `spec`, without
// writing it. InvalidArgument for an invalid spec.
absl::StatusOr<uint64_t> SyntheticFileSize(const SyntheticModelSpec& spec);

}  // namespace shardlm

#endif  // SHARDLM_CORE_MODEL_PRESETS_H_
