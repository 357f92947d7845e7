// The weights of a llama-family model, placed on a Backend from a GGUF file
// after checking every tensor's presence, shape and type.
#ifndef SHARDLM_CORE_MODEL_WEIGHTS_H_
#define SHARDLM_CORE_MODEL_WEIGHTS_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/gguf.h"
#include "core/model_config.h"

namespace shardlm {

struct LayerWeights {
  std::unique_ptr<Buffer> attn_norm;  // 1 x dim
  std::unique_ptr<Buffer> wq;         // q_dim x dim
  std::unique_ptr<Buffer> wk;         // kv_dim x dim
  std::unique_ptr<Buffer> wv;         // kv_dim x dim
  std::unique_ptr<Buffer> wo;         // dim x q_dim
  std::unique_ptr<Buffer> ffn_norm;   // 1 x dim
  std::unique_ptr<Buffer> w_gate;     // ffn x dim
  std::unique_ptr<Buffer> w_up;       // ffn x dim
  std::unique_ptr<Buffer> w_down;     // dim x ffn
};

struct ModelWeights {
  std::unique_ptr<Buffer> token_embd;   // vocab x dim
  std::unique_ptr<Buffer> output_norm;  // 1 x dim
  std::unique_ptr<Buffer> output;       // vocab x dim (token_embd when tied)
  bool tied_output = false;
  std::vector<LayerWeights> layers;
};

// Places every weight of `file` on `backend`. `file` must outlive the
// returned weights (a host backend aliases its mapping). Errors name the
// tensor: missing, wrong shape, or a type the backend does not support.
absl::StatusOr<ModelWeights> LoadModelWeights(const GgufFile& file, const LlamaConfig& config,
                                              Backend* backend);

}  // namespace shardlm

#endif  // SHARDLM_CORE_MODEL_WEIGHTS_H_
