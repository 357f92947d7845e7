// Host entry points of the CUDA kernels (kernels_*.cu). Each enqueues its
// kernel(s) on `stream` and returns the launch error (cudaSuccess if none);
// sizes are validated by the caller (cuda_backend.cc). Pointers are device
// pointers unless named host_*. Exact numerics reproduce the CPU backend bit
// for bit (see numerics.h and backends/cpu/kernels.h); fast numerics use
// float accumulation and tree reductions.
#ifndef SHARDLM_BACKENDS_CUDA_KERNELS_H_
#define SHARDLM_BACKENDS_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// Weight element types the kernels take.
enum class WeightKind { kF32, kF16, kBF16, kQ8_0, kQ4_0 };

// A weight matrix in the device layout of weight_layout.h.
struct WeightView {
  WeightKind kind = WeightKind::kF32;
  const uint8_t* data = nullptr;  // float types: rows x cols; quantized: quants
  const uint16_t* scales = nullptr;  // quantized: rows x nb f16 scales
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t nb = 0;  // quantized: blocks per row
};

// Q8 activation blocks of n rows: d[i * nb + b] and qs[(i * nb + b) * 32 + k].
struct ActQ8View {
  const float* d = nullptr;
  const int8_t* qs = nullptr;
  int64_t nb = 0;
};

// Copies the 32-entry GlibcExpf table to the current device's constant
// memory (once per device, before any kernel using exp).
cudaError_t UploadExpTable(const uint64_t* host_table);

// Quantizes rows 0..n-1 of x (row stride x_stride floats, cols = 32 * nb)
// into Q8 blocks exactly as cpu::QuantizeActQ8.
cudaError_t LaunchQuantizeActQ8(const float* x, int64_t x_stride, int64_t n, int64_t nb,
                                float* d, int8_t* qs, cudaStream_t stream);

// out[i * out_stride + r] = row r of w . token i, for i < n; quantized
// weights take `act` (QuantizeActQ8 of x), float weights x directly (row
// stride x_stride). `out` may be null; `fixed` (may be null) receives the
// int64 totals at [i * w.rows + r] and requires exact.
cudaError_t LaunchMatMul(const WeightView& w, const ActQ8View& act, const float* x,
                         int64_t x_stride, int64_t n, bool exact, float* out, int64_t out_stride,
                         int64_t* fixed, cudaStream_t stream);

// out[i, :] = dequantized table row tokens[i] (cols = w.cols), i < n.
cudaError_t LaunchEmbed(const WeightView& table, const int32_t* tokens, int64_t n, float* out,
                        cudaStream_t stream);

// out[i, :] = x[i, :] * (1 / sqrt(ss / d + eps)) * g for i < n; exact: ss as
// cpu::DotF32 (8 ordered lanes), fast: a tree sum.
cudaError_t LaunchRmsNorm(const float* x, const float* g, float eps, int64_t n, int64_t d,
                          bool exact, float* out, cudaStream_t stream);

// Rotates n rows of x (row stride `cols`) with per-row tables cos/sin
// (n x half, half = rope_dim / 2) as CpuBackend::Rope does.
cudaError_t LaunchRope(float* x, int64_t cols, const float* cos_t, const float* sin_t, int64_t n,
                       int64_t n_heads, int64_t head_dim, int64_t half, bool interleaved,
                       cudaStream_t stream);

// dst[rows[i], :] = src[i, :] for i < n (cols floats per row).
cudaError_t LaunchStoreRows(const float* src, const int32_t* rows, int64_t n, int64_t cols,
                            float* dst, cudaStream_t stream);

// Grouped-query causal attention, one block per (token, head), each exactly
// cpu::AttendHead. `scores` holds n * n_heads * score_stride floats
// (score_stride >= max position + 1).
struct AttentionArgs {
  const float* q = nullptr;  // n x (n_heads * head_dim)
  const float* k = nullptr;  // cache rows x kv_stride
  const float* v = nullptr;
  float* out = nullptr;  // n x (n_heads * head_dim)
  const int32_t* positions = nullptr;
  float* scores = nullptr;
  int64_t n = 0;
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t kv_stride = 0;  // floats per cache row
  int64_t group = 1;
  int64_t q_head_offset = 0;
  int64_t kv_head_offset = 0;
  int64_t score_stride = 0;
  float scale = 1.0f;
  bool exact = true;
};
cudaError_t LaunchAttention(const AttentionArgs& args, cudaStream_t stream);

// out = gate / (1 + exp(-gate)) * up over `count` floats.
cudaError_t LaunchSiluMul(const float* gate, const float* up, int64_t count, float* out,
                          cudaStream_t stream);

// acc += x over `count` floats.
cudaError_t LaunchAdd(const float* x, int64_t count, float* acc, cudaStream_t stream);

// Reads `count` 16-byte words of src (sink receives a value that depends on
// all of them, so the reads cannot be elided): the bandwidth probe.
cudaError_t LaunchReadProbe(const void* src, int64_t count, uint32_t* sink, cudaStream_t stream);

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_KERNELS_H_
