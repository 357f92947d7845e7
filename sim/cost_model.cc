#include "sim/cost_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace shardlm::sim {
namespace {

// Small ops are calibrated on one row of this many floats.
constexpr double kSmallOpElements = 4096;
// Small ops per layer phase besides the matrix products and attention:
// norm, 2 rope, 2 cache stores, read, write, add (attention); norm, silu,
// read, write, add (FFN).
constexpr int kAttentionSmallOps = 8;
constexpr int kFfnSmallOps = 5;
// The same for a node without attention heads: fill, convert, write, add.
constexpr int kHeadlessAttentionSmallOps = 4;

class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (error.empty()) error = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
  }
  std::string error;
};

absl::Status Invalid(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

absl::Status CheckPositive(const std::string& source, const char* field, double value) {
  if (value > 0) return absl::OkStatus();
  return Invalid(source, absl::StrCat(field, " must be > 0, got ", value));
}

absl::Status Validate(const CostModel& m, const std::string& source) {
  if (m.cores_per_host() < 1) return Invalid(source, "cores_per_host must be >= 1");
  RETURN_IF_ERROR(CheckPositive(source, "memory_read_gbps", m.memory_read_gbps()));
  RETURN_IF_ERROR(CheckPositive(source, "attention_gbps", m.attention_gbps()));
  if (m.op_overhead_us() < 0) return Invalid(source, "op_overhead_us must be >= 0");
  if (m.matmul().empty()) return Invalid(source, "no matmul rates");
  for (const MatMulRate& r : m.matmul()) {
    absl::StatusOr<DType> type = ParseDType(r.type());
    if (!type.ok()) return Invalid(source, absl::StrCat("matmul type: ", type.status().message()));
    RETURN_IF_ERROR(CheckPositive(source, "matmul decode_gbps", r.decode_gbps()));
    RETURN_IF_ERROR(CheckPositive(source, "matmul prefill_gbps", r.prefill_gbps()));
    if (r.decode_product_us() < 0) {
      return Invalid(source, "matmul decode_product_us must be >= 0");
    }
    double last_mib = 0;
    for (const DecodeFootprint& f : r.decode_footprint()) {
      if (f.weight_mib() <= last_mib) {
        return Invalid(source, "matmul decode_footprint weight_mib must be > 0 and ascending");
      }
      last_mib = f.weight_mib();
      RETURN_IF_ERROR(CheckPositive(source, "matmul decode_footprint gbps", f.gbps()));
      if (f.host_gbps() < 0) {
        return Invalid(source, "matmul decode_footprint host_gbps must be >= 0");
      }
    }
    if (r.host_decode_gbps() < 0 || r.host_prefill_gbps() < 0) {
      return Invalid(source, "matmul host_decode_gbps and host_prefill_gbps must be >= 0");
    }
  }
  if (m.oversubscribed_wakeup_us() < 0) return Invalid(source, "oversubscribed_wakeup_us must be >= 0");
  if (m.busy_collective_us() < 0) return Invalid(source, "busy_collective_us must be >= 0");
  if (m.link().latency_us() < 0 || m.link().per_message_us() < 0) {
    return Invalid(source, "link latency_us and per_message_us must be >= 0");
  }
  return CheckPositive(source, "link bandwidth_gbps", m.link().bandwidth_gbps());
}

}  // namespace

absl::StatusOr<CostModel> ParseCostModel(const std::string& text, const std::string& source) {
  CostModel model;
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &model)) return Invalid(source, errors.error);
  RETURN_IF_ERROR(Validate(model, source));
  return model;
}

absl::StatusOr<CostModel> LoadCostModel(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read cost model ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseCostModel(ss.str(), path);
}

absl::Status WriteCostModel(const CostModel& model, const std::string& path) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(model, &text)) {
    return absl::InternalError("cannot format the cost model");
  }
  std::ofstream out(path);
  out << "# shardlm cost model (sim/cost_model.proto), written by shardlm sim --calibrate\n"
      << text;
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<OpCosts> OpCosts::Create(const CostModel& model, const PlanWeightInfo& weights) {
  OpCosts costs;
  costs.weights_ = weights;
  for (const MatMulRate& r : model.matmul()) {
    ASSIGN_OR_RETURN(const DType type, ParseDType(r.type()));
    const double cores = model.cores_per_host();
    const double host_decode = r.host_decode_gbps() > 0 ? r.host_decode_gbps() : cores * r.decode_gbps();
    const double host_prefill =
        r.host_prefill_gbps() > 0 ? r.host_prefill_gbps() : cores * r.prefill_gbps();
    Rate& rate = costs.rates_[type];
    rate = Rate{r.decode_gbps() * 1e9, r.prefill_gbps() * 1e9, host_decode * 1e9,
                host_prefill * 1e9, r.decode_product_us() * 1e-6, {}};
    for (const DecodeFootprint& f : r.decode_footprint()) {
      const double host = f.host_gbps() > 0 ? f.host_gbps() : cores * f.gbps();
      rate.footprints.push_back({f.weight_mib() * 1048576.0, f.gbps() * 1e9, host * 1e9});
    }
  }
  for (DType t : {weights.wq, weights.wk, weights.wv, weights.wo, weights.gate, weights.up,
                  weights.down, weights.output}) {
    if (costs.rates_.count(t) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the cost model has no matmul rate for ", DTypeName(t), " (calibrate it)"));
    }
  }
  costs.attention_bytes_per_s_ = model.attention_gbps() * 1e9;
  costs.memory_bytes_per_s_ = model.memory_read_gbps() * 1e9;
  costs.op_seconds_ = model.op_overhead_us() * 1e-6;
  return costs;
}

