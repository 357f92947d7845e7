// Decode products as a node runs them: many distinct matrices per token,
// each streamed from memory once, through the real CPU backend.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "sim/calibrate_util.h"

namespace shardlm::sim {
namespace {

// The line fit: sets of one matrix size each (llama3-1b's products are 512
// to 8192 rows of 2048), distinct matrices totalling kLineSetBytes.
constexpr int64_t kLineRows[] = {128, 512, 2048, 8192};
constexpr int64_t kLineSetBytes = int64_t{192} << 20;
// The footprints: layer-shaped sets (LayerShapedRows) of this many MiB.
constexpr int64_t kFootprintMiB[] = {64, 128, 256, 512, 1024};

// The least-squares line y = intercept + slope x through the points.
struct Line {
  double intercept = 0;
  double slope = 0;
};
Line FitLine(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double det = n * sxx - sx * sx;
  if (det <= 0) return Line{};
  const double slope = (n * sxy - sx * sy) / det;
  return Line{(sy - slope * sx) / n, slope};
}

// Seconds per product of each kLineRows size, one thread; the line through
// them gives the fixed cost of a product and the rate of its bytes.
absl::StatusOr<Line> MeasureProductLine(const CalibrateOptions& o, DType type) {
  ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes(type, kSetCols));
  ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend, OneThreadBackend());
  std::vector<double> bytes, seconds;
  for (const int64_t rows : kLineRows) {
    const int64_t matrix = rows * static_cast<int64_t>(row_bytes);
    const int64_t count = std::max<int64_t>(2, kLineSetBytes / matrix);
    ASSIGN_OR_RETURN(std::unique_ptr<MatrixSet> set,
                     MatrixSet::Create(backend.get(), type, std::vector<int64_t>(count, rows)));
    ASSIGN_OR_RETURN(const double s, TimeOp(o, [&] { return set->RunOnce(); }));
    bytes.push_back(static_cast<double>(matrix));
    seconds.push_back(s / static_cast<double>(set->products()));
  }
  return FitLine(bytes, seconds);
}

// A layer-shaped set of at least `mib` MiB: one thread alone, then one set
// per core all at once; the product's fixed `product_s` is taken off both.
absl::StatusOr<DecodeFootprint> MeasureFootprint(const CalibrateOptions& o, DType type,
                                                 int cores, int64_t mib, double product_s) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> rows, LayerShapedRows(type, mib));
  std::vector<std::unique_ptr<CpuBackend>> backends;
  std::vector<std::unique_ptr<MatrixSet>> sets;
  for (int t = 0; t < cores; ++t) {
    ASSIGN_OR_RETURN(backends.emplace_back(), OneThreadBackend());
    ASSIGN_OR_RETURN(sets.emplace_back(), MatrixSet::Create(backends.back().get(), type, rows));
  }
  MatrixSet& set = *sets[0];
  // Never credit more than half a pass to fixed costs (a noisy fit).
  const double fixed = static_cast<double>(set.products()) * product_s;
  ASSIGN_OR_RETURN(const double alone, TimeOp(o, [&] { return set.RunOnce(); }));
  std::vector<std::function<absl::Status()>> ops;
  for (auto& s : sets) ops.push_back([&s] { return s->RunOnce(); });
  double seconds = 0;
  ASSIGN_OR_RETURN(const std::vector<int64_t> calls, RunConcurrently(o, ops, &seconds));
  double passes = 0;
  for (const int64_t c : calls) passes += static_cast<double>(c);
  const double per_pass = seconds * cores / std::max(passes, 1.0);
  DecodeFootprint f;
  f.set_weight_mib(set.bytes() / 1048576);
  f.set_gbps(set.bytes() / std::max(alone - fixed, alone / 2) / 1e9);
  f.set_host_gbps(cores * set.bytes() / std::max(per_pass - fixed, per_pass / 2) / 1e9);
  return f;
}

}  // namespace

absl::Status CalibrateDecode(const CalibrateOptions& o, DType type, int cores, MatMulRate* rate) {
  ASSIGN_OR_RETURN(const Line line, MeasureProductLine(o, type));
  // A fit the host's noise bent out of shape keeps the one-matrix rate.
  if (line.slope > 0) rate->set_decode_gbps(1 / line.slope / 1e9);
  rate->set_decode_product_us(std::max(0.0, line.intercept) * 1e6);
  std::vector<double> log_mib, gbps, host_gbps;
  std::string raw;
  for (const int64_t mib : kFootprintMiB) {
    ASSIGN_OR_RETURN(const DecodeFootprint f,
                     MeasureFootprint(o, type, cores, mib, rate->decode_product_us() * 1e-6));
    *rate->add_decode_footprint() = f;
    log_mib.push_back(std::log(f.weight_mib()));
    gbps.push_back(f.gbps());
    host_gbps.push_back(f.host_gbps());
    raw += absl::StrFormat("; %.0f MiB %.2f, %d at once %.2f", f.weight_mib(), f.gbps(), cores,
                           f.host_gbps());
  }
  // Each point is one short run on a shared host (+-20% apart minutes
  // later): keep a line through them in log(footprint), not the points.
  const Line one = FitLine(log_mib, gbps);
  const Line all = FitLine(log_mib, host_gbps);
  const double floor_one = *std::min_element(gbps.begin(), gbps.end()) / 2;
  const double floor_all = *std::min_element(host_gbps.begin(), host_gbps.end()) / 2;
  for (size_t i = 0; i < log_mib.size(); ++i) {
    DecodeFootprint* f = rate->mutable_decode_footprint(static_cast<int>(i));
    f->set_gbps(std::max(floor_one, one.intercept + one.slope * log_mib[i]));
    f->set_host_gbps(std::max(floor_all, all.intercept + all.slope * log_mib[i]));
  }
  const DecodeFootprint& first = rate->decode_footprint(0);
  const DecodeFootprint& last = rate->decode_footprint(rate->decode_footprint_size() - 1);
  Say(o, absl::StrFormat("decode %-5s %.2f GB/s + %.1f us a product (one thread)%s; fitted: "
                         "%.2f (%.2f at once) at %.0f MiB to %.2f (%.2f) at %.0f MiB",
                         rate->type(), rate->decode_gbps(), rate->decode_product_us(), raw,
                         first.gbps(), first.host_gbps(), first.weight_mib(), last.gbps(),
                         last.host_gbps(), last.weight_mib()));
  return absl::OkStatus();
}

}  // namespace shardlm::sim
