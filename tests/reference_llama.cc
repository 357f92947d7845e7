#include "tests/reference_llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/dtype.h"
#include "core/status_macros.h"

namespace shardlm::testing {
namespace {

absl::Status BadTensor(const GgufFile& file, const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file.source(), ": tensor '", name, "' ", what));
}

// Dequantizes `rows` rows of `cols` values of tensor `t` into doubles.
absl::StatusOr<std::vector<double>> Dequantize(const GgufTensorInfo& t, int64_t rows,
                                               int64_t cols) {
  ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes(t.type, cols));
  std::vector<double> out(rows * cols);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    RETURN_IF_ERROR(DequantizeRow(t.type, t.data + r * row_bytes, cols, row.data()));
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = row[c];
  }
  return out;
}

// Tensor `name` with GGUF dims {cols, rows}, as a rows x cols matrix.
absl::StatusOr<RefMatrix> LoadMatrix(const GgufFile& file, const std::string& name, int64_t rows,
                                     int64_t cols) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (t == nullptr) return BadTensor(file, name, "is missing");
  if (t->dims != std::vector<int64_t>{cols, rows}) {
    return BadTensor(file, name, absl::StrCat("has dims [", absl::StrJoin(t->dims, ", "),
                                              "], expected [", cols, ", ", rows, "]"));
  }
  RefMatrix m;
  m.rows = rows;
  m.cols = cols;
  ASSIGN_OR_RETURN(m.values, Dequantize(*t, rows, cols));
  m.q8_activations = t->type == DType::kQ8_0 || t->type == DType::kQ4_0;
  return m;
}

// Tensor `name` with GGUF dims {n}.
absl::StatusOr<std::vector<double>> LoadVector(const GgufFile& file, const std::string& name,
                                               int64_t n) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (t == nullptr) return BadTensor(file, name, "is missing");
  if (t->dims != std::vector<int64_t>{n}) {
    return BadTensor(file, name, absl::StrCat("has dims [", absl::StrJoin(t->dims, ", "),
                                              "], expected [", n, "]"));
  }
  return Dequantize(*t, 1, n);
}

// x as the engine feeds it to a quantized matrix: float values quantized in
// blocks of 32 to d * q, d = amax / 127, q = round-half-even(x / d).
std::vector<double> QuantizeActivations(const std::vector<double>& x) {
  std::vector<double> out(x.size());
  for (size_t b = 0; b < x.size(); b += kQK) {
    float amax = 0.0f;
    for (size_t i = b; i < b + kQK; ++i) amax = std::max(amax, std::fabs(static_cast<float>(x[i])));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (size_t i = b; i < b + kQK; ++i) {
      out[i] = static_cast<double>(d) * std::nearbyint(static_cast<float>(x[i]) * id);
    }
  }
  return out;
}

// out[r] = sum_c m[r][c] * x[c]
std::vector<double> MatVec(const RefMatrix& m, const std::vector<double>& x_in) {
  const std::vector<double> x = m.q8_activations ? QuantizeActivations(x_in) : x_in;
  std::vector<double> out(m.rows, 0.0);
  for (int64_t r = 0; r < m.rows; ++r) {
    double sum = 0.0;
    for (int64_t c = 0; c < m.cols; ++c) sum += m.row(r)[c] * x[c];
    out[r] = sum;
  }
  return out;
}

// x / sqrt(mean(x^2) + eps) * weight
std::vector<double> RmsNorm(const std::vector<double>& x, const std::vector<double>& weight,
                            double eps) {
  double sum_sq = 0.0;
  for (double v : x) sum_sq += v * v;
  const double scale = 1.0 / std::sqrt(sum_sq / x.size() + eps);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * scale * weight[i];
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReferenceLlama>> ReferenceLlama::Create(const GgufFile& file) {
  std::unique_ptr<ReferenceLlama> m(new ReferenceLlama());
  ASSIGN_OR_RETURN(m->config_, LlamaConfigFromGguf(file));
  const LlamaConfig& c = m->config_;
  if (c.rope_layout != RopeLayout::kInterleaved) {
    return absl::UnimplementedError("reference llama: only interleaved RoPE");
  }
  ASSIGN_OR_RETURN(m->token_embd_, LoadMatrix(file, "token_embd.weight", c.vocab_size, c.dim));
  ASSIGN_OR_RETURN(m->output_norm_, LoadVector(file, "output_norm.weight", c.dim));
  if (file.FindTensor("output.weight") != nullptr) {
    ASSIGN_OR_RETURN(m->output_, LoadMatrix(file, "output.weight", c.vocab_size, c.dim));
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    Layer L;
    ASSIGN_OR_RETURN(L.attn_norm, LoadVector(file, p + "attn_norm.weight", c.dim));
    ASSIGN_OR_RETURN(L.wq, LoadMatrix(file, p + "attn_q.weight", c.q_dim(), c.dim));
    ASSIGN_OR_RETURN(L.wk, LoadMatrix(file, p + "attn_k.weight", c.kv_dim(), c.dim));
    ASSIGN_OR_RETURN(L.wv, LoadMatrix(file, p + "attn_v.weight", c.kv_dim(), c.dim));
    ASSIGN_OR_RETURN(L.wo, LoadMatrix(file, p + "attn_output.weight", c.dim, c.q_dim()));
    ASSIGN_OR_RETURN(L.ffn_norm, LoadVector(file, p + "ffn_norm.weight", c.dim));
    ASSIGN_OR_RETURN(L.w_gate, LoadMatrix(file, p + "ffn_gate.weight", c.ffn_dim, c.dim));
    ASSIGN_OR_RETURN(L.w_up, LoadMatrix(file, p + "ffn_up.weight", c.ffn_dim, c.dim));
    ASSIGN_OR_RETURN(L.w_down, LoadMatrix(file, p + "ffn_down.weight", c.dim, c.ffn_dim));
    m->layers_.push_back(std::move(L));
  }
  m->Reset();
  return m;
}

void ReferenceLlama::Reset() {
  pos_ = 0;
  k_cache_.assign(config_.n_layers, {});
  v_cache_.assign(config_.n_layers, {});
}

std::vector<double> ReferenceLlama::Step(int32_t token) {
  if (token < 0 || token >= config_.vocab_size) {
    std::fprintf(stderr, "ReferenceLlama::Step: token %d outside the vocabulary\n", token);
    std::abort();
  }
  std::vector<double> x(token_embd_.row(token), token_embd_.row(token) + config_.dim);
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    AttentionBlock(l, &x);
    FeedForwardBlock(l, &x);
  }
  ++pos_;
  const std::vector<double> xn = RmsNorm(x, output_norm_, config_.rms_eps);
  return MatVec(output_.rows > 0 ? output_ : token_embd_, xn);
}

