// Pieces the calibration steps share (sim/calibrate*.cc): progress lines,
// timed loops, and valid weight bytes to multiply with.
#ifndef SHARDLM_SIM_CALIBRATE_UTIL_H_
#define SHARDLM_SIM_CALIBRATE_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/cpu/cpu_backend.h"
#include "core/backend.h"
#include "core/dtype.h"
#include "core/huge_page_memory.h"
#include "sim/calibrate.h"
#include "sim/cost_model.pb.h"

namespace shardlm::sim {

// Hands `line` to the options' progress callback, if any.
void Say(const CalibrateOptions& o, const std::string& line);

// Runs `op` once to warm up, then until o.min_seconds have passed; the
// mean seconds per call. The first error stops it.
absl::StatusOr<double> TimeOp(const CalibrateOptions& o, const std::function<absl::Status()>& op);

// Bytes of a `rows` x `cols` matrix in `type` holding valid values (random
// quants, small scales): kernels take the same time as on real weights.
absl::StatusOr<std::vector<uint8_t>> WeightBytes(DType type, int64_t rows, int64_t cols);

// Runs ops[t] over and over on a thread of its own, all at once, until
// o.min_seconds have passed; the calls each made, and in `seconds` the time
// they took together. The first error stops it.
absl::StatusOr<std::vector<int64_t>> RunConcurrently(
    const CalibrateOptions& o, const std::vector<std::function<absl::Status()>>& ops,
    double* seconds);

// Columns of every MatrixSet matrix (llama3-1b's model width).
constexpr int64_t kSetCols = 2048;

// A layer's products (q, k, v, o, gate, up, down) as rows of kSetCols.
constexpr int64_t kLayerRows[] = {2048, 512, 512, 2048, 8192, 8192, 8192};

// kLayerRows repeated until they hold at least `mib` MiB of `type`.
absl::StatusOr<std::vector<int64_t>> LayerShapedRows(DType type, int64_t mib);

// Distinct weight matrices of kSetCols columns in huge pages (as a loaded
// model's are) on one backend, and the vectors to multiply them with.
class MatrixSet {
 public:
  // One matrix per entry of `rows`; `backend` must outlive the set.
  static absl::StatusOr<std::unique_ptr<MatrixSet>> Create(Backend* backend, DType type,
                                                           const std::vector<int64_t>& rows);
  // Product `i` (of products()), one token.
  absl::Status RunProduct(size_t i);
  // Every product once, in order.
  absl::Status RunOnce();
  double bytes() const { return bytes_; }
  size_t products() const { return weights_.size(); }

 private:
  explicit MatrixSet(Backend* backend) : backend_(backend) {}
  Backend* backend_;
  std::unique_ptr<HugePageMemory> memory_;  // declared first: outlives the weights
  std::unique_ptr<Buffer> x_;
  std::vector<std::unique_ptr<Buffer>> weights_, outs_;
  double bytes_ = 0;
};

// A CPU backend of one thread, fast numerics (what a node of the cost
// scenarios runs).
absl::StatusOr<std::unique_ptr<CpuBackend>> OneThreadBackend();

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_CALIBRATE_UTIL_H_
