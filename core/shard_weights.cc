#include "core/shard_weights.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

using TopSlot = std::unique_ptr<Buffer> ShardWeights::*;
using LayerSlot = std::unique_ptr<Buffer> LayerWeights::*;

// One slice a node holds: rows (or, when `columns`, columns) [begin, end) of
// tensor `name`, which must be rows x cols. It becomes `top` of ShardWeights
// (layer < 0) or `member` of layers[layer]. The single description of a
// shard that both LoadShardWeights and ShardByteRanges consume.
struct Slice {
  std::string name;
  bool columns = false;
  int64_t rows = 0, cols = 0, begin = 0, end = 0;
  int64_t layer = -1;
  TopSlot top = nullptr;
  LayerSlot member = nullptr;
};

// Where a slice's bytes lie in its tensor's data: `count` runs of
// `run_bytes`, run i at byte first + i * stride; its buffer is
// out_rows x out_cols of the tensor's type.
struct Runs {
  const GgufTensorInfo* tensor = nullptr;
  uint64_t first = 0, stride = 0, run_bytes = 0;
  int64_t count = 0, out_rows = 0, out_cols = 0;
};

Slice Top(std::string name, int64_t rows, int64_t cols, int64_t begin, int64_t end, TopSlot top) {
  Slice s{std::move(name), false, rows, cols, begin, end};
  s.top = top;
  return s;
}

Slice Layer(int64_t l, const char* name, bool columns, int64_t rows, int64_t cols, int64_t begin,
            int64_t end, LayerSlot member) {
  Slice s{absl::StrCat("blk.", l, ".", name), columns, rows, cols, begin, end};
  s.layer = l;
  s.member = member;
  return s;
}

// Every slice `s` holds, in load order (which fixes which error comes first).
std::vector<Slice> ShardSlices(const GgufFile& file, const LlamaConfig& c, const NodeShard& s) {
  std::vector<Slice> out;
  const std::string embd = "token_embd.weight";
  if (s.node == 0) {
    out.push_back(Top(embd, c.vocab_size, c.dim, 0, c.vocab_size, &ShardWeights::token_embd));
  }
  out.push_back(Top("output_norm.weight", 1, c.dim, 0, 1, &ShardWeights::output_norm));
  const bool tied = file.FindTensor("output.weight") == nullptr;
  out.push_back(Top(tied ? embd : "output.weight", c.vocab_size, c.dim, s.vocab_begin,
                    s.vocab_end, &ShardWeights::output));
  const int64_t hd = c.head_dim;
  const int64_t q0 = s.q_head_begin * hd, q1 = s.q_head_end * hd;
  const int64_t kv0 = s.kv_head_begin * hd, kv1 = s.kv_head_end * hd;
  // A node without attention heads holds none of the attention matrices.
  const bool headless = s.q_heads() == 0 && s.kv_heads() == 0;
  using L = LayerWeights;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    out.push_back(Layer(l, "attn_norm.weight", false, 1, c.dim, 0, 1, &L::attn_norm));
    if (!headless) {
      out.push_back(Layer(l, "attn_q.weight", false, c.q_dim(), c.dim, q0, q1, &L::wq));
      out.push_back(Layer(l, "attn_k.weight", false, c.kv_dim(), c.dim, kv0, kv1, &L::wk));
      out.push_back(Layer(l, "attn_v.weight", false, c.kv_dim(), c.dim, kv0, kv1, &L::wv));
      out.push_back(Layer(l, "attn_output.weight", true, c.dim, c.q_dim(), q0, q1, &L::wo));
    }
    out.push_back(Layer(l, "ffn_norm.weight", false, 1, c.dim, 0, 1, &L::ffn_norm));
    out.push_back(Layer(l, "ffn_gate.weight", false, c.ffn_dim, c.dim, s.ffn_begin, s.ffn_end,
                        &L::w_gate));
    out.push_back(Layer(l, "ffn_up.weight", false, c.ffn_dim, c.dim, s.ffn_begin, s.ffn_end,
                        &L::w_up));
    out.push_back(Layer(l, "ffn_down.weight", true, c.dim, c.ffn_dim, s.ffn_begin, s.ffn_end,
                        &L::w_down));
  }
  return out;
}

// Tensor `name`, checked to be rows x cols (GGUF dims {cols, rows}, or {cols}
// for a vector with rows == 1) of a type `backend` (when not null) supports.
absl::StatusOr<const GgufTensorInfo*> Find(const GgufFile& file, const Backend* backend,
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
  if (backend != nullptr && !backend->SupportsWeightType(t->type)) {
    return absl::UnimplementedError(absl::StrCat(file.source(), ": tensor '", name, "' is ",
                                                 DTypeName(t->type), ", which the ",
                                                 backend->name(), " backend does not support"));
  }
  if (rows == 1 && t->type != DType::kF32) {
    return absl::UnimplementedError(absl::StrCat(file.source(), ": norm tensor '", name, "' is ",
                                                 DTypeName(t->type), ", expected f32"));
  }
  return t;
}