void ReferenceLlama::ApplyRope(int64_t n_heads, std::vector<double>* v) const {
  const LlamaConfig& c = config_;
  for (int64_t h = 0; h < n_heads; ++h) {
    double* head = v->data() + h * c.head_dim;
    for (int64_t i = 0; i < c.rope_dim / 2; ++i) {
      const double angle =
          static_cast<double>(pos_) * std::pow(c.rope_theta, -2.0 * i / c.rope_dim);
      const double a = head[2 * i], b = head[2 * i + 1];
      head[2 * i] = a * std::cos(angle) - b * std::sin(angle);
      head[2 * i + 1] = a * std::sin(angle) + b * std::cos(angle);
    }
  }
}

void ReferenceLlama::AttentionBlock(int64_t l, std::vector<double>* x) {
  const LlamaConfig& c = config_;
  const Layer& L = layers_[l];
  const std::vector<double> xn = RmsNorm(*x, L.attn_norm, c.rms_eps);
  std::vector<double> q = MatVec(L.wq, xn);
  std::vector<double> k = MatVec(L.wk, xn);
  ApplyRope(c.n_heads, &q);
  ApplyRope(c.n_kv_heads, &k);
  k_cache_[l].push_back(k);
  v_cache_[l].push_back(MatVec(L.wv, xn));

  const int64_t group = c.n_heads / c.n_kv_heads;
  const int64_t len = pos_ + 1;
  std::vector<double> attn(c.q_dim(), 0.0);
  for (int64_t h = 0; h < c.n_heads; ++h) {
    const int64_t kv_off = (h / group) * c.head_dim;
    std::vector<double> scores(len);
    double max_score = -INFINITY;
    for (int64_t t = 0; t < len; ++t) {
      double dot = 0.0;
      for (int64_t j = 0; j < c.head_dim; ++j) {
        dot += q[h * c.head_dim + j] * k_cache_[l][t][kv_off + j];
      }
      scores[t] = dot / std::sqrt(static_cast<double>(c.head_dim));
      max_score = std::max(max_score, scores[t]);
    }
    double sum = 0.0;
    for (double& s : scores) {
      s = std::exp(s - max_score);
      sum += s;
    }
    for (int64_t t = 0; t < len; ++t) {
      for (int64_t j = 0; j < c.head_dim; ++j) {
        attn[h * c.head_dim + j] += scores[t] / sum * v_cache_[l][t][kv_off + j];
      }
    }
  }
  const std::vector<double> proj = MatVec(L.wo, attn);
  for (int64_t i = 0; i < c.dim; ++i) (*x)[i] += proj[i];
}

void ReferenceLlama::FeedForwardBlock(int64_t l, std::vector<double>* x) {
  const LlamaConfig& c = config_;
  const Layer& L = layers_[l];
  const std::vector<double> xn = RmsNorm(*x, L.ffn_norm, c.rms_eps);
  const std::vector<double> gate = MatVec(L.w_gate, xn);
  const std::vector<double> up = MatVec(L.w_up, xn);
  std::vector<double> hidden(c.ffn_dim);
  for (int64_t j = 0; j < c.ffn_dim; ++j) {
    const double silu = gate[j] / (1.0 + std::exp(-gate[j]));
    hidden[j] = silu * up[j];
  }
  const std::vector<double> down = MatVec(L.w_down, hidden);
  for (int64_t i = 0; i < c.dim; ++i) (*x)[i] += down[i];
}

}  // namespace shardlm::testing
