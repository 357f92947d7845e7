// The compute ops of CudaBackend (cuda_backend.cc has creation and copies).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_buffer.h"
#include "backends/cuda/launch_config.h"
#include "core/status_macros.h"

namespace shardlm {

using cuda::CheckF32;
using cuda::CudaBuffer;
using cuda::CudaStatus;
using cuda::Own;

absl::Status CudaBackend::UploadIndices(absl::Span<const int32_t> host, cuda::DeviceBuffer* buf,
                                        std::vector<int32_t>* cache) {
  if (cache->size() == host.size() && std::equal(host.begin(), host.end(), cache->begin())) {
    return absl::OkStatus();
  }
  cache->clear();
  RETURN_IF_ERROR(Upload(host, buf));
  cache->assign(host.begin(), host.end());
  return absl::OkStatus();
}

absl::Status CudaBackend::UploadRopeTables(const RopeParams& p,
                                           absl::Span<const int32_t> positions) {
  if (rope_theta_held_ == p.theta && rope_dim_held_ == p.rope_dim &&
      rope_positions_held_.size() == positions.size() &&
      std::equal(positions.begin(), positions.end(), rope_positions_held_.begin())) {
    return absl::OkStatus();
  }
  rope_dim_held_ = -1;
  const int64_t half = p.rope_dim / 2;
  host_cos_.resize(positions.size() * half);
  host_sin_.resize(positions.size() * half);
  // The CPU backend's own table code: bit-identical angles and roundings.
  cpu::RopeTables(p.theta, p.rope_dim, positions.data(), positions.size(), host_cos_.data(),
                  host_sin_.data());
  RETURN_IF_ERROR(Upload(absl::Span<const float>(host_cos_), &rope_cos_));
  RETURN_IF_ERROR(Upload(absl::Span<const float>(host_sin_), &rope_sin_));
  rope_positions_held_.assign(positions.begin(), positions.end());
  rope_theta_held_ = p.theta;
  rope_dim_held_ = p.rope_dim;
  return absl::OkStatus();
}

absl::StatusOr<cuda::ActQ8View> CudaBackend::QuantizeAct(const Buffer& x, int64_t n) {
  ASSIGN_OR_RETURN(const CudaBuffer* cx, Own(x, info_.ordinal));
  const int64_t nb = x.cols() / kQK;
  RETURN_IF_ERROR(Scratch(&act_d_, n * nb * sizeof(float)));
  RETURN_IF_ERROR(Scratch(&act_qs_, n * nb * kQK));
  RETURN_IF_ERROR(CudaStatus(cuda::LaunchQuantizeActQ8(cx->f32(), x.cols(), n, nb,
                                                       act_d_.as<float>(), act_qs_.as<int8_t>(),
                                                       stream_->get()),
                             "quantize activations"));
  cuda::ActQ8View v;
  v.d = act_d_.as<float>();
  v.qs = act_qs_.as<int8_t>();
  v.nb = nb;
  return v;
}

absl::Status CudaBackend::RunMatMul(const Buffer& w, const Buffer& x, int64_t n, bool exact,
                                    float* out, int64_t* fixed) {
  ASSIGN_OR_RETURN(const CudaBuffer* cw, Own(w, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* cx, Own(x, info_.ordinal));
  if (!SupportsWeightType(w.dtype())) {
    return absl::UnimplementedError(
        absl::StrCat("cuda MatMul does not support ", DTypeName(w.dtype()), " weights"));
  }
  cuda::ActQ8View act;
  if (cuda::IsQuantized(w.dtype())) {
    ASSIGN_OR_RETURN(act, QuantizeAct(x, n));
  }
  return CudaStatus(cuda::LaunchMatMul(cw->view(), act, cx->f32(), x.cols(), n, exact, out,
                                       w.rows(), fixed, stream_->get()),
                    "MatMul");
}

absl::Status CudaBackend::MatMul(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) {
  RETURN_IF_ERROR(CheckF32(x, n, w.cols(), "MatMul input"));
  RETURN_IF_ERROR(CheckF32(*out, n, w.rows(), "MatMul output"));
  ASSIGN_OR_RETURN(const CudaBuffer* co, Own(*out, info_.ordinal));
  if (n <= 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  return RunMatMul(w, x, n, numerics_ == Numerics::kExact, co->f32(), nullptr);
}

absl::Status CudaBackend::MatMulFixed(const Buffer& w, const Buffer& x, int64_t n,
                                      absl::Span<int64_t> out) {
  RETURN_IF_ERROR(CheckF32(x, n, w.cols(), "MatMulFixed input"));
  const int64_t rows = w.rows();
  if (static_cast<int64_t>(out.size()) < n * rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMulFixed output: ", out.size(), " values for ", n, " x ", rows));
  }
  if (n <= 0 || rows == 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(Scratch(&fixed_, n * rows * sizeof(int64_t)));
  // Exact totals whatever this backend's numerics, as the CPU backend.
  RETURN_IF_ERROR(RunMatMul(w, x, n, /*exact=*/true, nullptr, fixed_.as<int64_t>()));
  RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(out.data(), fixed_.get(), n * rows * sizeof(int64_t),
                                             cudaMemcpyDeviceToHost, stream_->get()),
                             "MatMulFixed copy"));
  return stream_->Synchronize();
}

absl::Status CudaBackend::Embed(const Buffer& table, absl::Span<const int32_t> tokens,
                                Buffer* out) {
  const int64_t n = tokens.size();
  RETURN_IF_ERROR(CheckF32(*out, n, table.cols(), "Embed output"));
  ASSIGN_OR_RETURN(const CudaBuffer* ct, Own(table, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* co, Own(*out, info_.ordinal));
  for (int32_t t : tokens) {
    if (t < 0 || t >= table.rows()) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", t, " outside the vocabulary of ", table.rows()));
    }
  }
  if (n == 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(Upload(tokens, &tokens_));
  return CudaStatus(
      cuda::LaunchEmbed(ct->view(), tokens_.as<int32_t>(), n, co->f32(), stream_->get()),
      "Embed");
}

absl::Status CudaBackend::RmsNorm(const Buffer& x, const Buffer& weight, float eps, int64_t n,
                                  Buffer* out) {
  const int64_t d = x.cols();
  RETURN_IF_ERROR(CheckF32(x, n, d, "RmsNorm input"));
  RETURN_IF_ERROR(CheckF32(weight, 1, d, "RmsNorm weight"));
  RETURN_IF_ERROR(CheckF32(*out, n, d, "RmsNorm output"));
  ASSIGN_OR_RETURN(const CudaBuffer* cx, Own(x, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* cg, Own(weight, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* co, Own(*out, info_.ordinal));
  if (n <= 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  return CudaStatus(cuda::LaunchRmsNorm(cx->f32(), cg->f32(), eps, n, d,
                                        numerics_ == Numerics::kExact, co->f32(), stream_->get()),
                    "RmsNorm");
}

absl::Status CudaBackend::Rope(const RopeParams& p, absl::Span<const int32_t> positions,
                               Buffer* x) {
  RETURN_IF_ERROR(CheckF32(*x, positions.size(), p.n_heads * p.head_dim, "Rope input"));
  ASSIGN_OR_RETURN(const CudaBuffer* cx, Own(*x, info_.ordinal));
  if (p.rope_dim < 0 || p.rope_dim > p.head_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("Rope: rope_dim ", p.rope_dim, " outside head_dim ", p.head_dim));
  }
  const int64_t half = p.rope_dim / 2;
  if (positions.empty() || half == 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(UploadRopeTables(p, positions));
  return CudaStatus(cuda::LaunchRope(cx->f32(), x->cols(), rope_cos_.as<float>(),
                                     rope_sin_.as<float>(), positions.size(), p.n_heads,
                                     p.head_dim, half, p.layout == RopeLayout::kInterleaved,
                                     stream_->get()),
                    "Rope");
}

absl::Status CudaBackend::StoreRows(const Buffer& src, absl::Span<const int32_t> rows,
                                    Buffer* dst) {
  RETURN_IF_ERROR(CheckF32(src, rows.size(), dst->cols(), "StoreRows source"));
  RETURN_IF_ERROR(CheckF32(*dst, 1, dst->cols(), "StoreRows destination"));
  ASSIGN_OR_RETURN(const CudaBuffer* cs, Own(src, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* cd, Own(*dst, info_.ordinal));
  for (int32_t r : rows) {
    if (r < 0 || r >= dst->rows()) {
      return absl::OutOfRangeError(absl::StrCat("StoreRows: row ", r, " outside ", dst->rows()));
    }
  }
  if (rows.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(UploadIndices(rows, &rows_, &rows_held_));
  return CudaStatus(cuda::LaunchStoreRows(cs->f32(), rows_.as<int32_t>(), rows.size(),
                                          dst->cols(), cd->f32(), stream_->get()),
                    "StoreRows");
}

absl::Status CudaBackend::Attention(const AttentionShape& s, const Buffer& q,
                                    const Buffer& k_cache, const Buffer& v_cache,
                                    absl::Span<const int32_t> positions, Buffer* out) {
  const int64_t n = positions.size();
  const int64_t hd = s.head_dim;
  if (s.n_kv_heads <= 0 || s.n_heads <= 0 || hd <= 0 ||
      (s.group == 0 && s.n_heads % s.n_kv_heads != 0)) {
    return absl::InvalidArgumentError("Attention: heads not a multiple of kv heads");
  }
  const int64_t group = s.group > 0 ? s.group : s.n_heads / s.n_kv_heads;
  auto kv_head = [&](int64_t h) { return (s.q_head_offset + h) / group - s.kv_head_offset; };
  if (s.q_head_offset < 0 || kv_head(0) < 0 || kv_head(s.n_heads - 1) >= s.n_kv_heads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Attention: query heads ", s.q_head_offset, "..", s.q_head_offset + s.n_heads - 1,
        " (group ", group, ") need K/V heads outside ", s.kv_head_offset, "..",
        s.kv_head_offset + s.n_kv_heads - 1));
  }
  RETURN_IF_ERROR(CheckF32(q, n, s.n_heads * hd, "Attention q"));
  RETURN_IF_ERROR(CheckF32(*out, n, s.n_heads * hd, "Attention output"));
  RETURN_IF_ERROR(CheckF32(k_cache, 1, s.n_kv_heads * hd, "Attention k cache"));
  RETURN_IF_ERROR(CheckF32(v_cache, 1, s.n_kv_heads * hd, "Attention v cache"));
  ASSIGN_OR_RETURN(const CudaBuffer* cq, Own(q, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* ck, Own(k_cache, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* cv, Own(v_cache, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* co, Own(*out, info_.ordinal));
  if (n == 0) return absl::OkStatus();
  int32_t max_pos = 0;
  for (int32_t p : positions) {
    if (p < 0 || p >= k_cache.rows() || p >= v_cache.rows()) {
      return absl::OutOfRangeError("Attention: position outside cache");
    }
    max_pos = std::max(max_pos, p);
  }
  RETURN_IF_ERROR(Activate());
  cuda::AttentionArgs a;
  a.score_stride = static_cast<int64_t>(max_pos) + 1;
  RETURN_IF_ERROR(Scratch(&scores_, n * s.n_heads * a.score_stride * sizeof(float)));
  RETURN_IF_ERROR(UploadIndices(positions, &positions_, &positions_held_));
  a.q = cq->f32();
  a.k = ck->f32();
  a.v = cv->f32();
  a.out = co->f32();
  a.positions = positions_.as<int32_t>();
  a.scores = scores_.as<float>();
  a.n = n;
  a.n_heads = s.n_heads;
  a.head_dim = hd;
  a.kv_stride = k_cache.cols();
  a.group = group;
  a.q_head_offset = s.q_head_offset;
  a.kv_head_offset = s.kv_head_offset;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));  // as CpuBackend::Attention
  a.exact = numerics_ == Numerics::kExact;
  return CudaStatus(cuda::LaunchAttention(a, stream_->get()), "Attention");
}

absl::Status CudaBackend::SiluMul(const Buffer& gate, const Buffer& up, int64_t n, Buffer* out) {
  RETURN_IF_ERROR(CheckF32(gate, n, gate.cols(), "SiluMul gate"));
  RETURN_IF_ERROR(CheckF32(up, n, gate.cols(), "SiluMul up"));
  RETURN_IF_ERROR(CheckF32(*out, n, gate.cols(), "SiluMul output"));
  ASSIGN_OR_RETURN(const CudaBuffer* cg, Own(gate, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* cu, Own(up, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* co, Own(*out, info_.ordinal));
  if (n <= 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  return CudaStatus(
      cuda::LaunchSiluMul(cg->f32(), cu->f32(), n * gate.cols(), co->f32(), stream_->get()),
      "SiluMul");
}

absl::Status CudaBackend::Add(const Buffer& x, int64_t n, Buffer* acc) {
  RETURN_IF_ERROR(CheckF32(x, n, acc->cols(), "Add input"));
  RETURN_IF_ERROR(CheckF32(*acc, n, x.cols(), "Add accumulator"));
  ASSIGN_OR_RETURN(const CudaBuffer* cx, Own(x, info_.ordinal));
  ASSIGN_OR_RETURN(const CudaBuffer* ca, Own(*acc, info_.ordinal));
  if (n <= 0) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  return CudaStatus(cuda::LaunchAdd(cx->f32(), n * x.cols(), ca->f32(), stream_->get()), "Add");
}

namespace {
const Registrar<Backend, BackendOptions> kRegisterCuda(
    "cuda", [](const BackendOptions& opts) -> absl::StatusOr<std::unique_ptr<Backend>> {
      ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> backend, CudaBackend::Create(opts));
      return std::unique_ptr<Backend>(std::move(backend));
    });
}  // namespace

}  // namespace shardlm
