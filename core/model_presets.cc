#include "core/model_presets.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

SyntheticModelSpec Spec(const char* name, int64_t dim, int64_t ffn_dim, int64_t n_layers,
                        int64_t n_heads, int64_t n_kv_heads, int64_t vocab_size,
                        float rope_theta, int64_t context_length, bool tied = false) {
  SyntheticModelSpec s;
  s.name = name;
  s.dim = dim;
  s.ffn_dim = ffn_dim;
  s.n_layers = n_layers;
  s.n_heads = n_heads;
  s.n_kv_heads = n_kv_heads;
  s.vocab_size = vocab_size;
  s.rope_theta = rope_theta;
  s.context_length = context_length;
  s.tied_output = tied;
  return s;
}

// Name and GGUF dims of one tensor.
struct TensorShape {
  std::string name;
  std::vector<int64_t> dims;
};

// The tensors AddSyntheticModel writes for `spec`, in file order.
std::vector<TensorShape> SyntheticTensors(const SyntheticModelSpec& spec) {
  const int64_t d = spec.dim, f = spec.ffn_dim, hd = spec.dim / spec.n_heads;
  const int64_t q = spec.n_heads * hd, kv = spec.n_kv_heads * hd;
  std::vector<TensorShape> out = {{"token_embd.weight", {d, spec.vocab_size}},
                                  {"output_norm.weight", {d}}};
  if (!spec.tied_output) out.push_back({"output.weight", {d, spec.vocab_size}});
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    out.push_back({p + "attn_norm.weight", {d}});
    out.push_back({p + "attn_q.weight", {d, q}});
    out.push_back({p + "attn_k.weight", {d, kv}});
    out.push_back({p + "attn_v.weight", {d, kv}});
    out.push_back({p + "attn_output.weight", {q, d}});
    out.push_back({p + "ffn_norm.weight", {d}});
    out.push_back({p + "ffn_gate.weight", {d, f}});
    out.push_back({p + "ffn_up.weight", {d, f}});
    out.push_back({p + "ffn_down.weight", {f, d}});
  }
  return out;
}

uint64_t AlignUp(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// Bytes of a metadata entry: key (u64 length + text), u32 type, then the
// `value_bytes` of its value (for arrays: u32 element type + u64 count).
uint64_t EntryBytes(absl::string_view key, uint64_t value_bytes) {
  return 8 + key.size() + 4 + value_bytes;
}

// Bytes of the metadata AddSyntheticModel writes (mirrors its key list;
// model_presets_test checks the total against written files).
uint64_t MetadataBytes(const SyntheticModelSpec& spec, const SyntheticVocab& vocab) {
  uint64_t bytes = EntryBytes("general.architecture", 8 + 5) +
                   EntryBytes("general.name", 8 + spec.name.size()) +
                   EntryBytes("tokenizer.ggml.model", 8 + 5);
  for (const char* key :
       {"llama.context_length", "llama.embedding_length", "llama.block_count",
        "llama.feed_forward_length", "llama.rope.dimension_count", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon",
        "llama.rope.freq_base", "general.file_type", "llama.vocab_size",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id"}) {
    bytes += EntryBytes(key, 4);
  }
  if (spec.type == DType::kQ8_0 || spec.type == DType::kQ4_0) {
    bytes += EntryBytes("general.quantization_version", 4);
  }
  uint64_t tokens = 0;
  for (const std::string& token : vocab.tokens) tokens += 8 + token.size();
  bytes += EntryBytes("tokenizer.ggml.tokens", 12 + tokens) +
           EntryBytes("tokenizer.ggml.scores", 12 + 4 * vocab.scores.size()) +
           EntryBytes("tokenizer.ggml.token_type", 12 + 4 * vocab.token_types.size());
  return bytes;
}

}  // namespace

const std::vector<ModelPreset>& ModelPresets() {
  static const auto* presets = new std::vector<ModelPreset>{
      {"tiny", "64-wide, 2 layers: fast tests",
       Spec("tiny", 64, 192, 2, 8, 4, 512, 10000.0f, 256)},
      {"small", "256-wide, 2 layers, 32-wide heads: quantized models on up to 8 nodes",
       Spec("small", 256, 512, 2, 8, 4, 512, 10000.0f, 256)},
      {"llama3-1b", "Llama 3.2 1B shapes, tied embeddings",
       Spec("llama3-1b", 2048, 8192, 16, 32, 8, 128256, 500000.0f, 8192, /*tied=*/true)},
      {"llama2-7b", "Llama 2 7B shapes", Spec("llama2-7b", 4096, 11008, 32, 32, 32, 32000,
                                               10000.0f, 4096)},
      {"llama3-8b", "Llama 3 8B shapes", Spec("llama3-8b", 4096, 14336, 32, 32, 8, 128256,
                                               500000.0f, 8192)},
      {"llama3-70b", "Llama 3 70B shapes (cost-model simulation: 64 query heads)",
       Spec("llama3-70b", 8192, 28672, 80, 64, 8, 128256, 500000.0f, 8192)},
  };
  return *presets;
}

absl::StatusOr<ModelPreset> FindModelPreset(absl::string_view name) {
  std::vector<std::string> names;
  for (const ModelPreset& p : ModelPresets()) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown preset '", name, "' (presets: ",
                                          absl::StrJoin(names, ", "), ")"));
}

int64_t SyntheticParameterCount(const SyntheticModelSpec& spec) {
  int64_t total = 0;
  for (const TensorShape& t : SyntheticTensors(spec)) {
    int64_t n = 1;
    for (int64_t d : t.dims) n *= d;
    total += n;
  }
  return total;
}

absl::StatusOr<uint64_t> SyntheticFileSize(const SyntheticModelSpec& spec) {
  RETURN_IF_ERROR(ValidateSyntheticModelSpec(spec));
  constexpr uint64_t kAlignment = 32;
  ASSIGN_OR_RETURN(const SyntheticVocab vocab, MakeSyntheticVocab(spec.vocab_size));
  uint64_t header = 4 + 4 + 8 + 8 + MetadataBytes(spec, vocab);  // magic .. metadata count
  uint64_t data = 0;
  for (const TensorShape& t : SyntheticTensors(spec)) {
    header += 8 + t.name.size() + 4 + 8 * t.dims.size() + 4 + 8;
    const DType type = t.dims.size() == 1 ? DType::kF32 : SyntheticMatrixType(spec, t.dims[0]);
    int64_t n = 1;
    for (int64_t d : t.dims) n *= d;
    ASSIGN_OR_RETURN(const uint64_t bytes, RowBytes(type, n));
    data += AlignUp(bytes, kAlignment);
  }
  return AlignUp(header, kAlignment) + data;
}

}  // namespace shardlm