// Checks slice `s` against its tensor and locates its bytes.
absl::StatusOr<Runs> Resolve(const GgufFile& file, const Backend* backend, const Slice& s) {
  Runs r;
  ASSIGN_OR_RETURN(r.tensor, Find(file, backend, s.name, s.rows, s.cols));
  const DType type = r.tensor->type;
  if (!s.columns) {
    if (s.begin < 0 || s.end > s.rows || s.begin >= s.end) {
      return absl::InvalidArgumentError(absl::StrCat(s.name, ": row slice [", s.begin, ", ",
                                                     s.end, ") outside ", s.rows, " rows"));
    }
    ASSIGN_OR_RETURN(uint64_t row_bytes, RowBytes(type, s.cols));
    r.first = s.begin * row_bytes;
    r.stride = row_bytes;
    r.run_bytes = (s.end - s.begin) * row_bytes;
    r.count = 1;
    r.out_rows = s.end - s.begin;
    r.out_cols = s.cols;
    return r;
  }
  const int64_t block = Info(type).block_size;
  if (s.begin < 0 || s.end > s.cols || s.begin >= s.end || s.begin % block != 0 ||
      (s.end % block != 0 && s.end != s.cols)) {
    return absl::InvalidArgumentError(absl::StrCat(s.name, ": column slice [", s.begin, ", ",
                                                   s.end, ") of ", s.cols, " is not on ",
                                                   DTypeName(type), " blocks of ", block));
  }
  ASSIGN_OR_RETURN(r.stride, RowBytes(type, s.cols));
  ASSIGN_OR_RETURN(r.first, RowBytes(type, s.begin));
  ASSIGN_OR_RETURN(r.run_bytes, RowBytes(type, s.end - s.begin));
  r.count = s.rows;
  r.out_rows = s.rows;
  r.out_cols = s.end - s.begin;
  return r;
}

// Places slice `s` on `backend`: a single run aliases the mapping; several
// runs (a column slice) are copied into storage appended to `owned`.
absl::StatusOr<std::unique_ptr<Buffer>> Load(const GgufFile& file, Backend* backend,
                                             const Slice& s,
                                             std::vector<std::unique_ptr<uint8_t[]>>* owned) {
  ASSIGN_OR_RETURN(const Runs r, Resolve(file, backend, s));
  const DType type = r.tensor->type;
  if (!s.columns) {
    return backend->CreateWeight(type, r.out_rows, r.out_cols, r.tensor->data + r.first);
  }
  auto bytes = std::make_unique<uint8_t[]>(r.count * r.run_bytes);
  for (int64_t i = 0; i < r.count; ++i) {
    std::memcpy(bytes.get() + i * r.run_bytes, r.tensor->data + r.first + i * r.stride,
                r.run_bytes);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Buffer> buffer,
                   backend->CreateWeight(type, r.out_rows, r.out_cols, bytes.get()));
  owned->push_back(std::move(bytes));
  return buffer;
}

// Sorts `ranges` and merges overlapping or adjacent ones.
std::vector<ByteRange> Coalesce(std::vector<ByteRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  for (const ByteRange& r : ranges) {
    if (!out.empty() && r.offset <= out.back().offset + out.back().size) {
      out.back().size = std::max(out.back().offset + out.back().size, r.offset + r.size) -
                        out.back().offset;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ShardWeights> LoadShardWeights(const GgufFile& file, const LlamaConfig& c,
                                              const NodeShard& s, Backend* backend) {
  ShardWeights w;
  w.tied_output = file.FindTensor("output.weight") == nullptr;
  w.layers.resize(c.n_layers);
  for (const Slice& slice : ShardSlices(file, c, s)) {
    std::unique_ptr<Buffer>& target =
        slice.layer < 0 ? w.*slice.top : w.layers[slice.layer].*slice.member;
    ASSIGN_OR_RETURN(target, Load(file, backend, slice, &w.owned));
  }
  return w;
}

absl::StatusOr<std::vector<ByteRange>> ShardByteRanges(const GgufFile& file,
                                                       const LlamaConfig& c,
                                                       const NodeShard& s) {
  std::vector<ByteRange> ranges;
  for (const Slice& slice : ShardSlices(file, c, s)) {
    ASSIGN_OR_RETURN(const Runs r, Resolve(file, /*backend=*/nullptr, slice));
    const uint64_t base = file.data_offset() + r.tensor->offset + r.first;
    for (int64_t i = 0; i < r.count; ++i) {
      const ByteRange run{base + i * r.stride, r.run_bytes};
      if (!ranges.empty() && ranges.back().offset + ranges.back().size == run.offset) {
        ranges.back().size += run.size;  // contiguous runs (e.g. a 1-node column slice)
      } else {
        ranges.push_back(run);
      }
    }
  }
  return Coalesce(std::move(ranges));
}

}  // namespace shardlm
