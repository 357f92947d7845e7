#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernels.h"
#include "core/huge_page_memory.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

// Quantized products split their rows in units of this many, so that a
// chunk keeps whole row blocks of the multi-row q4_0 dots.
constexpr int64_t kRowUnit = 8;

class CpuBuffer : public Buffer {
 public:
  // Aliases `data` (weights in a mapped file).
  CpuBuffer(DType type, int64_t rows, int64_t cols, uint64_t row_bytes, const void* data)
      : Buffer(type, rows, cols),
        row_bytes_(row_bytes),
        data_(static_cast<uint8_t*>(const_cast<void*>(data))) {}
  // Owns `memory`, q4_0 rows in the q4_0x8 layout (kernels.h).
  CpuBuffer(int64_t rows, int64_t cols, uint64_t row_bytes, std::unique_ptr<HugePageMemory> memory)
      : Buffer(DType::kQ4_0, rows, cols),
        row_bytes_(row_bytes),
        q4x8_(std::move(memory)),
        data_(q4x8_->data()) {}
  // Owns a zeroed F32 array.
  CpuBuffer(int64_t rows, int64_t cols)
      : Buffer(DType::kF32, rows, cols),
        row_bytes_(cols * sizeof(float)),
        owned_(static_cast<size_t>(rows * cols), 0.0f),
        data_(reinterpret_cast<uint8_t*>(owned_.data())) {}

  std::string device() const override { return "cpu"; }
  const uint8_t* row(int64_t r) const { return data_ + r * row_bytes_; }
  uint64_t row_bytes() const { return row_bytes_; }
  // Whether the rows are q4_0 in the q4_0x8 layout.
  bool q4x8() const { return q4x8_ != nullptr; }
  float* f32(int64_t r) { return reinterpret_cast<float*>(data_ + r * row_bytes_); }
  const float* f32(int64_t r) const { return reinterpret_cast<const float*>(data_ + r * row_bytes_); }

 private:
  uint64_t row_bytes_;
  std::vector<float> owned_;
  std::unique_ptr<HugePageMemory> q4x8_;
  uint8_t* data_;
};

const CpuBuffer& Cpu(const Buffer& b) { return static_cast<const CpuBuffer&>(b); }
CpuBuffer& Cpu(Buffer* b) { return *static_cast<CpuBuffer*>(b); }

absl::Status CheckF32(const Buffer& b, int64_t min_rows, int64_t cols, const char* what) {
  if (b.dtype() != DType::kF32 || b.rows() < min_rows || b.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": expected an f32 buffer of at least ", min_rows, " x ", cols, ", got ",
        DTypeName(b.dtype()), " ", b.rows(), " x ", b.cols()));
  }
  return absl::OkStatus();
}

int DefaultThreads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

CpuBackend::CpuBackend(const BackendOptions& options, const cpu::KernelTable* kernels)
    : numerics_(options.numerics),
      repack_(options.repack),
      kernels_(kernels),
      pool_(DefaultThreads(options.threads)) {}

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const BackendOptions& options) {
  ASSIGN_OR_RETURN(const cpu::KernelTable* kernels, cpu::SelectKernels(options.isa));
  return std::unique_ptr<CpuBackend>(new CpuBackend(options, kernels));
}

std::string CpuBackend::Describe() const {
  const bool repacks = repack_ && kernels_->dot_q4_0x8_fast_rows != nullptr;
  return absl::StrCat("cpu: ", kernels_->isa, " kernels", repacks ? " (q4_0 repacked)" : "", ", ",
                      pool_.size(), " threads, ", NumericsName(numerics_), " numerics");
}

bool CpuBackend::SupportsWeightType(DType type) const { return Info(type).compute_supported; }

