// A deliberately plain, double-precision llama forward pass for tests: reads
// the weights of a GgufFile directly (every tensor dequantized to doubles) and
// shares no code with core/engine or any backend, so agreeing with it is
// evidence that the engine is right.
#ifndef SHARDLM_TESTS_REFERENCE_LLAMA_H_
#define SHARDLM_TESTS_REFERENCE_LLAMA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf.h"
#include "core/model_config.h"

namespace shardlm::testing {

// A row-major matrix of doubles (`rows` x `cols`).
struct RefMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> values;
  // Quantized (q8_0/q4_0) weights multiply activations that were themselves
  // quantized to Q8_0 blocks, as the engine's contract says.
  bool q8_activations = false;
  const double* row(int64_t r) const { return values.data() + r * cols; }
};

class ReferenceLlama {
 public:
  // Reads the config (LlamaConfigFromGguf) and dequantizes every weight of
  // `file`; errors name a missing or misshapen tensor. `file` is not kept.
  static absl::StatusOr<std::unique_ptr<ReferenceLlama>> Create(const GgufFile& file);

  const LlamaConfig& config() const { return config_; }
  // Tokens seen so far (the next token's position).
  int64_t position() const { return pos_; }

  // Appends `token` (which must be in the vocabulary; aborts otherwise) to
  // the sequence and returns its vocab_size logits.
  std::vector<double> Step(int32_t token);
  // Forgets the sequence.
  void Reset();

 private:
  struct Layer {
    std::vector<double> attn_norm, ffn_norm;
    RefMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };

  ReferenceLlama() = default;
  // x <- x + attention(x) for layer `l` at position pos_.
  void AttentionBlock(int64_t l, std::vector<double>* x);
  // x <- x + ffn(x) for layer `l`.
  void FeedForwardBlock(int64_t l, std::vector<double>* x);
  // Rotates every head of `v` (n_heads x head_dim) for position pos_.
  void ApplyRope(int64_t n_heads, std::vector<double>* v) const;

  LlamaConfig config_;
  RefMatrix token_embd_, output_;  // output_ empty when tied
  std::vector<double> output_norm_;
  std::vector<Layer> layers_;
  int64_t pos_ = 0;
  // Per layer, per position: the kv_dim keys / values.
  std::vector<std::vector<std::vector<double>>> k_cache_, v_cache_;
};

}  // namespace shardlm::testing

#endif  // SHARDLM_TESTS_REFERENCE_LLAMA_H_
