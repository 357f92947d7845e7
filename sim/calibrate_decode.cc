// Decode products as a node runs them: many distinct matrices per token,
// each streamed from memory once, through the real CPU backend.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/median.h"
#include "core/status_macros.h"
#include "sim/calibrate_util.h"

namespace shardlm::sim {
namespace {

// The line fit: sets of one matrix size each (llama3-1b's products are 512
// to 8192 rows of 2048), distinct matrices totalling o.product_set_mib.
constexpr int64_t kLineRows[] = {128, 512, 2048, 8192};
// Timed runs of each footprint, alone and at once (the host drifts).
constexpr int kRepeats = 3;

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
    const int64_t count = std::max<int64_t>(2, (o.product_set_mib << 20) / matrix);
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
  const double fixed = static_cast<double>(set.products()) * product_s;
  std::vector<std::function<absl::Status()>> ops;
  for (auto& s : sets) ops.push_back([&s] { return s->RunOnce(); });
  // Alone and all at once, kRepeats times each, alternating: the medians.
  std::vector<double> alone_runs, pass_runs;
  for (int i = 0; i < kRepeats; ++i) {
    ASSIGN_OR_RETURN(alone_runs.emplace_back(), TimeOp(o, [&] { return set.RunOnce(); }));
    double seconds = 0;
    ASSIGN_OR_RETURN(const std::vector<int64_t> calls, RunConcurrently(o, ops, &seconds));
    double passes = 0;
    for (const int64_t c : calls) passes += static_cast<double>(c);
    pass_runs.push_back(seconds * cores / std::max(passes, 1.0));
  }
  const double alone = Median(alone_runs);
  const double per_pass = Median(pass_runs);
  // Never credit more than half a pass to fixed costs (a noisy fit).
  DecodeFootprint f;
  f.set_weight_mib(set.bytes() / 1048576);
  f.set_gbps(set.bytes() / std::max(alone - fixed, alone / 2) / 1e9);
  f.set_host_gbps(cores * set.bytes() / std::max(per_pass - fixed, per_pass / 2) / 1e9);
  return f;
}

// Replaces the points' rates by a least-squares line through them in
// log(footprint), floored at half the slowest point.
void FitFootprints(MatMulRate* rate) {
  std::vector<double> log_mib, gbps, host_gbps;
  for (const DecodeFootprint& f : rate->decode_footprint()) {
    log_mib.push_back(std::log(f.weight_mib()));
    gbps.push_back(f.gbps());
    host_gbps.push_back(f.host_gbps());
  }
  const Line one = FitLine(log_mib, gbps);
  const Line all = FitLine(log_mib, host_gbps);
  const double floor_one = *std::min_element(gbps.begin(), gbps.end()) / 2;
  const double floor_all = *std::min_element(host_gbps.begin(), host_gbps.end()) / 2;
  for (size_t i = 0; i < log_mib.size(); ++i) {
    DecodeFootprint* f = rate->mutable_decode_footprint(static_cast<int>(i));
    f->set_gbps(std::max(floor_one, one.intercept + one.slope * log_mib[i]));
    f->set_host_gbps(std::max(floor_all, all.intercept + all.slope * log_mib[i]));
  }
}

}  // namespace

absl::Status CalibrateDecode(const CalibrateOptions& o, DType type, int cores, MatMulRate* rate) {
  if (o.footprint_mib.empty()) return absl::InvalidArgumentError("calibrate: no footprints");
  for (size_t i = 0; i < o.footprint_mib.size(); ++i) {
    if (o.footprint_mib[i] <= (i == 0 ? 0 : o.footprint_mib[i - 1])) {
      return absl::InvalidArgumentError("calibrate: footprints must be > 0 MiB and ascending");
    }
  }
  ASSIGN_OR_RETURN(const Line line, MeasureProductLine(o, type));
  // A fit the host's noise bent out of shape keeps the one-matrix rate.
  if (line.slope > 0) rate->set_decode_gbps(1 / line.slope / 1e9);
  rate->set_decode_product_us(std::max(0.0, line.intercept) * 1e6);
  std::string raw;
  for (const int64_t mib : o.footprint_mib) {
    ASSIGN_OR_RETURN(const DecodeFootprint f,
                     MeasureFootprint(o, type, cores, mib, rate->decode_product_us() * 1e-6));
    // Whole matrices can make two requested sizes one set: keep the first.
    const int n = rate->decode_footprint_size();
    if (n > 0 && f.weight_mib() <= rate->decode_footprint(n - 1).weight_mib()) continue;
    *rate->add_decode_footprint() = f;
    raw += absl::StrFormat("; %.0f MiB %.2f, %d at once %.2f", f.weight_mib(), f.gbps(), cores,
                           f.host_gbps());
  }
  // Each point is one short run on a shared host (+-20% apart minutes
  // later): with enough of them, keep a line, not the points.
  if (rate->decode_footprint_size() >= 3) FitFootprints(rate);
  const DecodeFootprint& first = rate->decode_footprint(0);
  const DecodeFootprint& last = rate->decode_footprint(rate->decode_footprint_size() - 1);
  Say(o, absl::StrFormat("decode %-5s %.2f GB/s + %.1f us a product (one thread)%s; kept: "
                         "%.2f (%.2f at once) at %.0f MiB to %.2f (%.2f) at %.0f MiB",
                         rate->type(), rate->decode_gbps(), rate->decode_product_us(), raw,
                         first.gbps(), first.host_gbps(), first.weight_mib(), last.gbps(),
                         last.host_gbps(), last.weight_mib()));
  return absl::OkStatus();
}

}  // namespace shardlm::sim
