// Hyper-parameters of a llama-family model, read from GGUF metadata.
#ifndef SHARDLM_CORE_MODEL_CONFIG_H_
#define SHARDLM_CORE_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/gguf.h"

namespace shardlm {

// How RoPE pairs the dimensions of a head: GGUF llama models rotate adjacent
// pairs (2i, 2i+1); NeoX/Hugging Face style rotates (i, i + rope_dim/2).
enum class RopeLayout { kInterleaved, kNeox };

struct LlamaConfig {
  std::string architecture;  // general.architecture
  int64_t context_length = 0;
  int64_t dim = 0;       // embedding_length
  int64_t ffn_dim = 0;   // feed_forward_length
  int64_t n_layers = 0;  // block_count
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // dim / n_heads
  int64_t rope_dim = 0;  // rope.dimension_count (<= head_dim)
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  int64_t vocab_size = 0;
  RopeLayout rope_layout = RopeLayout::kInterleaved;

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // One-line summary ("llama: dim 64, ffn 172, ...").
  std::string ToString() const;
};

// Reads and validates the config of a llama-family GGUF file
// (architectures "llama" and "mistral" use the same keys under their own
// prefix). Errors name the missing or inconsistent key.
absl::StatusOr<LlamaConfig> LlamaConfigFromGguf(const GgufFile& file);

// Checks that `tokens` can be appended to a sequence at `position` with a
// KV cache of `max_seq_len`: non-empty (InvalidArgument), fits the context
// and every id is in [0, vocab_size) (OutOfRange).
absl::Status ValidateForwardTokens(absl::Span<const int32_t> tokens, int64_t position,
                                   int64_t max_seq_len, int64_t vocab_size);

}  // namespace shardlm

#endif  // SHARDLM_CORE_MODEL_CONFIG_H_
