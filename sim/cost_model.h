// The calibrated cost model (sim/cost_model.proto) and what it says one
// node's share of a forward pass costs: the work of each phase of a layer
// (attention up to the row-parallel wo product, the FFN up to down), of the
// embedding and of the output layer, computed from the node's real
// ShardPlan slice and the byte counts of its weight types.
#ifndef SHARDLM_SIM_COST_MODEL_H_
#define SHARDLM_SIM_COST_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/model_config.h"
#include "core/shard_plan.h"
#include "sim/cost_model.pb.h"

namespace shardlm::sim {

// Parses and validates a cost model in text format. Errors are one line
// naming `source` and the line or the field.
absl::StatusOr<CostModel> ParseCostModel(const std::string& text, const std::string& source);
// Reads and parses the file at `path`.
absl::StatusOr<CostModel> LoadCostModel(const std::string& path);
// Writes `model` in text format to `path`.
absl::Status WriteCostModel(const CostModel& model, const std::string& path);

// Work of one op sequence: `seconds` on one thread with the machine to
// itself, `bytes` read from memory (weights and K/V), and `host_seconds`,
// its share of the host's aggregate capacity: how long it takes when it is
// one of as many such streams as the host has cores, times the cores (so a
// host of T busy threads runs each at most at seconds / host_seconds / T
// of its own speed; see sim/host_model.h).
struct Work {
  double seconds = 0;
  double bytes = 0;
  double host_seconds = 0;
  Work& operator+=(const Work& o) {
    seconds += o.seconds;
    bytes += o.bytes;
    host_seconds += o.host_seconds;
    return *this;
  }
};

// Per-node op costs under one cost model for one model's weight types.
class OpCosts {
 public:
  // FailedPrecondition when the cost model has no rate for a weight type
  // the plan uses.
  static absl::StatusOr<OpCosts> Create(const CostModel& model, const PlanWeightInfo& weights);

  // These costs for the node of `shard`: its one-token products run at the
  // decode rate of its footprint (the weight bytes it streams per token).
  // Without this, decode runs at the types' decode_gbps.
  OpCosts ForNode(const LlamaConfig& c, const NodeShard& shard) const;
  // The weight bytes the node of `shard` streams per token: its slices of
  // every layer's products and of the output layer.
  double StreamedBytes(const LlamaConfig& c, const NodeShard& shard) const;

  // A matrix product over `weight_bytes` of `type` for `tokens` tokens (a
  // one-token product also pays the type's fixed decode_product_us; an
  // empty one costs nothing).
  Work MatMul(DType type, double weight_bytes, int64_t tokens) const;
  // `count` small ops (norms, rope, adds, copies).
  Work SmallOps(int count) const;

  // Forward of `n` tokens at `position` (the first token's): one layer's
  // attention phase on `shard` (norm, q/k/v, rope, cache, attention, wo),
  // which is AttentionWeights + AttentionCache.
  Work AttentionPhase(const LlamaConfig& c, const NodeShard& shard, int64_t n,
                      int64_t position) const;
  // The part of it that does not depend on the position (products, small ops).
  Work AttentionWeights(const LlamaConfig& c, const NodeShard& shard, int64_t n) const;
  // The part that does: the query heads reading their K/V cache.
  Work AttentionCache(const LlamaConfig& c, const NodeShard& shard, int64_t n,
                      int64_t position) const;
  // One layer's FFN phase (norm, gate, up, silu, down).
  Work FfnPhase(const LlamaConfig& c, const NodeShard& shard, int64_t n) const;
  // The final norm and this node's vocabulary rows for `rows` tokens.
  Work OutputPhase(const LlamaConfig& c, const NodeShard& shard, int64_t rows) const;

 private:
  struct Footprint {
    double bytes = 0;
    double decode = 0;  // bytes per second, one thread
    double host_decode = 0;
  };
  struct Rate {
    double decode = 0;   // bytes per second, one thread
    double prefill = 0;  // bytes x tokens per second, one thread
    double host_decode = 0;   // the same, every core of the host at once
    double host_prefill = 0;
    double decode_product_seconds = 0;  // fixed time of each one-token product
    std::vector<Footprint> footprints;  // ascending bytes
  };
  OpCosts() = default;
  double RowBytesOf(DType type, int64_t cols) const;
  // `r`'s decode and host decode rates at footprint_ (its decode_gbps and
  // host_decode_gbps when either is unknown).
  std::pair<double, double> DecodeRates(const Rate& r) const;

  PlanWeightInfo weights_;
  std::map<DType, Rate> rates_;
  double footprint_ = 0;  // streamed bytes per token; 0: not for one node
  double attention_bytes_per_s_ = 0;
  double memory_bytes_per_s_ = 0;
  double op_seconds_ = 0;
};

}  // namespace shardlm::sim

#endif  // SHARDLM_SIM_COST_MODEL_H_
