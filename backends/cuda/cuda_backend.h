// The "cuda" backend: the Backend interface on one NVIDIA GPU. Weights are
// uploaded once at CreateWeight (quantized ones repacked, weight_layout.h);
// activations and KV caches live on the device, and Write/Read/MatMulFixed
// are the only host copies (plus the small index and RoPE tables each op
// needs). Every op runs on one stream, in order. Exact numerics reproduce
// the CPU backend bit for bit (numerics.h); fast numerics use float sums.
#ifndef SHARDLM_BACKENDS_CUDA_CUDA_BACKEND_H_
#define SHARDLM_BACKENDS_CUDA_CUDA_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels.h"
#include "core/backend.h"

namespace shardlm {

class CudaBackend : public Backend {
 public:
  // FailedPrecondition when no usable device is present, InvalidArgument
  // for a device ordinal that does not exist.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const BackendOptions& options);

  std::string name() const override { return "cuda"; }
  bool SupportsWeightType(DType type) const override;
  int parallelism() const override { return 1; }  // one stream
  std::string Describe() const override;
  Numerics numerics() const override { return numerics_; }

  absl::StatusOr<std::unique_ptr<Buffer>> CreateWeight(DType type, int64_t rows, int64_t cols,
                                                       const void* host) override;
  absl::StatusOr<std::unique_ptr<Buffer>> CreateActivation(int64_t rows, int64_t cols) override;
  absl::Status Write(absl::Span<const float> src, int64_t row, Buffer* dst) override;
  absl::Status Read(const Buffer& src, int64_t row, absl::Span<float> dst) override;
  absl::Status MatMul(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) override;
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

  // The device this backend computes on.
  const cuda::DeviceInfo& device_info() const { return info_; }
  // Waits for all enqueued work; the first asynchronous error, if any.
  absl::Status Synchronize();

 private:
  CudaBackend(const BackendOptions& options, cuda::DeviceInfo info,
              std::unique_ptr<cuda::Stream> stream);
  // Makes this backend's device current on the calling thread.
  absl::Status Activate() const;
  // Grows a scratch buffer (after the stream drains, as work may use it).
  absl::Status Scratch(cuda::DeviceBuffer* buf, size_t bytes);
  // Copies host values into a scratch buffer (stream-ordered).
  template <typename T>
  absl::Status Upload(absl::Span<const T> host, cuda::DeviceBuffer* buf);
  // Upload unless `buf` already holds `host` (*cache: what it holds); the
  // layers of one forward step share positions and RoPE tables.
  absl::Status UploadIndices(absl::Span<const int32_t> host, cuda::DeviceBuffer* buf,
                             std::vector<int32_t>* cache);
  // Uploads the RoPE tables of `positions` unless already there.
  absl::Status UploadRopeTables(const RopeParams& p, absl::Span<const int32_t> positions);
  // Quantizes x's first n rows into act_d_/act_qs_ (quantized weights).
  absl::StatusOr<cuda::ActQ8View> QuantizeAct(const Buffer& x, int64_t n);
  // MatMul into `out` and/or `fixed` (exact totals, device).
  absl::Status RunMatMul(const Buffer& w, const Buffer& x, int64_t n, bool exact, float* out,
                         int64_t* fixed);

  Numerics numerics_;
  cuda::DeviceInfo info_;
  std::unique_ptr<cuda::Stream> stream_;
  cuda::DeviceBuffer act_d_, act_qs_, fixed_, scores_;
  cuda::DeviceBuffer tokens_, positions_, rows_, rope_cos_, rope_sin_;
  std::vector<int32_t> positions_held_, rows_held_, rope_positions_held_;
  double rope_theta_held_ = 0;
  int64_t rope_dim_held_ = -1;
  std::vector<float> host_cos_, host_sin_;
};

}  // namespace shardlm

#endif  // SHARDLM_BACKENDS_CUDA_CUDA_BACKEND_H_
