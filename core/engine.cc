#include "core/engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const GgufFile* file, Backend* backend,
                                                       const EngineOptions& options) {
  ASSIGN_OR_RETURN(LlamaConfig config, LlamaConfigFromGguf(*file));
  ASSIGN_OR_RETURN(ModelWeights weights, LoadModelWeights(*file, config, backend));
  std::unique_ptr<Engine> engine(
      new Engine(file, backend, std::move(config), std::move(weights)));
  RETURN_IF_ERROR(engine->Allocate(options));
  return engine;
}

absl::Status Engine::Allocate(const EngineOptions& options) {
  const LlamaConfig& c = config_;
  max_seq_len_ = options.max_seq_len > 0 ? options.max_seq_len
                                         : std::min<int64_t>(c.context_length, 4096);
  max_batch_ = std::max<int64_t>(1, options.max_batch);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    ASSIGN_OR_RETURN(auto k, backend_->CreateActivation(max_seq_len_, c.kv_dim()));
    ASSIGN_OR_RETURN(auto v, backend_->CreateActivation(max_seq_len_, c.kv_dim()));
    k_cache_.push_back(std::move(k));
    v_cache_.push_back(std::move(v));
  }
  const int64_t b = max_batch_;
  ASSIGN_OR_RETURN(x_, backend_->CreateActivation(b, c.dim));
  ASSIGN_OR_RETURN(xn_, backend_->CreateActivation(b, c.dim));
  ASSIGN_OR_RETURN(q_, backend_->CreateActivation(b, c.q_dim()));
  ASSIGN_OR_RETURN(k_, backend_->CreateActivation(b, c.kv_dim()));
  ASSIGN_OR_RETURN(v_, backend_->CreateActivation(b, c.kv_dim()));
  ASSIGN_OR_RETURN(attn_, backend_->CreateActivation(b, c.q_dim()));
  ASSIGN_OR_RETURN(proj_, backend_->CreateActivation(b, c.dim));
  ASSIGN_OR_RETURN(gate_, backend_->CreateActivation(b, c.ffn_dim));
  ASSIGN_OR_RETURN(up_, backend_->CreateActivation(b, c.ffn_dim));
  ASSIGN_OR_RETURN(hidden_, backend_->CreateActivation(b, c.ffn_dim));
  ASSIGN_OR_RETURN(logits_, backend_->CreateActivation(b, c.vocab_size));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Engine::Forward(absl::Span<const int32_t> tokens,
                                                   bool all_logits) {
  RETURN_IF_ERROR(ValidateForwardTokens(tokens, position_, max_seq_len_, config_.vocab_size));
  std::vector<float> logits;
  for (size_t start = 0; start < tokens.size(); start += max_batch_) {
    const size_t len = std::min<size_t>(max_batch_, tokens.size() - start);
    const bool last = start + len == tokens.size();
    RETURN_IF_ERROR(ForwardChunk(tokens.subspan(start, len), all_logits, last, &logits));
  }
  return logits;
}

absl::Status Engine::ForwardChunk(absl::Span<const int32_t> tokens, bool all_logits,
                                  bool last_chunk, std::vector<float>* logits) {
  const LlamaConfig& c = config_;
  const int64_t n = tokens.size();
  std::vector<int32_t> positions(n);
  for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(position_ + i);

  RETURN_IF_ERROR(backend_->Embed(*weights_.token_embd, tokens, x_.get()));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    RETURN_IF_ERROR(AttentionBlock(l, positions));
    RETURN_IF_ERROR(FeedForwardBlock(l, n));
  }
  position_ += n;
  if (!all_logits && !last_chunk) return absl::OkStatus();

  RETURN_IF_ERROR(backend_->RmsNorm(*x_, *weights_.output_norm, c.rms_eps, n, xn_.get()));
  const Buffer* normed = xn_.get();
  int64_t rows = n;
  if (!all_logits && n > 1) {
    // Only the last token's logits are wanted: project that row alone.
    std::vector<float> last(c.dim);
    RETURN_IF_ERROR(backend_->Read(*xn_, n - 1, absl::MakeSpan(last)));
    RETURN_IF_ERROR(backend_->Write(last, 0, proj_.get()));
    normed = proj_.get();
    rows = 1;
  }
  const Buffer& out_w = weights_.tied_output ? *weights_.token_embd : *weights_.output;
  RETURN_IF_ERROR(backend_->MatMul(out_w, *normed, rows, logits_.get()));
  const size_t old = logits->size();
  logits->resize(old + rows * c.vocab_size);
  return backend_->Read(*logits_, 0, absl::MakeSpan(logits->data() + old, rows * c.vocab_size));
}

absl::Status Engine::AttentionBlock(int64_t l, absl::Span<const int32_t> positions) {
  const LlamaConfig& c = config_;
  const LayerWeights& w = weights_.layers[l];
  const int64_t n = positions.size();
  RETURN_IF_ERROR(backend_->RmsNorm(*x_, *w.attn_norm, c.rms_eps, n, xn_.get()));
  const Buffer* qkv[] = {w.wq.get(), w.wk.get(), w.wv.get()};
  Buffer* qkv_out[] = {q_.get(), k_.get(), v_.get()};
  RETURN_IF_ERROR(backend_->MatMulGroup(qkv, *xn_, n, qkv_out));
  RopeParams rope{c.n_heads, c.head_dim, c.rope_dim, c.rope_theta, c.rope_layout};
  RETURN_IF_ERROR(backend_->Rope(rope, positions, q_.get()));
  rope.n_heads = c.n_kv_heads;
  RETURN_IF_ERROR(backend_->Rope(rope, positions, k_.get()));
  RETURN_IF_ERROR(backend_->StoreRows(*k_, positions, k_cache_[l].get()));
  RETURN_IF_ERROR(backend_->StoreRows(*v_, positions, v_cache_[l].get()));
  const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  RETURN_IF_ERROR(backend_->Attention(shape, *q_, *k_cache_[l], *v_cache_[l], positions,
                                      attn_.get()));
  RETURN_IF_ERROR(backend_->MatMul(*w.wo, *attn_, n, proj_.get()));
  return backend_->Add(*proj_, n, x_.get());
}

absl::Status Engine::FeedForwardBlock(int64_t l, int64_t n) {
  const LlamaConfig& c = config_;
  const LayerWeights& w = weights_.layers[l];
  RETURN_IF_ERROR(backend_->RmsNorm(*x_, *w.ffn_norm, c.rms_eps, n, xn_.get()));
  const Buffer* gate_up[] = {w.w_gate.get(), w.w_up.get()};
  Buffer* gate_up_out[] = {gate_.get(), up_.get()};
  RETURN_IF_ERROR(backend_->MatMulGroup(gate_up, *xn_, n, gate_up_out));
  RETURN_IF_ERROR(backend_->SiluMul(*gate_, *up_, n, hidden_.get()));
  RETURN_IF_ERROR(backend_->MatMul(*w.w_down, *hidden_, n, proj_.get()));
  return backend_->Add(*proj_, n, x_.get());
}

}  // namespace shardlm
