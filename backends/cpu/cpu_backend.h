// The "cpu" backend: host memory, a persistent thread pool, ops split across
// output rows. Weights alias the caller's (memory-mapped) bytes, except q4_0
// matrices on paths with q4_0x8 kernels (AVX-512): those are copied once,
// repacked, into huge-page memory of the same size.
// Results do not depend on the thread count: each output element is computed
// by one thread in a fixed order.
#ifndef SHARDLM_BACKENDS_CPU_CPU_BACKEND_H_
#define SHARDLM_BACKENDS_CPU_CPU_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "core/backend.h"

namespace shardlm {

// Scratch bytes that start on a 64-byte boundary: the q4_0x8 kernels read
// their prepared activations as whole cache lines, so a token's activations
// (a multiple of 64 bytes) occupy no more lines than they fill.
class LineAlignedBytes {
 public:
  void resize(size_t bytes) { lines_.resize((bytes + kLine - 1) / kLine); }
  uint8_t& operator[](size_t i) { return reinterpret_cast<uint8_t*>(lines_.data())[i]; }
  const uint8_t& operator[](size_t i) const {
    return reinterpret_cast<const uint8_t*>(lines_.data())[i];
  }

 private:
  static constexpr size_t kLine = 64;
  struct alignas(kLine) Line {
    uint8_t bytes[kLine];
  };
  std::vector<Line> lines_;
};

class CpuBackend : public Backend {
 public:
  // Fails when options.isa names a path this CPU or build lacks.
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const BackendOptions& options);

  std::string name() const override { return "cpu"; }
  bool SupportsWeightType(DType type) const override;
  int parallelism() const override { return pool_.size(); }
  std::string Describe() const override;
  Numerics numerics() const override { return numerics_; }

  absl::StatusOr<std::unique_ptr<Buffer>> CreateWeight(DType type, int64_t rows, int64_t cols,
                                                       const void* host) override;
  absl::StatusOr<std::unique_ptr<Buffer>> CreateActivation(int64_t rows, int64_t cols) override;
  absl::Status Write(absl::Span<const float> src, int64_t row, Buffer* dst) override;
  absl::Status Read(const Buffer& src, int64_t row, absl::Span<float> dst) override;

  absl::Status MatMul(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) override;
  // Quantized matrices of one type and width run as one job.
  absl::Status MatMulGroup(absl::Span<const Buffer* const> ws, const Buffer& x, int64_t n,
                           absl::Span<Buffer* const> outs) override;
  absl::Status MatMulFixed(const Buffer& w, const Buffer& x, int64_t n,
                           absl::Span<int64_t> out) override;
  absl::Status Embed(const Buffer& table, absl::Span<const int32_t> tokens, Buffer* out) override;
  absl::Status RmsNorm(const Buffer& x, const Buffer& weight, float eps, int64_t n,
                       Buffer* out) override;
  absl::Status Rope(const RopeParams& params, absl::Span<const int32_t> positions,
                    Buffer* x) override;
  absl::Status StoreRows(const Buffer& src, absl::Span<const int32_t> rows, Buffer* dst) override;
  absl::Status Attention(const AttentionShape& shape, const Buffer& q, const Buffer& k_cache,
                         const Buffer& v_cache, absl::Span<const int32_t> positions,
                         Buffer* out) override;
  absl::Status SiluMul(const Buffer& gate, const Buffer& up, int64_t n, Buffer* out) override;
  absl::Status Add(const Buffer& x, int64_t n, Buffer* acc) override;

 private:
  CpuBackend(const BackendOptions& options, const cpu::KernelTable* kernels);
  // Products against quantized weights (q8_0/q4_0, one type and width for
  // all of `ws`, checked by the caller) in one job, or float (f32/f16/bf16).
  void MatMulQuantized(absl::Span<const Buffer* const> ws, const Buffer& x, int64_t n,
                       absl::Span<Buffer* const> outs);
  // Rows [begin, end) of w's product for n tokens, from the activations
  // MatMulQuantized prepared (x8_bytes per token in the q4_0x8 form).
  void QuantizedRows(const Buffer& w, int64_t n, int64_t begin, int64_t end, size_t x8_bytes,
                     Buffer* out) const;
  void MatMulFloat(const Buffer& w, const Buffer& x, int64_t n, Buffer* out);

  const Numerics numerics_;
  const bool repack_;  // q4_0 matrices into the q4_0x8 layout when the path has kernels for it
  const cpu::KernelTable* const kernels_;
  ThreadPool pool_;
  // Per-call scratch for the activations in kernel form (ops run one at a time).
  std::vector<cpu::ActBlockQ8> act_q8_;
  LineAlignedBytes act_q4x8_;  // the q4_0x8 kernels' form of act_q8_
  std::vector<double> act_scaled_;
  // Scratch of MatMulFixed (kept apart from MatMul's).
  std::vector<cpu::ActBlockQ8> fixed_act_q8_;
  LineAlignedBytes fixed_act_q4x8_;
  std::vector<double> fixed_act_scaled_;
};

}  // namespace shardlm

#endif  // SHARDLM_BACKENDS_CPU_CPU_BACKEND_H_
