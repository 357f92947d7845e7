#include "core/shard_weights.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

// Tensor `name`, checked to be rows x cols (GGUF dims {cols, rows}, or {cols}
// for a vector with rows == 1) of a type the backend supports.
absl::StatusOr<const GgufTensorInfo*> Find(const GgufFile& file, const Backend& backend,
                                           const std::string& name, int64_t rows, int64_t cols) {
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
  if (!backend.SupportsWeightType(t->type)) {
    return absl::UnimplementedError(absl::StrCat(file.source(), ": tensor '", name, "' is ",
                                                 DTypeName(t->type), ", which the ",
                                                 backend.name(), " backend does not support"));
  }
  if (rows == 1 && t->type != DType::kF32) {
    return absl::UnimplementedError(absl::StrCat(file.source(), ": norm tensor '", name, "' is ",
                                                 DTypeName(t->type), ", expected f32"));
  }
  return t;
}

// Rows [begin, end) of tensor `name` (rows x cols), aliasing the mapping.
absl::StatusOr<std::unique_ptr<Buffer>> LoadRows(const GgufFile& file, Backend* backend,
                                                 const std::string& name, int64_t rows,
                                                 int64_t cols, int64_t begin, int64_t end) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(file, *backend, name, rows, cols));
  if (begin < 0 || end > rows || begin >= end) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": row slice [", begin, ", ", end, ") outside ", rows, " rows"));
  }
  ASSIGN_OR_RETURN(uint64_t row_bytes, RowBytes(t->type, cols));
  return backend->CreateWeight(t->type, end - begin, cols, t->data + begin * row_bytes);
}

// Columns [begin, end) of tensor `name` (rows x cols), copied into storage
// appended to `owned`.
absl::StatusOr<std::unique_ptr<Buffer>> LoadColumns(
    const GgufFile& file, Backend* backend, const std::string& name, int64_t rows, int64_t cols,
    int64_t begin, int64_t end, std::vector<std::unique_ptr<uint8_t[]>>* owned) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(file, *backend, name, rows, cols));
  const int64_t block = Info(t->type).block_size;
  if (begin < 0 || end > cols || begin >= end || begin % block != 0 ||
      (end % block != 0 && end != cols)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": column slice [", begin, ", ", end,
                                                   ") of ", cols, " is not on ",
                                                   DTypeName(t->type), " blocks of ", block));
  }
  ASSIGN_OR_RETURN(uint64_t row_bytes, RowBytes(t->type, cols));
  ASSIGN_OR_RETURN(uint64_t skip, RowBytes(t->type, begin));
  ASSIGN_OR_RETURN(uint64_t slice_bytes, RowBytes(t->type, end - begin));
  auto bytes = std::make_unique<uint8_t[]>(rows * slice_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(bytes.get() + r * slice_bytes, t->data + r * row_bytes + skip, slice_bytes);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Buffer> buffer,
                   backend->CreateWeight(t->type, rows, end - begin, bytes.get()));
  owned->push_back(std::move(bytes));
  return buffer;
}

absl::Status LoadLayer(const GgufFile& file, const LlamaConfig& c, const NodeShard& s,
                       int64_t l, Backend* backend, ShardWeights* w) {
  LayerWeights& L = w->layers[l];
  const std::string p = absl::StrCat("blk.", l, ".");
  const int64_t hd = c.head_dim;
  const int64_t q0 = s.q_head_begin * hd, q1 = s.q_head_end * hd;
  const int64_t kv0 = s.kv_head_begin * hd, kv1 = s.kv_head_end * hd;
  ASSIGN_OR_RETURN(L.attn_norm, LoadRows(file, backend, p + "attn_norm.weight", 1, c.dim, 0, 1));
  ASSIGN_OR_RETURN(L.wq, LoadRows(file, backend, p + "attn_q.weight", c.q_dim(), c.dim, q0, q1));
  ASSIGN_OR_RETURN(L.wk,
                   LoadRows(file, backend, p + "attn_k.weight", c.kv_dim(), c.dim, kv0, kv1));
  ASSIGN_OR_RETURN(L.wv,
                   LoadRows(file, backend, p + "attn_v.weight", c.kv_dim(), c.dim, kv0, kv1));
  ASSIGN_OR_RETURN(L.wo, LoadColumns(file, backend, p + "attn_output.weight", c.dim, c.q_dim(),
                                     q0, q1, &w->owned));
  ASSIGN_OR_RETURN(L.ffn_norm, LoadRows(file, backend, p + "ffn_norm.weight", 1, c.dim, 0, 1));
  ASSIGN_OR_RETURN(L.w_gate, LoadRows(file, backend, p + "ffn_gate.weight", c.ffn_dim, c.dim,
                                      s.ffn_begin, s.ffn_end));
  ASSIGN_OR_RETURN(L.w_up, LoadRows(file, backend, p + "ffn_up.weight", c.ffn_dim, c.dim,
                                    s.ffn_begin, s.ffn_end));
  ASSIGN_OR_RETURN(L.w_down, LoadColumns(file, backend, p + "ffn_down.weight", c.dim, c.ffn_dim,
                                         s.ffn_begin, s.ffn_end, &w->owned));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ShardWeights> LoadShardWeights(const GgufFile& file, const LlamaConfig& c,
                                              const NodeShard& s, Backend* backend) {
  ShardWeights w;
  const std::string embd = "token_embd.weight";
  if (s.node == 0) {
    ASSIGN_OR_RETURN(w.token_embd, LoadRows(file, backend, embd, c.vocab_size, c.dim, 0,
                                            c.vocab_size));
  }
  ASSIGN_OR_RETURN(w.output_norm, LoadRows(file, backend, "output_norm.weight", 1, c.dim, 0, 1));
  w.tied_output = file.FindTensor("output.weight") == nullptr;
  ASSIGN_OR_RETURN(w.output, LoadRows(file, backend, w.tied_output ? embd : "output.weight",
                                      c.vocab_size, c.dim, s.vocab_begin, s.vocab_end));
  w.layers.resize(c.n_layers);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    RETURN_IF_ERROR(LoadLayer(file, c, s, l, backend, &w));
  }
  return w;
}

}  // namespace shardlm
