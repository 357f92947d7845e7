// Backend: the compute plugin. Owns device memory (Buffers) and runs the ops
// of a llama-family forward pass. Registered by name ("cpu", "cuda") in
// BackendRegistry; the engine only uses this interface and asks what the
// backend supports instead of assuming.
#ifndef SHARDLM_CORE_BACKEND_H_
#define SHARDLM_CORE_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/model_config.h"
#include "core/registry.h"

namespace shardlm {

// A 2-D row-major tensor (`rows` x `cols` elements of `dtype`) in one
// backend's memory. Only the backend that made it may use it.
class Buffer {
 public:
  Buffer(DType dtype, int64_t rows, int64_t cols) : dtype_(dtype), rows_(rows), cols_(cols) {}
  virtual ~Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  DType dtype() const { return dtype_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Device the memory lives on ("cpu", "cuda:0").
  virtual std::string device() const = 0;

 private:
  DType dtype_;
  int64_t rows_;
  int64_t cols_;
};

// How matrix products accumulate (architecture.md, "Numerics contract").
enum class Numerics {
  // Every product term is rounded onto a fixed-point grid (int64, 2^-30)
  // and integers are added: results are bit-identical for any split of the
  // sum, thread count, ISA path, batch size or node count.
  kExact,
  // Fastest float accumulation; agrees with kExact to float precision.
  kFast,
};

// Exact-numerics fixed point: a product total in units of 2^-30 back to
// float (the conversion every backend's kExact MatMul applies to its int64
// row sums, e.g. cpu::FromFixed).
inline float FixedToFloat(int64_t sum) {
  return static_cast<float>(static_cast<double>(sum) * (1.0 / 1073741824.0));
}

// "exact" / "fast".
inline const char* NumericsName(Numerics numerics) {
  return numerics == Numerics::kExact ? "exact" : "fast";
}

// Parses "exact" / "fast"; InvalidArgument otherwise.
inline absl::StatusOr<Numerics> ParseNumerics(const std::string& name) {
  if (name == "exact") return Numerics::kExact;
  if (name == "fast") return Numerics::kFast;
  return absl::InvalidArgumentError("--numerics must be 'exact' or 'fast', got '" + name + "'");
}

struct BackendOptions {
  int threads = 0;  // 0: one per available core
  int device = 0;   // GPU ordinal for GPU backends
  Numerics numerics = Numerics::kExact;
  // Instruction-set path for CPU kernels: "auto" (best the CPU supports),
  // "avx512", "avx2" or "scalar". Asking for one the CPU lacks is an error.
  std::string isa = "auto";
  // CPU: copy q4_0 matrices once into the layout the kernel path streams
  // fastest (AVX-512), at the cost of a second copy of those weights in
  // RAM; false keeps every weight where the model file has it.
  bool repack = true;
};

// Shape of grouped-query attention over a KV cache. The buffers may hold a
// slice of the model's heads (tensor parallelism): local query head i uses
// local K/V head (q_head_offset + i) / group - kv_head_offset.
struct AttentionShape {
  int64_t n_heads = 0;     // query heads in `q`
  int64_t n_kv_heads = 0;  // K/V heads in the caches
  int64_t head_dim = 0;
  // Query heads per K/V head in the whole model; 0 means n_heads / n_kv_heads
  // (then n_heads % n_kv_heads == 0).
  int64_t group = 0;
  int64_t q_head_offset = 0;   // global index of q's first head
  int64_t kv_head_offset = 0;  // global index of the caches' first K/V head
};

// Rotary embedding parameters.
struct RopeParams {
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t rope_dim = 0;  // leading dims of each head that rotate
  double theta = 10000.0;
  RopeLayout layout = RopeLayout::kInterleaved;
};

class Backend {
 public:
  static constexpr const char* kPluginKind = "backend";
  virtual ~Backend() = default;

  virtual std::string name() const = 0;
  // Whether MatMul/Embed accept weights of `type`.
  virtual bool SupportsWeightType(DType type) const = 0;
  // Threads (CPU) or streams the backend computes with; for --stats.
  virtual int parallelism() const = 0;
  // One line for logs and --stats ("cpu: avx512, 2 threads, exact numerics").
  virtual std::string Describe() const = 0;
  // How this backend's matrix products accumulate.
  virtual Numerics numerics() const = 0;

