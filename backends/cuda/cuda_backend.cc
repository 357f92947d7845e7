#include "backends/cuda/cuda_backend.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cuda/cuda_buffer.h"
#include "backends/cuda/exp_table.h"
#include "backends/cuda/weight_layout.h"
#include "core/status_macros.h"

namespace shardlm {
using cuda::CudaStatus;

CudaBackend::CudaBackend(const BackendOptions& options, cuda::DeviceInfo info,
                         std::unique_ptr<cuda::Stream> stream)
    : numerics_(options.numerics), info_(std::move(info)), stream_(std::move(stream)) {}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const BackendOptions& options) {
  absl::StatusOr<cuda::DeviceInfo> info = cuda::GetDeviceInfo(options.device);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("cuda backend: ", info.status().message()));
  }
  if (info->cc_major < 8) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cuda backend: %s has compute capability %d.%d; this build needs 8.0 or newer",
        info->name, info->cc_major, info->cc_minor));
  }
  RETURN_IF_ERROR(CudaStatus(cudaSetDevice(options.device), "cudaSetDevice"));
  RETURN_IF_ERROR(CudaStatus(cuda::UploadExpTable(cuda::ExpTable().data()), "exp table upload"));
  ASSIGN_OR_RETURN(std::unique_ptr<cuda::Stream> stream, cuda::Stream::Create());
  return std::unique_ptr<CudaBackend>(new CudaBackend(options, *std::move(info),
                                                      std::move(stream)));
}

std::string CudaBackend::Describe() const {
  return absl::StrFormat("cuda:%d: %s, sm_%d%d, %d SMs, %.1f GiB, %s numerics", info_.ordinal,
                         info_.name, info_.cc_major, info_.cc_minor, info_.sm_count,
                         info_.total_bytes / 1073741824.0, NumericsName(numerics_));
}

bool CudaBackend::SupportsWeightType(DType type) const {
  return type == DType::kF32 || type == DType::kF16 || type == DType::kBF16 ||
         type == DType::kQ8_0 || type == DType::kQ4_0;
}

absl::Status CudaBackend::Activate() const {
  return CudaStatus(cudaSetDevice(info_.ordinal), "cudaSetDevice");
}

absl::Status CudaBackend::Synchronize() {
  RETURN_IF_ERROR(Activate());
  return stream_->Synchronize();
}

absl::Status CudaBackend::Scratch(cuda::DeviceBuffer* buf, size_t bytes) {
  if (bytes <= buf->size()) return absl::OkStatus();
  RETURN_IF_ERROR(stream_->Synchronize());
  return buf->Reserve(bytes);
}

template <typename T>
absl::Status CudaBackend::Upload(absl::Span<const T> host, cuda::DeviceBuffer* buf) {
  const size_t bytes = host.size() * sizeof(T);
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(Scratch(buf, bytes));
  // Pageable source: the copy is staged before this returns.
  return CudaStatus(cudaMemcpyAsync(buf->get(), host.data(), bytes, cudaMemcpyHostToDevice,
                                    stream_->get()),
                    "host to device copy");
}

template absl::Status CudaBackend::Upload<float>(absl::Span<const float>, cuda::DeviceBuffer*);
template absl::Status CudaBackend::Upload<int32_t>(absl::Span<const int32_t>,
                                                   cuda::DeviceBuffer*);

absl::StatusOr<std::unique_ptr<Buffer>> CudaBackend::CreateWeight(DType type, int64_t rows,
                                                                  int64_t cols,
                                                                  const void* host) {
  if (!SupportsWeightType(type)) {
    return absl::UnimplementedError(
        absl::StrCat("cuda backend does not support ", DTypeName(type), " weights"));
  }
  RETURN_IF_ERROR(Activate());
  ASSIGN_OR_RETURN(const cuda::WeightLayout layout, cuda::MakeWeightLayout(type, rows, cols));
  ASSIGN_OR_RETURN(cuda::DeviceBuffer mem, cuda::DeviceBuffer::Allocate(layout.total_bytes));
  if (layout.total_bytes > 0) {
    const void* src = host;
    std::vector<uint8_t> packed;
    if (layout.quantized) {
      packed.resize(layout.total_bytes);
      cuda::PackWeight(layout, host, packed.data());
      src = packed.data();
    }
    RETURN_IF_ERROR(CudaStatus(cudaMemcpy(mem.get(), src, layout.total_bytes,
                                          cudaMemcpyHostToDevice),
                               "weight upload"));
  }
  return std::unique_ptr<Buffer>(new cuda::CudaBuffer(layout, std::move(mem), info_.ordinal));
}

absl::StatusOr<std::unique_ptr<Buffer>> CudaBackend::CreateActivation(int64_t rows,
                                                                      int64_t cols) {
  if (rows <= 0 || cols <= 0) return absl::InvalidArgumentError("empty activation buffer");
  RETURN_IF_ERROR(Activate());
  ASSIGN_OR_RETURN(const cuda::WeightLayout layout,
                   cuda::MakeWeightLayout(DType::kF32, rows, cols));
  ASSIGN_OR_RETURN(cuda::DeviceBuffer mem, cuda::DeviceBuffer::Allocate(layout.total_bytes));
  RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(mem.get(), 0, layout.total_bytes, stream_->get()),
                             "cudaMemsetAsync"));
  return std::unique_ptr<Buffer>(new cuda::CudaBuffer(layout, std::move(mem), info_.ordinal));
}

absl::Status CudaBackend::Write(absl::Span<const float> src, int64_t row, Buffer* dst) {
  ASSIGN_OR_RETURN(const cuda::CudaBuffer* d, cuda::Own(*dst, info_.ordinal));
  if (dst->dtype() != DType::kF32 || src.size() % dst->cols() != 0 || row < 0 ||
      row + static_cast<int64_t>(src.size()) / dst->cols() > dst->rows()) {
    return absl::InvalidArgumentError("Write: out of range");
  }
  if (src.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(d->f32() + row * dst->cols(), src.data(),
                                             src.size() * sizeof(float), cudaMemcpyHostToDevice,
                                             stream_->get()),
                             "Write"));
  return stream_->Synchronize();
}

absl::Status CudaBackend::Read(const Buffer& src, int64_t row, absl::Span<float> dst) {
  ASSIGN_OR_RETURN(const cuda::CudaBuffer* s, cuda::Own(src, info_.ordinal));
  if (src.dtype() != DType::kF32 || dst.size() % src.cols() != 0 || row < 0 ||
      row + static_cast<int64_t>(dst.size()) / src.cols() > src.rows()) {
    return absl::InvalidArgumentError("Read: out of range");
  }
  if (dst.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(dst.data(), s->f32() + row * src.cols(),
                                             dst.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                             stream_->get()),
                             "Read"));
  return stream_->Synchronize();
}

}  // namespace shardlm
