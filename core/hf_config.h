// The hyper-parameters of a Hugging Face model folder's config.json for the
// llama-family architectures the engine runs (llama, mistral, qwen2), and
// their GGUF metadata equivalent.
#ifndef SHARDLM_CORE_HF_CONFIG_H_
#define SHARDLM_CORE_HF_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/gguf_writer.h"

namespace shardlm {

struct HfConfig {
  std::string model_type;  // "llama", "mistral" or "qwen2"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;   // max_position_embeddings
  int64_t sliding_window = 0;  // 0: none
  double rope_theta = 10000.0;
  double rms_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias
  std::string torch_dtype;

  // Context the engine can run exactly: max_positions, capped at the
  // sliding window (beyond it, full attention would differ from the model).
  int64_t context_length() const;
};

// Parses config.json text. `source` names the file in errors, which say
// which key is missing, of the wrong type, or unsupported (an architecture
// other than llama/mistral/qwen2, rope_scaling, a head_dim the engine
// cannot use, a non-SiLU activation).
absl::StatusOr<HfConfig> ParseHfConfig(absl::string_view json_text, const std::string& source);

// Adds the GGUF metadata (general.* and llama.*) describing `config`.
void AddHfConfigMetadata(const HfConfig& config, const std::string& name, GgufWriter* writer);

}  // namespace shardlm

#endif  // SHARDLM_CORE_HF_CONFIG_H_