double OpCosts::RowBytesOf(DType type, int64_t cols) const {
  // Plan types always have a row size (the planner checked them).
  return static_cast<double>(RowBytes(type, cols).value_or(0));
}

OpCosts OpCosts::ForNode(const LlamaConfig& c, const NodeShard& shard) const {
  OpCosts node = *this;
  node.footprint_ = StreamedBytes(c, shard);
  return node;
}

double OpCosts::StreamedBytes(const LlamaConfig& c, const NodeShard& s) const {
  // A one-token Work's bytes are its products' weight bytes.
  const double layer = AttentionWeights(c, s, 1).bytes + FfnPhase(c, s, 1).bytes;
  return static_cast<double>(c.n_layers) * layer + OutputPhase(c, s, 1).bytes;
}

std::pair<double, double> OpCosts::DecodeRates(const Rate& r) const {
  const std::vector<Footprint>& f = r.footprints;
  if (footprint_ <= 0 || f.empty()) return {r.decode, r.host_decode};
  if (footprint_ <= f.front().bytes) return {f.front().decode, f.front().host_decode};
  if (footprint_ >= f.back().bytes) return {f.back().decode, f.back().host_decode};
  size_t i = 1;
  while (f[i].bytes < footprint_) ++i;
  const double t = std::log(footprint_ / f[i - 1].bytes) / std::log(f[i].bytes / f[i - 1].bytes);
  return {f[i - 1].decode + t * (f[i].decode - f[i - 1].decode),
          f[i - 1].host_decode + t * (f[i].host_decode - f[i - 1].host_decode)};
}

Work OpCosts::MatMul(DType type, double weight_bytes, int64_t tokens) const {
  const Rate& r = rates_.at(type);
  if (weight_bytes <= 0) return Work{};
  // The fixed part is one thread's latency, not a share of the host's bandwidth.
  if (tokens <= 1) {
    const auto [decode, host_decode] = DecodeRates(r);
    return Work{r.decode_product_seconds + weight_bytes / decode, weight_bytes,
                weight_bytes / host_decode};
  }
  const double volume = weight_bytes * static_cast<double>(tokens);
  return Work{volume / r.prefill, weight_bytes, volume / r.host_prefill};
}

Work OpCosts::SmallOps(int count) const { return Work{count * op_seconds_, 0, 0}; }

Work OpCosts::AttentionPhase(const LlamaConfig& c, const NodeShard& s, int64_t n,
                             int64_t position) const {
  Work w = AttentionWeights(c, s, n);
  w += AttentionCache(c, s, n, position);
  return w;
}

Work OpCosts::AttentionWeights(const LlamaConfig& c, const NodeShard& s, int64_t n) const {
  const double hd = static_cast<double>(c.head_dim);
  Work w;
  if (s.q_heads() == 0) {
    // No heads: only the zero partial sum and the add of the all-reduced one.
    const double rows = std::max(1.0, static_cast<double>(n * c.dim) / kSmallOpElements);
    w.seconds = rows * kHeadlessAttentionSmallOps * op_seconds_;
    return w;
  }
  w += MatMul(weights_.wq, s.q_heads() * hd * RowBytesOf(weights_.wq, c.dim), n);
  w += MatMul(weights_.wk, s.kv_heads() * hd * RowBytesOf(weights_.wk, c.dim), n);
  w += MatMul(weights_.wv, s.kv_heads() * hd * RowBytesOf(weights_.wv, c.dim), n);
  w += MatMul(weights_.wo, c.dim * RowBytesOf(weights_.wo, s.q_heads() * c.head_dim), n);
  const double rows = std::max(1.0, static_cast<double>(n * c.dim) / kSmallOpElements);
  w.seconds += rows * kAttentionSmallOps * op_seconds_;
  return w;
}

Work OpCosts::AttentionCache(const LlamaConfig& c, const NodeShard& s, int64_t n,
                             int64_t position) const {
  // Each query head reads its K and V rows (f32) at every position up to its own.
  const double nn = static_cast<double>(n);
  const double positions = nn * static_cast<double>(position) + nn * (nn + 1) / 2;
  const double head_bytes = static_cast<double>(c.head_dim) * 2 * sizeof(float) * positions;
  const double kv_bytes = s.kv_heads() * head_bytes;
  return Work{s.q_heads() * head_bytes / attention_bytes_per_s_, kv_bytes,
              kv_bytes / memory_bytes_per_s_};
}

Work OpCosts::FfnPhase(const LlamaConfig& c, const NodeShard& s, int64_t n) const {
  const double f = static_cast<double>(s.ffn_rows());
  Work w;
  w += MatMul(weights_.gate, f * RowBytesOf(weights_.gate, c.dim), n);
  w += MatMul(weights_.up, f * RowBytesOf(weights_.up, c.dim), n);
  w += MatMul(weights_.down, c.dim * RowBytesOf(weights_.down, s.ffn_rows()), n);
  const double rows = std::max(1.0, static_cast<double>(n * c.dim) / kSmallOpElements);
  w.seconds += rows * kFfnSmallOps * op_seconds_;
  return w;
}

Work OpCosts::OutputPhase(const LlamaConfig& c, const NodeShard& s, int64_t rows) const {
  Work w = MatMul(weights_.output, s.vocab_rows() * RowBytesOf(weights_.output, c.dim), rows);
  w += SmallOps(2);  // final norm, read back
  return w;
}

}  // namespace shardlm::sim