absl::StatusOr<std::unique_ptr<Buffer>> CpuBackend::CreateWeight(DType type, int64_t rows,
                                                                 int64_t cols, const void* host) {
  if (!SupportsWeightType(type)) {
    return absl::UnimplementedError(
        absl::StrCat("cpu backend does not support ", DTypeName(type), " weights"));
  }
  ASSIGN_OR_RETURN(uint64_t row_bytes, RowBytes(type, cols));
  const int64_t nb = cols / kQK;
  if (repack_ && type == DType::kQ4_0 && kernels_->dot_q4_0x8_fast_rows != nullptr &&
      nb >= cpu::kQ4x8Blocks && rows > 0) {
    // A repacked copy that the q4_0x8 kernels stream without shuffles.
    std::unique_ptr<HugePageMemory> memory = HugePageMemory::Allocate(rows * row_bytes);
    if (memory == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cpu backend: cannot allocate ", (rows * row_bytes) >> 20, " MiB for a q4_0 matrix"));
    }
    const auto* src = static_cast<const uint8_t*>(host);
    uint8_t* dst = memory->data();
    // Whole tiles per job (a tile's rows are interleaved), the last job
    // taking the rows after the last whole tile.
    constexpr int64_t kTile = cpu::kQ4x8TileRows;
    pool_.ParallelFor((rows + kTile - 1) / kTile, [&](int64_t begin, int64_t end) {
      const int64_t first = begin * kTile, last = std::min(rows, end * kTile);
      cpu::RepackQ4_0x8Rows(reinterpret_cast<const BlockQ4_0*>(src + first * row_bytes),
                            last - first, nb, dst + first * row_bytes);
    }, kTile * row_bytes);
    return std::unique_ptr<Buffer>(new CpuBuffer(rows, cols, row_bytes, std::move(memory)));
  }
  return std::unique_ptr<Buffer>(new CpuBuffer(type, rows, cols, row_bytes, host));
}

absl::StatusOr<std::unique_ptr<Buffer>> CpuBackend::CreateActivation(int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return absl::InvalidArgumentError("empty activation buffer");
  return std::unique_ptr<Buffer>(new CpuBuffer(rows, cols));
}

absl::Status CpuBackend::Write(absl::Span<const float> src, int64_t row, Buffer* dst) {
  if (dst->dtype() != DType::kF32 || src.size() % dst->cols() != 0 ||
      row < 0 || row + static_cast<int64_t>(src.size()) / dst->cols() > dst->rows()) {
    return absl::InvalidArgumentError("Write: out of range");
  }
  std::memcpy(Cpu(dst).f32(row), src.data(), src.size() * sizeof(float));
  return absl::OkStatus();
}

absl::Status CpuBackend::Read(const Buffer& src, int64_t row, absl::Span<float> dst) {
  if (src.dtype() != DType::kF32 || dst.size() % src.cols() != 0 ||
      row < 0 || row + static_cast<int64_t>(dst.size()) / src.cols() > src.rows()) {
    return absl::InvalidArgumentError("Read: out of range");
  }
  std::memcpy(dst.data(), Cpu(src).f32(row), dst.size() * sizeof(float));
  return absl::OkStatus();
}

absl::Status CpuBackend::MatMul(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) {
  RETURN_IF_ERROR(CheckF32(x, n, w.cols(), "MatMul input"));
  RETURN_IF_ERROR(CheckF32(*out, n, w.rows(), "MatMul output"));
  switch (w.dtype()) {
    case DType::kQ8_0:
    case DType::kQ4_0: {
      const Buffer* ws[] = {&w};
      MatMulQuantized(ws, x, n, absl::MakeSpan(&out, 1));
      return absl::OkStatus();
    }
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      MatMulFloat(w, x, n, out);
      return absl::OkStatus();
    default:
      return absl::UnimplementedError(
          absl::StrCat("cpu MatMul does not support ", DTypeName(w.dtype()), " weights"));
  }
}

absl::Status CpuBackend::MatMulGroup(absl::Span<const Buffer* const> ws, const Buffer& x,
                                     int64_t n, absl::Span<Buffer* const> outs) {
  // One job when every matrix is quantized alike (one activation form).
  bool one_job = !ws.empty() && ws.size() == outs.size();
  for (size_t i = 0; one_job && i < ws.size(); ++i) {
    const CpuBuffer& w = Cpu(*ws[i]);
    one_job = (w.dtype() == DType::kQ8_0 || w.dtype() == DType::kQ4_0) &&
              w.dtype() == ws[0]->dtype() && w.cols() == ws[0]->cols() &&
              w.q4x8() == Cpu(*ws[0]).q4x8();
  }
  if (!one_job) return Backend::MatMulGroup(ws, x, n, outs);
  for (size_t i = 0; i < ws.size(); ++i) {
    RETURN_IF_ERROR(CheckF32(x, n, ws[i]->cols(), "MatMul input"));
    RETURN_IF_ERROR(CheckF32(*outs[i], n, ws[i]->rows(), "MatMul output"));
  }
  MatMulQuantized(ws, x, n, outs);
  return absl::OkStatus();
}

