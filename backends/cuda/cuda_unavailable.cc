// The stand-in for builds without --config=cuda: `--backend cuda` and the
// GPU bandwidth probe fail with one clear line instead of "no backend named
// 'cuda'".
#include <memory>

#include "backends/cuda/device_bandwidth.h"
#include "core/backend.h"

namespace shardlm {
namespace {

constexpr char kNoCuda[] = "this build has no CUDA backend; rebuild with --config=cuda";

const Registrar<Backend, BackendOptions> kRegisterCudaStub(
    "cuda", [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<Backend>> {
      return absl::FailedPreconditionError(kNoCuda);
    });

}  // namespace

namespace cuda {
absl::StatusOr<DeviceBandwidth> MeasureDeviceBandwidth(int) {
  return absl::FailedPreconditionError(kNoCuda);
}
}  // namespace cuda

}  // namespace shardlm