  // A weight matrix of `rows` x `cols` in `type` from host bytes laid out as
  // GGUF stores them (row-major, each row RowBytes(type, cols)). `host` must
  // stay valid for the Backend's lifetime: a host backend may alias it.
  virtual absl::StatusOr<std::unique_ptr<Buffer>> CreateWeight(DType type, int64_t rows,
                                                               int64_t cols, const void* host) = 0;
  // A zero-filled F32 activation buffer.
  virtual absl::StatusOr<std::unique_ptr<Buffer>> CreateActivation(int64_t rows,
                                                                   int64_t cols) = 0;
  // Host <-> device copies of whole F32 rows starting at `row`.
  virtual absl::Status Write(absl::Span<const float> src, int64_t row, Buffer* dst) = 0;
  virtual absl::Status Read(const Buffer& src, int64_t row, absl::Span<float> dst) = 0;

  // out[i, r] = sum_c w[r, c] * x[i, c] for the first `n` rows of x.
  virtual absl::Status MatMul(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) = 0;
  // Several products of one input: MatMul(*ws[i], x, n, outs[i]) for each
  // i, with the same results, which a backend may run as one job (one
  // start and one activation conversion instead of several). InvalidArgument
  // when the spans differ in size.
  virtual absl::Status MatMulGroup(absl::Span<const Buffer* const> ws, const Buffer& x, int64_t n,
                                   absl::Span<Buffer* const> outs) {
    if (ws.size() != outs.size()) {
      return absl::InvalidArgumentError("MatMulGroup: as many outputs as weights needed");
    }
    for (size_t i = 0; i < ws.size(); ++i) {
      absl::Status s = MatMul(*ws[i], x, n, outs[i]);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  // The exact-numerics totals of MatMul before conversion to float:
  // out[i * w.rows() + r] is the int64 fixed-point (2^-30) sum of row r
  // against x's row i, so that FromFixed(out[...]) is what MatMul gives in
  // exact numerics. Totals of column slices add up (as integers) to the
  // total of the whole row. `out` holds at least n * w.rows() values.
  virtual absl::Status MatMulFixed(const Buffer& w, const Buffer& x, int64_t n,
                                   absl::Span<int64_t> out) = 0;
  // out[i, :] = table[tokens[i], :] as F32.
  virtual absl::Status Embed(const Buffer& table, absl::Span<const int32_t> tokens,
                             Buffer* out) = 0;
  // out[i, :] = x[i, :] / rms(x[i, :]) * weight for the first `n` rows.
  virtual absl::Status RmsNorm(const Buffer& x, const Buffer& weight, float eps, int64_t n,
                               Buffer* out) = 0;
  // Rotates each head of x's first positions.size() rows by its position.
  virtual absl::Status Rope(const RopeParams& params, absl::Span<const int32_t> positions,
                            Buffer* x) = 0;
  // dst[rows[i], :] = src[i, :].
  virtual absl::Status StoreRows(const Buffer& src, absl::Span<const int32_t> rows,
                                 Buffer* dst) = 0;
  // Causal attention: row i of q (at position positions[i]) attends to cache
  // rows 0..positions[i]; out has n_heads * head_dim columns.
  virtual absl::Status Attention(const AttentionShape& shape, const Buffer& q,
                                 const Buffer& k_cache, const Buffer& v_cache,
                                 absl::Span<const int32_t> positions, Buffer* out) = 0;
  // out = silu(gate) * up, elementwise over the first `n` rows.
  virtual absl::Status SiluMul(const Buffer& gate, const Buffer& up, int64_t n, Buffer* out) = 0;
  // acc += x over the first `n` rows.
  virtual absl::Status Add(const Buffer& x, int64_t n, Buffer* acc) = 0;
};

using BackendRegistry = Registry<Backend, BackendOptions>;

// Creates the backend registered as `name`.
inline absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                              const BackendOptions& opts) {
  return BackendRegistry::Global().Create(name, opts);
}

}  // namespace shardlm

#endif  // SHARDLM_CORE_BACKEND_H_
