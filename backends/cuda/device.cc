#include "backends/cuda/device.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace shardlm::cuda {

absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cuda: ", what, ": ", cudaGetErrorString(err)));
}

absl::StatusOr<int> DeviceCount() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the (non-sticky) error
    return absl::FailedPreconditionError(
        absl::StrCat("no usable CUDA device: ", cudaGetErrorString(err)));
  }
  if (count == 0) return absl::FailedPreconditionError("no usable CUDA device: none found");
  return count;
}

absl::StatusOr<DeviceInfo> GetDeviceInfo(int ordinal) {
  absl::StatusOr<int> count = DeviceCount();
  if (!count.ok()) return count.status();
  if (ordinal < 0 || ordinal >= *count) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", ordinal, " does not exist (", *count, " found)"));
  }
  DeviceInfo info;
  info.ordinal = ordinal;
  cudaDeviceProp prop;
  absl::Status s = CudaStatus(cudaGetDeviceProperties(&prop, ordinal), "cudaGetDeviceProperties");
  if (!s.ok()) return s;
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, ordinal) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal) == cudaSuccess) {
    info.peak_gb_per_s = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  }
  cudaGetLastError();
  int current = 0;
  s = CudaStatus(cudaGetDevice(&current), "cudaGetDevice");
  if (!s.ok()) return s;
  s = CudaStatus(cudaSetDevice(ordinal), "cudaSetDevice");
  if (!s.ok()) return s;
  s = CudaStatus(cudaMemGetInfo(&info.free_bytes, &info.total_bytes), "cudaMemGetInfo");
  cudaSetDevice(current);
  if (!s.ok()) return s;
  return info;
}

absl::StatusOr<std::vector<DeviceInfo>> ListDevices() {
  absl::StatusOr<int> count = DeviceCount();
  if (!count.ok()) return count.status();
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < *count; ++i) {
    absl::StatusOr<DeviceInfo> info = GetDeviceInfo(i);
    if (!info.ok()) return info.status();
    devices.push_back(std::move(*info));
  }
  return devices;
}

DeviceBuffer::~DeviceBuffer() { Release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::Release() {
  if (ptr_ != nullptr) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes == 0) return b;
  const cudaError_t err = cudaMalloc(&b.ptr_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    b.ptr_ = nullptr;
    return absl::ResourceExhaustedError(absl::StrCat("cuda: cannot allocate ", bytes,
                                                     " bytes: ", cudaGetErrorString(err)));
  }
  b.bytes_ = bytes;
  return b;
}

absl::Status DeviceBuffer::Reserve(size_t bytes) {
  if (bytes <= bytes_) return absl::OkStatus();
  Release();
  absl::StatusOr<DeviceBuffer> grown = Allocate(bytes);
  if (!grown.ok()) return grown.status();
  *this = std::move(*grown);
  return absl::OkStatus();
}

Stream::~Stream() {
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::StatusOr<std::unique_ptr<Stream>> Stream::Create() {
  auto s = std::make_unique<Stream>();
  absl::Status st = CudaStatus(cudaStreamCreateWithFlags(&s->stream_, cudaStreamNonBlocking),
                               "cudaStreamCreate");
  if (!st.ok()) return st;
  return s;
}

absl::Status Stream::Synchronize() const {
  return CudaStatus(cudaStreamSynchronize(stream_), "kernel execution");
}

}  // namespace shardlm::cuda
