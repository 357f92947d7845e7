#include "backends/cuda/device_bandwidth.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernels.h"
#include "core/status_macros.h"

namespace shardlm::cuda {

absl::StatusOr<DeviceBandwidth> MeasureDeviceBandwidth(int ordinal) {
  ASSIGN_OR_RETURN(const DeviceInfo info, GetDeviceInfo(ordinal));
  RETURN_IF_ERROR(CudaStatus(cudaSetDevice(ordinal), "cudaSetDevice"));
  const size_t bytes = std::min<size_t>(size_t{1} << 30, info.free_bytes / 4) & ~size_t{15};
  ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::Allocate(bytes));
  ASSIGN_OR_RETURN(DeviceBuffer sink, DeviceBuffer::Allocate(sizeof(uint32_t)));
  ASSIGN_OR_RETURN(std::unique_ptr<Stream> stream, Stream::Create());
  RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(buf.get(), 1, bytes, stream->get()), "memset"));
  cudaEvent_t start, stop;
  RETURN_IF_ERROR(CudaStatus(cudaEventCreate(&start), "cudaEventCreate"));
  RETURN_IF_ERROR(CudaStatus(cudaEventCreate(&stop), "cudaEventCreate"));
  double best_s = 0;
  absl::Status status;
  for (int pass = 0; pass < 6 && status.ok(); ++pass) {  // pass 0 warms up
    status.Update(CudaStatus(cudaEventRecord(start, stream->get()), "cudaEventRecord"));
    status.Update(CudaStatus(LaunchReadProbe(buf.get(), bytes / 16, sink.as<uint32_t>(),
                                             stream->get()),
                             "read probe"));
    status.Update(CudaStatus(cudaEventRecord(stop, stream->get()), "cudaEventRecord"));
    status.Update(CudaStatus(cudaEventSynchronize(stop), "read probe"));
    float ms = 0;
    status.Update(CudaStatus(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"));
    if (status.ok() && pass > 0 && ms > 0 && (best_s == 0 || ms / 1e3 < best_s)) best_s = ms / 1e3;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  RETURN_IF_ERROR(status);
  DeviceBandwidth r;
  r.device = absl::StrCat("cuda:", ordinal, " (", info.name, ")");
  r.measured_gb_per_s = best_s > 0 ? bytes / best_s / 1e9 : 0;
  r.peak_gb_per_s = info.peak_gb_per_s;
  return r;
}

}  // namespace shardlm::cuda
