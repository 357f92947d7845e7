#include "sim/calibrate.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/memory_bandwidth.h"
#include "core/dtype.h"
#include "core/median.h"
#include "core/sha256.h"
#include "core/status_macros.h"
#include "sim/calibrate_util.h"

namespace shardlm::sim {
namespace {

constexpr int64_t kCols = 4096;
constexpr int64_t kPrefillRows = 1024;
constexpr int64_t kPrefillBatch = 64;
// Attention: query heads at this position over their K/V cache.
constexpr int64_t kAttentionPosition = 1023;
constexpr int64_t kAttentionHeads = 8;
constexpr int64_t kHeadDim = 128;

// Aggregate weight bytes (x tokens) per second of `threads` kernels (one
// thread each, own matrix, `batch` tokens) running at once: what one host
// gives the nodes it runs. Decode matrices are o.decode_matrix_mib MiB,
// prefill ones kPrefillRows rows.
absl::StatusOr<double> MeasureConcurrent(const CalibrateOptions& o, DType type, int threads,
                                         int64_t batch) {
  ASSIGN_OR_RETURN(const uint64_t row, RowBytes(type, kCols));
  const int64_t decode_bytes = o.decode_matrix_mib << 20;
  const int64_t rows = batch == 1 ? std::max<int64_t>(1, decode_bytes / static_cast<int64_t>(row))
                                  : kPrefillRows;
  ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes, WeightBytes(type, rows, kCols));
  std::vector<std::unique_ptr<CpuBackend>> backends;
  std::vector<std::vector<uint8_t>> copies(threads, bytes);
  std::vector<std::unique_ptr<Buffer>> w, x, out;
  BackendOptions options;
  options.threads = 1;
  options.numerics = Numerics::kFast;
  for (int t = 0; t < threads; ++t) {
    ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> b, CpuBackend::Create(options));
    ASSIGN_OR_RETURN(w.emplace_back(), b->CreateWeight(type, rows, kCols, copies[t].data()));
    ASSIGN_OR_RETURN(x.emplace_back(), b->CreateActivation(batch, kCols));
    ASSIGN_OR_RETURN(out.emplace_back(), b->CreateActivation(batch, rows));
    RETURN_IF_ERROR(b->MatMul(*w[t], *x[t], batch, out[t].get()));  // pages in
    backends.push_back(std::move(b));
  }
  std::vector<std::function<absl::Status()>> ops;
  for (int t = 0; t < threads; ++t) {
    ops.push_back([&, t] { return backends[t]->MatMul(*w[t], *x[t], batch, out[t].get()); });
  }
  double seconds = 0;
  ASSIGN_OR_RETURN(const std::vector<int64_t> calls, RunConcurrently(o, ops, &seconds));
  int64_t total = 0;
  for (const int64_t c : calls) total += c;
  return static_cast<double>(total) * static_cast<double>(row * rows * batch) / seconds / 1e9;
}

// MeasureConcurrent's median of three (the host is shared: one run can be
// far off).
absl::StatusOr<double> MedianConcurrent(const CalibrateOptions& o, DType type, int threads,
                                        int64_t batch) {
  std::vector<double> runs;
  for (int i = 0; i < 3; ++i) {
    ASSIGN_OR_RETURN(runs.emplace_back(), MeasureConcurrent(o, type, threads, batch));
  }
  return Median(runs);
}

absl::StatusOr<MatMulRate> MeasureMatMul(const CalibrateOptions& o, Backend* backend,
                                         DType type, int cores) {
  ASSIGN_OR_RETURN(const uint64_t row, RowBytes(type, kCols));
  const int64_t decode_bytes = o.decode_matrix_mib << 20;
  const int64_t rows = std::max<int64_t>(1, decode_bytes / static_cast<int64_t>(row));
  ASSIGN_OR_RETURN(const std::vector<uint8_t> big, WeightBytes(type, rows, kCols));
  ASSIGN_OR_RETURN(auto w, backend->CreateWeight(type, rows, kCols, big.data()));
  ASSIGN_OR_RETURN(auto x, backend->CreateActivation(kPrefillBatch, kCols));
  std::vector<float> ones(kCols * kPrefillBatch, 0.5f);
  RETURN_IF_ERROR(backend->Write(ones, 0, x.get()));
  ASSIGN_OR_RETURN(auto out, backend->CreateActivation(1, rows));
  ASSIGN_OR_RETURN(const double decode_s,
                   TimeOp(o, [&] { return backend->MatMul(*w, *x, 1, out.get()); }));
  ASSIGN_OR_RETURN(auto small, backend->CreateWeight(type, kPrefillRows, kCols, big.data()));
  ASSIGN_OR_RETURN(auto small_out, backend->CreateActivation(kPrefillBatch, kPrefillRows));
  ASSIGN_OR_RETURN(const double prefill_s, TimeOp(o, [&] {
                     return backend->MatMul(*small, *x, kPrefillBatch, small_out.get());
                   }));
  MatMulRate rate;
  rate.set_type(DTypeName(type));
  rate.set_decode_gbps(static_cast<double>(row * rows) / decode_s / 1e9);
  rate.set_prefill_gbps(static_cast<double>(row * kPrefillRows * kPrefillBatch) / prefill_s / 1e9);
  ASSIGN_OR_RETURN(const double host_decode, MedianConcurrent(o, type, cores, 1));
  ASSIGN_OR_RETURN(const double host_prefill, MedianConcurrent(o, type, cores, kPrefillBatch));
  rate.set_host_decode_gbps(host_decode);
  rate.set_host_prefill_gbps(host_prefill);
  Say(o, absl::StrFormat("matmul %-5s decode %.2f GB/s (one matrix), prefill %.2f GB/s (one "
                         "thread); %d at once: %.2f, %.2f GB/s",
                         rate.type(), rate.decode_gbps(), rate.prefill_gbps(), cores, host_decode,
                         host_prefill));
  RETURN_IF_ERROR(CalibrateDecode(o, type, cores, &rate));
  return rate;
}