void CpuBackend::MatMulQuantized(absl::Span<const Buffer* const> ws, const Buffer& x, int64_t n,
                                 absl::Span<Buffer* const> outs) {
  const Buffer& w0 = *ws[0];
  const int64_t nb = w0.cols() / kQK;
  act_q8_.resize(n * nb);
  const CpuBuffer& cx = Cpu(x);
  const cpu::KernelTable& k = *kernels_;
  const size_t x8_bytes = Cpu(w0).q4x8() ? k.q4_0x8_act_bytes(nb) : 0;
  act_q4x8_.resize(n * x8_bytes);
  pool_.ParallelFor(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      k.quantize_act_q8(cx.f32(i), w0.cols(), &act_q8_[i * nb]);
      if (x8_bytes > 0) k.prepare_q4_0x8_act(&act_q8_[i * nb], nb, &act_q4x8_[i * x8_bytes]);
    }
  }, w0.cols());
  // The matrices' rows as one range of units of kRowUnit rows (chunks keep
  // whole row blocks of the multi-row q4_0 dots); matrix m has units
  // [first[m], first[m + 1]).
  absl::InlinedVector<int64_t, 8> first = {0};
  for (const Buffer* w : ws) {
    first.push_back(first.back() + (w->rows() + kRowUnit - 1) / kRowUnit);
  }
  pool_.ParallelFor(first.back(), [&](int64_t unit_begin, int64_t unit_end) {
    for (size_t m = 0; m < ws.size(); ++m) {
      const int64_t b = std::max(unit_begin, first[m]), e = std::min(unit_end, first[m + 1]);
      if (b >= e) continue;
      QuantizedRows(*ws[m], n, (b - first[m]) * kRowUnit,
                    std::min(ws[m]->rows(), (e - first[m]) * kRowUnit), x8_bytes, outs[m]);
    }
  }, kRowUnit * n * w0.cols() / 2);
}

void CpuBackend::QuantizedRows(const Buffer& w, int64_t n, int64_t begin, int64_t end,
                               size_t x8_bytes, Buffer* out) const {
  const CpuBuffer& cw = Cpu(w);
  CpuBuffer& co = Cpu(out);
  const int64_t nb = cw.cols() / kQK;
  const cpu::KernelTable& k = *kernels_;
  const bool q4 = cw.dtype() == DType::kQ4_0;
  const bool exact = numerics_ == Numerics::kExact;
  if (q4) {
    // Blocks of rows through the multi-row dots (which share the
    // activation work between rows); a block's weights stay in cache
    // across the tokens.
    constexpr int kRowBlock = static_cast<int>(kRowUnit);
    const size_t stride = cw.row_bytes();
    int64_t iv[kRowBlock];
    float fv[kRowBlock];
    for (int64_t r = begin; r < end; r += kRowBlock) {
      const int rows = static_cast<int>(std::min<int64_t>(kRowBlock, end - r));
      for (int64_t i = 0; i < n; ++i) {
        const cpu::ActBlockQ8* xa = &act_q8_[i * nb];
        float* o = co.f32(i) + r;
        const void* x8 = x8_bytes > 0 ? &act_q4x8_[i * x8_bytes] : nullptr;
        if (exact) {
          if (x8 != nullptr) {
            k.dot_q4_0x8_exact_rows(cw.row(r), stride, rows, x8, xa, nb, iv);
          } else {
            k.dot_q4_0_exact_rows(cw.row(r), stride, rows, xa, nb, iv);
          }
          for (int j = 0; j < rows; ++j) o[j] = cpu::FromFixed(iv[j]);
        } else if (x8 != nullptr) {
          k.dot_q4_0x8_fast_rows(cw.row(r), stride, rows, x8, xa, nb, o);
        } else {
          k.dot_q4_0_fast_rows(cw.row(r), stride, rows, xa, nb, fv);
          for (int j = 0; j < rows; ++j) o[j] = fv[j];
        }
      }
    }
    return;
  }
  for (int64_t r = begin; r < end; ++r) {
    const auto* wb = reinterpret_cast<const BlockQ8_0*>(cw.row(r));
    for (int64_t i = 0; i < n; ++i) {
      const cpu::ActBlockQ8* xa = &act_q8_[i * nb];
      co.f32(i)[r] =
          exact ? cpu::FromFixed(k.dot_q8_0_exact(wb, xa, nb)) : k.dot_q8_0_fast(wb, xa, nb);
    }
  }
}

