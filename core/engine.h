// Single-node llama forward pass over a Backend: grouped-query attention with
// a KV cache, interleaved RoPE, SiLU-gated FFN, RMSNorm. Prompts run batched
// (tokens x weights); the result for a token does not depend on how the
// sequence was split into Forward calls.
#ifndef SHARDLM_CORE_ENGINE_H_
#define SHARDLM_CORE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/backend.h"
#include "core/gguf.h"
#include "core/model_config.h"
#include "core/model_weights.h"

namespace shardlm {

struct EngineOptions {
  // KV-cache length in tokens; 0 means min(model context length, 4096).
  int64_t max_seq_len = 0;
  // Most tokens per batched step; longer inputs run in chunks.
  int64_t max_batch = 64;
};

class Engine {
 public:
  // Loads `file`'s weights onto `backend`. Both must outlive the Engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const GgufFile* file, Backend* backend,
                                                        const EngineOptions& options);

  const LlamaConfig& config() const { return config_; }
  // Tokens already in the KV cache (the next token's position).
  int64_t position() const { return position_; }
  int64_t max_seq_len() const { return max_seq_len_; }

  // Appends `tokens` to the sequence and returns the logits (vocab_size
  // floats) of the last one, or of every one (tokens.size() x vocab_size,
  // row-major) when `all_logits`. OutOfRange if the context would overflow.
  absl::StatusOr<std::vector<float>> Forward(absl::Span<const int32_t> tokens,
                                             bool all_logits = false);

  // Forgets the sequence (the KV cache is overwritten from position 0).
  void Reset() { position_ = 0; }

 private:
  Engine(const GgufFile* file, Backend* backend, LlamaConfig config, ModelWeights weights)
      : file_(file), backend_(backend), config_(std::move(config)), weights_(std::move(weights)) {}
  absl::Status Allocate(const EngineOptions& options);
  // Runs one chunk of at most max_batch tokens; appends the logits of every
  // token (all_logits) or of the chunk's last token (last_chunk) to `logits`.
  absl::Status ForwardChunk(absl::Span<const int32_t> tokens, bool all_logits, bool last_chunk,
                            std::vector<float>* logits);
  absl::Status AttentionBlock(int64_t layer, absl::Span<const int32_t> positions);
  absl::Status FeedForwardBlock(int64_t layer, int64_t n);

  const GgufFile* file_;
  Backend* backend_;
  LlamaConfig config_;
  ModelWeights weights_;
  int64_t max_seq_len_ = 0;
  int64_t max_batch_ = 0;
  int64_t position_ = 0;
  std::vector<std::unique_ptr<Buffer>> k_cache_, v_cache_;  // per layer: max_seq x kv_dim
  // Scratch, max_batch rows each.
  std::unique_ptr<Buffer> x_, xn_, q_, k_, v_, attn_, proj_, gate_, up_, hidden_, logits_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_ENGINE_H_
