// CUDA runtime plumbing for the backend: status conversion, device
// enumeration and memory info, RAII device memory and streams.
#ifndef SHARDLM_BACKENDS_CUDA_DEVICE_H_
#define SHARDLM_BACKENDS_CUDA_DEVICE_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shardlm::cuda {

// OK for cudaSuccess, else Internal("cuda: <what>: <error string>").
absl::Status CudaStatus(cudaError_t err, const char* what);

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  size_t total_bytes = 0;
  size_t free_bytes = 0;
  double peak_gb_per_s = 0;  // 2 x memory clock x bus width (DDR), 1e9 B/s
};

// Number of usable devices; FailedPrecondition("no usable CUDA device: ...")
// when the driver or a GPU is missing.
absl::StatusOr<int> DeviceCount();
// Properties and current memory use of device `ordinal`.
absl::StatusOr<DeviceInfo> GetDeviceInfo(int ordinal);
// Every device (empty list never: errors as DeviceCount).
absl::StatusOr<std::vector<DeviceInfo>> ListDevices();

// Owns cudaMalloc'd memory on the device current at allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // `bytes` of uninitialised device memory (nothing for 0).
  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes);
  // Grows to at least `bytes` (contents not kept).
  absl::Status Reserve(size_t bytes);

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t size() const { return bytes_; }

 private:
  void Release();
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Owns a non-blocking stream.
class Stream {
 public:
  Stream() = default;
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  static absl::StatusOr<std::unique_ptr<Stream>> Create();
  cudaStream_t get() const { return stream_; }
  // Waits for everything enqueued; the first asynchronous error, if any.
  absl::Status Synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace shardlm::cuda

#endif  // SHARDLM_BACKENDS_CUDA_DEVICE_H_
