#include "sim/calibrate_util.h"

#include <cstring>
#include <iterator>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace shardlm::sim {

void Say(const CalibrateOptions& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

absl::StatusOr<double> TimeOp(const CalibrateOptions& o, const std::function<absl::Status()>& op) {
  RETURN_IF_ERROR(op());  // warm-up
  int64_t calls = 0;
  const absl::Time start = o.clock->Now();
  absl::Duration elapsed;
  do {
    RETURN_IF_ERROR(op());
    ++calls;
    elapsed = o.clock->Now() - start;
  } while (absl::ToDoubleSeconds(elapsed) < o.min_seconds);
  return absl::ToDoubleSeconds(elapsed) / static_cast<double>(calls);
}

absl::StatusOr<std::vector<int64_t>> RunConcurrently(
    const CalibrateOptions& o, const std::vector<std::function<absl::Status()>>& ops,
    double* seconds) {
  const size_t n = ops.size();
  std::vector<int64_t> calls(n, 0);
  std::vector<absl::Status> status(n);
  const absl::Time start = o.clock->Now();
  const absl::Time end = start + absl::Seconds(o.min_seconds);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      while (status[t].ok() && o.clock->Now() < end) {
        status[t] = ops[t]();
        ++calls[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  *seconds = absl::ToDoubleSeconds(o.clock->Now() - start);
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  return calls;
}

absl::StatusOr<std::vector<uint8_t>> WeightBytes(DType type, int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(const uint64_t row, RowBytes(type, cols));
  std::vector<uint8_t> bytes(row * rows);
  std::mt19937_64 rng(7);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&bytes[i], &v, 8);
  }
  const uint16_t one = F32ToF16(0.01f);
  size_t block = 0;
  if (type == DType::kQ8_0) block = sizeof(BlockQ8_0);
  if (type == DType::kQ4_0) block = sizeof(BlockQ4_0);
  if (block > 0) {
    for (size_t i = 0; i + block <= bytes.size(); i += block) std::memcpy(&bytes[i], &one, 2);
  } else if (type == DType::kF16 || type == DType::kBF16) {
    const uint16_t h = type == DType::kF16 ? one : F32ToBF16(0.01f);
    for (size_t i = 0; i + 2 <= bytes.size(); i += 2) std::memcpy(&bytes[i], &h, 2);
  } else {
    const float f = 0.01f;
    for (size_t i = 0; i + 4 <= bytes.size(); i += 4) std::memcpy(&bytes[i], &f, 4);
  }
  return bytes;
}

absl::StatusOr<std::vector<int64_t>> LayerShapedRows(DType type, int64_t mib) {
  ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes(type, kSetCols));
  std::vector<int64_t> rows;
  int64_t bytes = 0;
  for (size_t i = 0; bytes < (mib << 20); ++i) {
    rows.push_back(kLayerRows[i % std::size(kLayerRows)]);
    bytes += rows.back() * static_cast<int64_t>(row_bytes);
  }
  return rows;
}

absl::StatusOr<std::unique_ptr<MatrixSet>> MatrixSet::Create(Backend* backend, DType type,
                                                             const std::vector<int64_t>& rows) {
  ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes(type, kSetCols));
  std::unique_ptr<MatrixSet> set(new MatrixSet(backend));
  for (const int64_t r : rows) set->bytes_ += static_cast<double>(r * row_bytes);
  set->memory_ = HugePageMemory::Allocate(static_cast<size_t>(set->bytes_));
  if (set->memory_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "calibrate: cannot allocate %.0f MiB of weights", set->bytes_ / 1048576));
  }
  ASSIGN_OR_RETURN(set->x_, backend->CreateActivation(1, kSetCols));
  RETURN_IF_ERROR(backend->Write(std::vector<float>(kSetCols, 0.5f), 0, set->x_.get()));
  std::map<int64_t, std::vector<uint8_t>> values;  // one matrix's bytes per size
  uint8_t* at = set->memory_->data();
  for (const int64_t r : rows) {
    if (values.count(r) == 0) {
      ASSIGN_OR_RETURN(values[r], WeightBytes(type, r, kSetCols));
    }
    std::memcpy(at, values[r].data(), values[r].size());
    ASSIGN_OR_RETURN(set->weights_.emplace_back(), backend->CreateWeight(type, r, kSetCols, at));
    ASSIGN_OR_RETURN(set->outs_.emplace_back(), backend->CreateActivation(1, r));
    at += values[r].size();
  }
  return set;
}

absl::Status MatrixSet::RunProduct(size_t i) {
  return backend_->MatMul(*weights_[i], *x_, 1, outs_[i].get());
}

absl::Status MatrixSet::RunOnce() {
  for (size_t i = 0; i < weights_.size(); ++i) RETURN_IF_ERROR(RunProduct(i));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CpuBackend>> OneThreadBackend() {
  BackendOptions options;
  options.threads = 1;
  options.numerics = Numerics::kFast;
  return CpuBackend::Create(options);
}

}  // namespace shardlm::sim
