// The device buffers of the cuda backend (internal to backends/cuda).
#ifndef SHARDLM_BACKENDS_CUDA_CUDA_BUFFER_H_
#define SHARDLM_BACKENDS_CUDA_CUDA_BUFFER_H_

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_layout.h"
#include "core/backend.h"

namespace shardlm::cuda {

// A weight (device layout of weight_layout.h) or an F32 activation.
class CudaBuffer : public Buffer {
 public:
  CudaBuffer(const WeightLayout& layout, DeviceBuffer mem, int device)
      : Buffer(layout.type, layout.rows, layout.cols),
        layout_(layout),
        mem_(std::move(mem)),
        device_(device) {}

  std::string device() const override { return absl::StrCat("cuda:", device_); }
  int ordinal() const { return device_; }
  float* f32() const { return mem_.as<float>(); }
  const uint8_t* bytes() const { return mem_.as<uint8_t>(); }

  WeightView view() const {
    WeightView v;
    switch (dtype()) {
      case DType::kF16: v.kind = WeightKind::kF16; break;
      case DType::kBF16: v.kind = WeightKind::kBF16; break;
      case DType::kQ8_0: v.kind = WeightKind::kQ8_0; break;
      case DType::kQ4_0: v.kind = WeightKind::kQ4_0; break;
      default: v.kind = WeightKind::kF32; break;
    }
    v.data = bytes();
    v.scales = layout_.quantized
                   ? reinterpret_cast<const uint16_t*>(bytes() + layout_.scale_offset)
                   : nullptr;
    v.rows = rows();
    v.cols = cols();
    v.nb = layout_.nb;
    return v;
  }

 private:
  WeightLayout layout_;
  DeviceBuffer mem_;
  int device_;
};

// InvalidArgument unless b is F32 with >= min_rows rows of `cols`.
inline absl::Status CheckF32(const Buffer& b, int64_t min_rows, int64_t cols, const char* what) {
  if (b.dtype() != DType::kF32 || b.rows() < min_rows || b.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": expected an f32 buffer of at least ", min_rows, " x ", cols, ", got ",
        DTypeName(b.dtype()), " ", b.rows(), " x ", b.cols()));
  }
  return absl::OkStatus();
}

inline bool IsQuantized(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0; }

// `b` as a buffer of the cuda backend on device `ordinal`, or
// InvalidArgument for another backend's (or device's) buffer.
inline absl::StatusOr<const CudaBuffer*> Own(const Buffer& b, int ordinal) {
  const CudaBuffer* c = dynamic_cast<const CudaBuffer*>(&b);
  if (c == nullptr || c->ordinal() != ordinal) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda backend: buffer on ", b.device(), " is not on cuda:", ordinal));
  }
  return c;
}

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_CUDA_BUFFER_H_