void CpuBackend::MatMulFloat(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) {
  const int64_t cols = w.cols();
  const CpuBuffer& cx = Cpu(x);
  const bool exact = numerics_ == Numerics::kExact;
  if (exact) {
    act_scaled_.resize(n * cols);
    for (int64_t i = 0; i < n; ++i) {
      const float* xi = cx.f32(i);
      for (int64_t c = 0; c < cols; ++c) {
        act_scaled_[i * cols + c] = static_cast<double>(xi[c]) * cpu::kFixedScale;
      }
    }
  }
  const CpuBuffer& cw = Cpu(w);
  CpuBuffer& co = Cpu(out);
  const DType type = w.dtype();
  const cpu::KernelTable& k = *kernels_;
  pool_.ParallelFor(w.rows(), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const void* wr = cw.row(r);
      for (int64_t i = 0; i < n; ++i) {
        float v;
        if (exact) {
          const double* xs = &act_scaled_[i * cols];
          const int64_t fixed =
              type == DType::kF32   ? k.dot_f32_exact(static_cast<const float*>(wr), xs, cols)
              : type == DType::kF16 ? k.dot_f16_exact(static_cast<const uint16_t*>(wr), xs, cols)
                                    : k.dot_bf16_exact(static_cast<const uint16_t*>(wr), xs, cols);
          v = cpu::FromFixed(fixed);
        } else {
          const float* xi = cx.f32(i);
          v = type == DType::kF32   ? k.dot_f32_fast(static_cast<const float*>(wr), xi, cols)
              : type == DType::kF16 ? k.dot_f16_fast(static_cast<const uint16_t*>(wr), xi, cols)
                                    : k.dot_bf16_fast(static_cast<const uint16_t*>(wr), xi, cols);
        }
        co.f32(i)[r] = v;
      }
    }
  }, n * cols);
}

absl::Status CpuBackend::MatMulFixed(const Buffer& w, const Buffer& x, int64_t n,
                                     absl::Span<int64_t> out) {
  RETURN_IF_ERROR(CheckF32(x, n, w.cols(), "MatMulFixed input"));
  const int64_t rows = w.rows(), cols = w.cols();
  if (static_cast<int64_t>(out.size()) < n * rows) {
    return absl::InvalidArgumentError(absl::StrCat("MatMulFixed output: ", out.size(),
                                                   " values for ", n, " x ", rows));
  }
  const DType type = w.dtype();
  const bool quantized = type == DType::kQ8_0 || type == DType::kQ4_0;
  if (!quantized && type != DType::kF32 && type != DType::kF16 && type != DType::kBF16) {
    return absl::UnimplementedError(
        absl::StrCat("cpu MatMulFixed does not support ", DTypeName(type), " weights"));
  }
  const cpu::KernelTable& k = *kernels_;
  const CpuBuffer& cx = Cpu(x);
  const int64_t nb = cols / kQK;
  // Activations in kernel form, exactly as MatMul prepares them.
  const CpuBuffer& cw = Cpu(w);
  const size_t x8_bytes = cw.q4x8() ? k.q4_0x8_act_bytes(nb) : 0;
  if (quantized) {
    fixed_act_q8_.resize(n * nb);
    fixed_act_q4x8_.resize(n * x8_bytes);
    for (int64_t i = 0; i < n; ++i) {
      k.quantize_act_q8(cx.f32(i), cols, &fixed_act_q8_[i * nb]);
      if (x8_bytes > 0) {
        k.prepare_q4_0x8_act(&fixed_act_q8_[i * nb], nb, &fixed_act_q4x8_[i * x8_bytes]);
      }
    }
  } else {
    fixed_act_scaled_.resize(n * cols);
    for (int64_t i = 0; i < n; ++i) {
      const float* xi = cx.f32(i);
      for (int64_t c = 0; c < cols; ++c) {
        fixed_act_scaled_[i * cols + c] = static_cast<double>(xi[c]) * cpu::kFixedScale;
      }
    }
  }
  int64_t* o = out.data();
  if (type == DType::kQ4_0) {
    // Blocks of rows through the multi-row dots, as in MatMulQuantized.
    const int64_t units = (rows + kRowUnit - 1) / kRowUnit;
    pool_.ParallelFor(units, [&](int64_t unit_begin, int64_t unit_end) {
      int64_t iv[kRowUnit];
      for (int64_t r = unit_begin * kRowUnit; r < std::min(rows, unit_end * kRowUnit);
           r += kRowUnit) {
        const int block = static_cast<int>(std::min<int64_t>(kRowUnit, rows - r));
        for (int64_t i = 0; i < n; ++i) {
          const cpu::ActBlockQ8* xa = &fixed_act_q8_[i * nb];
          if (x8_bytes > 0) {
            k.dot_q4_0x8_exact_rows(cw.row(r), cw.row_bytes(), block,
                                    &fixed_act_q4x8_[i * x8_bytes], xa, nb, iv);
          } else {
            k.dot_q4_0_exact_rows(cw.row(r), cw.row_bytes(), block, xa, nb, iv);
          }
          std::copy(iv, iv + block, o + i * rows + r);
        }
      }
    }, kRowUnit * n * cols / 2);
    return absl::OkStatus();
  }
  pool_.ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const void* wr = cw.row(r);
      for (int64_t i = 0; i < n; ++i) {
        const cpu::ActBlockQ8* xa = quantized ? &fixed_act_q8_[i * nb] : nullptr;
        const double* xs = quantized ? nullptr : &fixed_act_scaled_[i * cols];
        int64_t v;
        switch (type) {
          case DType::kQ8_0: v = k.dot_q8_0_exact(static_cast<const BlockQ8_0*>(wr), xa, nb); break;
          case DType::kF32: v = k.dot_f32_exact(static_cast<const float*>(wr), xs, cols); break;
          case DType::kF16: v = k.dot_f16_exact(static_cast<const uint16_t*>(wr), xs, cols); break;
          default: v = k.dot_bf16_exact(static_cast<const uint16_t*>(wr), xs, cols); break;
        }
        o[i * rows + r] = v;
      }
    }
  }, n * cols);
  return absl::OkStatus();
}

