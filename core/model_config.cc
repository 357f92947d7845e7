#include "core/model_config.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

absl::StatusOr<int64_t> RequirePositive(const GgufFile& file, const std::string& key) {
  auto v = file.GetUint(key);
  if (!v.ok()) return v.status();
  if (*v == 0 || *v > (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.source(), ": key '", key, "' has implausible value ", *v));
  }
  return static_cast<int64_t>(*v);
}

absl::Status Bad(const GgufFile& file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file.source(), ": ", what));
}

}  // namespace

std::string LlamaConfig::ToString() const {
  return absl::StrCat(architecture, ": dim ", dim, ", ffn ", ffn_dim, ", ", n_layers,
                      " layers, ", n_heads, " heads, ", n_kv_heads, " kv heads, head_dim ",
                      head_dim, ", rope_dim ", rope_dim, ", rope_theta ", rope_theta,
                      ", rms_eps ", rms_eps, ", vocab ", vocab_size, ", context ",
                      context_length);
}

absl::StatusOr<LlamaConfig> LlamaConfigFromGguf(const GgufFile& file) {
  LlamaConfig c;
  ASSIGN_OR_RETURN(c.architecture, file.GetString("general.architecture"));
  if (c.architecture != "llama" && c.architecture != "mistral") {
    return Bad(file, absl::StrCat("unsupported architecture '", c.architecture,
                                  "' (supported: llama, mistral)"));
  }
  const std::string p = c.architecture + ".";
  ASSIGN_OR_RETURN(c.context_length, RequirePositive(file, p + "context_length"));
  ASSIGN_OR_RETURN(c.dim, RequirePositive(file, p + "embedding_length"));
  ASSIGN_OR_RETURN(c.ffn_dim, RequirePositive(file, p + "feed_forward_length"));
  ASSIGN_OR_RETURN(c.n_layers, RequirePositive(file, p + "block_count"));
  ASSIGN_OR_RETURN(c.n_heads, RequirePositive(file, p + "attention.head_count"));
  c.n_kv_heads = c.n_heads;
  if (file.Find(p + "attention.head_count_kv") != nullptr) {
    ASSIGN_OR_RETURN(c.n_kv_heads, RequirePositive(file, p + "attention.head_count_kv"));
  }
  if (c.dim % c.n_heads != 0) {
    return Bad(file, absl::StrCat("embedding_length ", c.dim, " is not divisible by head_count ",
                                  c.n_heads));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Bad(file, absl::StrCat("head_count ", c.n_heads, " is not a multiple of head_count_kv ",
                                  c.n_kv_heads));
  }
  c.head_dim = c.dim / c.n_heads;
  c.rope_dim = c.head_dim;
  if (file.Find(p + "rope.dimension_count") != nullptr) {
    ASSIGN_OR_RETURN(c.rope_dim, RequirePositive(file, p + "rope.dimension_count"));
  }
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return Bad(file, absl::StrCat("rope.dimension_count ", c.rope_dim,
                                  " must be even and at most the head size ", c.head_dim));
  }
  if (file.Find(p + "rope.freq_base") != nullptr) {
    ASSIGN_OR_RETURN(c.rope_theta, file.GetFloat(p + "rope.freq_base"));
  }
  ASSIGN_OR_RETURN(c.rms_eps, file.GetFloat(p + "attention.layer_norm_rms_epsilon"));
  if (!(c.rope_theta > 0) || !(c.rms_eps > 0) || !(c.rms_eps < 1)) {
    return Bad(file, "rope.freq_base and layer_norm_rms_epsilon must be positive");
  }
  if (const GgufTensorInfo* emb = file.FindTensor("token_embd.weight")) {
    if (emb->dims.size() != 2) return Bad(file, "token_embd.weight must be 2-D");
    c.vocab_size = emb->dims[1];
  } else {
    return Bad(file, "missing tensor 'token_embd.weight'");
  }
  if (file.Find(p + "vocab_size") != nullptr) {
    ASSIGN_OR_RETURN(int64_t v, RequirePositive(file, p + "vocab_size"));
    if (v != c.vocab_size) {
      return Bad(file, absl::StrCat(p, "vocab_size ", v, " disagrees with token_embd.weight rows ",
                                    c.vocab_size));
    }
  }
  return c;
}

absl::Status ValidateForwardTokens(absl::Span<const int32_t> tokens, int64_t position,
                                   int64_t max_seq_len, int64_t vocab_size) {
  if (tokens.empty()) return absl::InvalidArgumentError("forward: no tokens");
  if (position + static_cast<int64_t>(tokens.size()) > max_seq_len) {
    return absl::OutOfRangeError(absl::StrCat("context full: ", position, " + ", tokens.size(),
                                              " tokens exceed the context of ", max_seq_len));
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab_size) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", t, " outside the vocabulary of ", vocab_size));
    }
  }
  return absl::OkStatus();
}

}  // namespace shardlm
