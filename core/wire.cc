#include "core/wire.h"

#include "absl/strings/str_cat.h"

namespace shardlm {

wire::ModelConfig ToWire(const LlamaConfig& c) {
  wire::ModelConfig r;
  r.set_architecture(c.architecture);
  r.set_context_length(c.context_length);
  r.set_dim(c.dim);
  r.set_ffn_dim(c.ffn_dim);
  r.set_n_layers(c.n_layers);
  r.set_n_heads(c.n_heads);
  r.set_n_kv_heads(c.n_kv_heads);
  r.set_rope_dim(c.rope_dim);
  r.set_rope_theta(c.rope_theta);
  r.set_rms_eps(c.rms_eps);
  r.set_vocab_size(c.vocab_size);
  return r;
}

absl::StatusOr<LlamaConfig> FromWire(const wire::ModelConfig& r) {
  const int64_t limit = int64_t{1} << 32;
  for (int64_t v : {r.context_length(), r.dim(), r.ffn_dim(), r.n_layers(), r.n_heads(),
                    r.n_kv_heads(), r.rope_dim(), r.vocab_size()}) {
    if (v <= 0 || v > limit) {
      return absl::InvalidArgumentError(absl::StrCat("model config from peer has field value ", v));
    }
  }
  if (r.dim() % r.n_heads() != 0 || r.n_heads() % r.n_kv_heads() != 0 ||
      r.rope_dim() > r.dim() / r.n_heads() || !(r.rope_theta() > 0) || !(r.rms_eps() > 0)) {
    return absl::InvalidArgumentError("model config from peer is inconsistent");
  }
  LlamaConfig c;
  c.architecture = r.architecture();
  c.context_length = r.context_length();
  c.dim = r.dim();
  c.ffn_dim = r.ffn_dim();
  c.n_layers = r.n_layers();
  c.n_heads = r.n_heads();
  c.n_kv_heads = r.n_kv_heads();
  c.head_dim = r.dim() / r.n_heads();
  c.rope_dim = r.rope_dim();
  c.rope_theta = r.rope_theta();
  c.rms_eps = r.rms_eps();
  c.vocab_size = r.vocab_size();
  return c;
}

}  // namespace shardlm