absl::Status CpuBackend::Embed(const Buffer& table, absl::Span<const int32_t> tokens,
                               Buffer* out) {
  const int64_t n = tokens.size();
  RETURN_IF_ERROR(CheckF32(*out, n, table.cols(), "Embed output"));
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= table.rows()) {
      return absl::OutOfRangeError(absl::StrCat("token id ", tokens[i], " outside the vocabulary of ",
                                                table.rows()));
    }
    const uint8_t* row = Cpu(table).row(tokens[i]);
    std::vector<BlockQ4_0> plain;
    if (Cpu(table).q4x8()) {
      plain.resize(table.cols() / kQK);
      cpu::UnpackQ4_0x8Row(Cpu(table).row(0), table.rows(), tokens[i], plain.size(), plain.data());
      row = reinterpret_cast<const uint8_t*>(plain.data());
    }
    RETURN_IF_ERROR(DequantizeRow(table.dtype(), row, table.cols(), Cpu(out).f32(i)));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::RmsNorm(const Buffer& x, const Buffer& weight, float eps, int64_t n,
                                 Buffer* out) {
  const int64_t d = x.cols();
  RETURN_IF_ERROR(CheckF32(x, n, d, "RmsNorm input"));
  RETURN_IF_ERROR(CheckF32(weight, 1, d, "RmsNorm weight"));
  RETURN_IF_ERROR(CheckF32(*out, n, d, "RmsNorm output"));
  const float* g = Cpu(weight).f32(0);
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = Cpu(x).f32(i);
    float* oi = Cpu(out).f32(i);
    const float ss = cpu::DotF32(xi, xi, d);
    const float scale = 1.0f / std::sqrt(ss / d + eps);
    for (int64_t j = 0; j < d; ++j) oi[j] = xi[j] * scale * g[j];
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Rope(const RopeParams& p, absl::Span<const int32_t> positions,
                              Buffer* x) {
  RETURN_IF_ERROR(CheckF32(*x, positions.size(), p.n_heads * p.head_dim, "Rope input"));
  const int64_t half = p.rope_dim / 2;
  std::vector<float> cos_all(positions.size() * half), sin_all(positions.size() * half);
  cpu::RopeTables(p.theta, p.rope_dim, positions.data(), positions.size(), cos_all.data(),
                  sin_all.data());
  for (size_t i = 0; i < positions.size(); ++i) {
    const float* cos_t = &cos_all[i * half];
    const float* sin_t = &sin_all[i * half];
    float* row = Cpu(x).f32(i);
    for (int64_t h = 0; h < p.n_heads; ++h) {
      float* v = row + h * p.head_dim;
      for (int64_t k = 0; k < half; ++k) {
        const int64_t a = p.layout == RopeLayout::kInterleaved ? 2 * k : k;
        const int64_t b = p.layout == RopeLayout::kInterleaved ? 2 * k + 1 : k + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cos_t[k] - x1 * sin_t[k];
        v[b] = x0 * sin_t[k] + x1 * cos_t[k];
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::StoreRows(const Buffer& src, absl::Span<const int32_t> rows,
                                   Buffer* dst) {
  RETURN_IF_ERROR(CheckF32(src, rows.size(), dst->cols(), "StoreRows source"));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= dst->rows()) {
      return absl::OutOfRangeError(absl::StrCat("StoreRows: row ", rows[i], " outside ", dst->rows()));
    }
    std::memcpy(Cpu(dst).f32(rows[i]), Cpu(src).f32(i), dst->cols() * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Attention(const AttentionShape& s, const Buffer& q,
                                   const Buffer& k_cache, const Buffer& v_cache,
                                   absl::Span<const int32_t> positions, Buffer* out) {
  const int64_t n = positions.size();
  const int64_t hd = s.head_dim;
  if (s.n_kv_heads <= 0 || s.n_heads <= 0 || (s.group == 0 && s.n_heads % s.n_kv_heads != 0)) {
    return absl::InvalidArgumentError("Attention: heads not a multiple of kv heads");
  }
  const int64_t group = s.group > 0 ? s.group : s.n_heads / s.n_kv_heads;
  // Local K/V head of local query head h.
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
  if (n == 0) return absl::OkStatus();
  for (int32_t p : positions) {
    if (p < 0 || p >= k_cache.rows()) return absl::OutOfRangeError("Attention: position outside cache");
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_.ParallelFor(n * s.n_heads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t i = job / s.n_heads, h = job % s.n_heads;
      const int64_t kvh = kv_head(h);
      const int64_t len = positions[i] + 1;
      scores.resize(len);
      cpu::AttendHead(Cpu(q).f32(i) + h * hd, Cpu(k_cache).f32(0) + kvh * hd,
                      Cpu(v_cache).f32(0) + kvh * hd, k_cache.cols(), len, hd, scale,
                      scores.data(), Cpu(out).f32(i) + h * hd);
    }
  }, 2 * hd * (positions.back() + 1));
  return absl::OkStatus();
}

absl::Status CpuBackend::SiluMul(const Buffer& gate, const Buffer& up, int64_t n, Buffer* out) {
  RETURN_IF_ERROR(CheckF32(gate, n, gate.cols(), "SiluMul gate"));
  RETURN_IF_ERROR(CheckF32(up, n, gate.cols(), "SiluMul up"));
  RETURN_IF_ERROR(CheckF32(*out, n, gate.cols(), "SiluMul output"));
  const int64_t cols = gate.cols();
  // Elementwise, so any split gives the same values.
  pool_.ParallelFor(n * cols, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end;) {
      const int64_t i = e / cols, j0 = e % cols, j1 = std::min(cols, j0 + (end - e));
      const float* g = Cpu(gate).f32(i);
      const float* u = Cpu(up).f32(i);
      float* o = Cpu(out).f32(i);
      for (int64_t j = j0; j < j1; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
      e += j1 - j0;
    }
  }, 16);
  return absl::OkStatus();
}

absl::Status CpuBackend::Add(const Buffer& x, int64_t n, Buffer* acc) {
  RETURN_IF_ERROR(CheckF32(x, n, acc->cols(), "Add input"));
  RETURN_IF_ERROR(CheckF32(*acc, n, x.cols(), "Add accumulator"));
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = Cpu(x).f32(i);
    float* ai = Cpu(acc).f32(i);
    for (int64_t j = 0; j < x.cols(); ++j) ai[j] += xi[j];
  }
  return absl::OkStatus();
}

namespace {
const Registrar<Backend, BackendOptions> kRegisterCpu(
    "cpu", [](const BackendOptions& opts) -> absl::StatusOr<std::unique_ptr<Backend>> {
      ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend, CpuBackend::Create(opts));
      return std::unique_ptr<Backend>(std::move(backend));
    });
}  // namespace

}  // namespace shardlm