// K/V bytes per second one thread's attention reads, per query head.
absl::StatusOr<double> MeasureAttention(const CalibrateOptions& o, Backend* backend) {
  const int64_t width = kAttentionHeads * kHeadDim;
  const int64_t len = kAttentionPosition + 1;
  ASSIGN_OR_RETURN(auto q, backend->CreateActivation(1, width));
  ASSIGN_OR_RETURN(auto k, backend->CreateActivation(len, width));
  ASSIGN_OR_RETURN(auto v, backend->CreateActivation(len, width));
  ASSIGN_OR_RETURN(auto out, backend->CreateActivation(1, width));
  std::vector<float> row(width, 0.25f);
  RETURN_IF_ERROR(backend->Write(row, 0, q.get()));
  AttentionShape shape;
  shape.n_heads = shape.n_kv_heads = kAttentionHeads;
  shape.head_dim = kHeadDim;
  const std::vector<int32_t> positions = {static_cast<int32_t>(kAttentionPosition)};
  ASSIGN_OR_RETURN(const double s, TimeOp(o, [&] {
                     return backend->Attention(shape, *q, *k, *v, positions, out.get());
                   }));
  const double bytes = static_cast<double>(kAttentionHeads * len * kHeadDim * 2 * sizeof(float));
  return bytes / s / 1e9;
}

// Mean time of the small per-row ops (norm, add, silu) on one row of kCols.
absl::StatusOr<double> MeasureSmallOps(const CalibrateOptions& o, Backend* backend) {
  ASSIGN_OR_RETURN(auto a, backend->CreateActivation(1, kCols));
  ASSIGN_OR_RETURN(auto b, backend->CreateActivation(1, kCols));
  ASSIGN_OR_RETURN(auto c, backend->CreateActivation(1, kCols));
  std::vector<float> norm(kCols, 1.0f);
  ASSIGN_OR_RETURN(auto weight, backend->CreateWeight(DType::kF32, 1, kCols, norm.data()));
  ASSIGN_OR_RETURN(const double s, TimeOp(o, [&]() -> absl::Status {
                     RETURN_IF_ERROR(backend->RmsNorm(*a, *weight, 1e-5f, 1, c.get()));
                     RETURN_IF_ERROR(backend->Add(*b, 1, a.get()));
                     return backend->SiluMul(*a, *b, 1, c.get());
                   }));
  return s / 3 * 1e6;
}

absl::StatusOr<double> MeasureSha256(const CalibrateOptions& o) {
  std::vector<uint8_t> data(16 << 20, 0x5a);
  ASSIGN_OR_RETURN(const double s, TimeOp(o, [&] {
                     Sha256 hash;
                     hash.Update(data);
                     hash.Finish();
                     return absl::OkStatus();
                   }));
  return static_cast<double>(data.size()) / s / 1e9;
}

}  // namespace

absl::Status CalibrateCompute(const CalibrateOptions& o, CostModel* model) {
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  model->set_cores_per_host(cores);
  ASSIGN_OR_RETURN(const double bandwidth, MeasureReadBandwidth(cores));
  Say(o, absl::StrFormat("memory read bandwidth %.2f GB/s (%d threads, read loop)", bandwidth,
                         cores));
  BackendOptions options;
  options.threads = 1;
  options.numerics = Numerics::kFast;
  ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend, CpuBackend::Create(options));
  model->set_machine(absl::StrCat(backend->Describe(), ", ", cores, " cores"));
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    ASSIGN_OR_RETURN(*model->add_matmul(), MeasureMatMul(o, backend.get(), type, cores));
  }
  // K/V reads stream like an f32 product: the faster of the read loop and that.
  model->set_memory_read_gbps(std::max(bandwidth, model->matmul(0).host_decode_gbps()));
  ASSIGN_OR_RETURN(const double attention, MeasureAttention(o, backend.get()));
  model->set_attention_gbps(attention);
  ASSIGN_OR_RETURN(const double op_us, MeasureSmallOps(o, backend.get()));
  model->set_op_overhead_us(op_us);
  Say(o, absl::StrFormat("attention %.2f GB/s of K/V per head, small op %.2f us", attention,
                         op_us));
  ASSIGN_OR_RETURN(const double sha, MeasureSha256(o));
  model->set_sha256_gbps(sha);
  Say(o, absl::StrFormat("sha-256 %.2f GB/s", sha));
  return absl::OkStatus();
}

absl::StatusOr<CostModel> Calibrate(const CalibrateOptions& options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("calibrate: no clock");
  CostModel model;
  RETURN_IF_ERROR(CalibrateCompute(options, &model));
  double wakeup_us = 0, busy_collective_us = 0;
  RETURN_IF_ERROR(CalibrateLink(options, model.mutable_link(), &wakeup_us, &busy_collective_us));
  model.set_oversubscribed_wakeup_us(wakeup_us);
  model.set_busy_collective_us(busy_collective_us);
  return model;
}

}  // namespace shardlm::sim
