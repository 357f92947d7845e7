#include "core/model_weights.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

// Loads tensor `name`, which must be rows x cols (GGUF dims {cols, rows}, or
// {cols} for a vector with rows == 1).
absl::StatusOr<std::unique_ptr<Buffer>> Load(const GgufFile& file, Backend* backend,
                                             const std::string& name, int64_t rows,
                                             int64_t cols) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file.source(), ": missing tensor '", name, "'"));
  }
  const bool vector_ok = rows == 1 && t->dims.size() == 1 && t->dims[0] == cols;
  const bool matrix_ok = t->dims.size() == 2 && t->dims[0] == cols && t->dims[1] == rows;
  if (!vector_ok && !matrix_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.source(), ": tensor '", name, "' has shape [", absl::StrJoin(t->dims, ", "),
        "], expected [", cols, rows == 1 ? "" : absl::StrCat(", ", rows), "]"));
  }
  if (!backend->SupportsWeightType(t->type)) {
    return absl::UnimplementedError(absl::StrCat(file.source(), ": tensor '", name, "' is ",
                                                 DTypeName(t->type), ", which the ",
                                                 backend->name(), " backend does not support"));
  }
  if (rows == 1 && t->type != DType::kF32) {
    return absl::UnimplementedError(absl::StrCat(file.source(), ": norm tensor '", name, "' is ",
                                                 DTypeName(t->type), ", expected f32"));
  }
  return backend->CreateWeight(t->type, rows, cols, t->data);
}

}  // namespace

absl::StatusOr<ModelWeights> LoadModelWeights(const GgufFile& file, const LlamaConfig& c,
                                              Backend* backend) {
  ModelWeights w;
  ASSIGN_OR_RETURN(w.token_embd, Load(file, backend, "token_embd.weight", c.vocab_size, c.dim));
  ASSIGN_OR_RETURN(w.output_norm, Load(file, backend, "output_norm.weight", 1, c.dim));
  if (file.FindTensor("output.weight") != nullptr) {
    ASSIGN_OR_RETURN(w.output, Load(file, backend, "output.weight", c.vocab_size, c.dim));
  } else {
    w.tied_output = true;
  }
  w.layers.resize(c.n_layers);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string p = absl::StrCat("blk.", l, ".");
    ASSIGN_OR_RETURN(L.attn_norm, Load(file, backend, p + "attn_norm.weight", 1, c.dim));
    ASSIGN_OR_RETURN(L.wq, Load(file, backend, p + "attn_q.weight", c.q_dim(), c.dim));
    ASSIGN_OR_RETURN(L.wk, Load(file, backend, p + "attn_k.weight", c.kv_dim(), c.dim));
    ASSIGN_OR_RETURN(L.wv, Load(file, backend, p + "attn_v.weight", c.kv_dim(), c.dim));
    ASSIGN_OR_RETURN(L.wo, Load(file, backend, p + "attn_output.weight", c.dim, c.q_dim()));
    ASSIGN_OR_RETURN(L.ffn_norm, Load(file, backend, p + "ffn_norm.weight", 1, c.dim));
    ASSIGN_OR_RETURN(L.w_gate, Load(file, backend, p + "ffn_gate.weight", c.ffn_dim, c.dim));
    ASSIGN_OR_RETURN(L.w_up, Load(file, backend, p + "ffn_up.weight", c.ffn_dim, c.dim));
    ASSIGN_OR_RETURN(L.w_down, Load(file, backend, p + "ffn_down.weight", c.dim, c.ffn_dim));
  }
  return w;
}

}  // namespace shardlm
