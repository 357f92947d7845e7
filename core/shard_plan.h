// The sharding planner: which slice of every weight matrix each node of a
// tensor-parallel cluster holds (Megatron split, see docs/architecture.md,
// "Tensor parallelism"). q, k, v, gate and up are split by output rows; the
// attention output (wo) and down by input columns; the output projection by
// vocabulary rows. Node 0 is the root. Plans are deterministic: the same
// config, shares and weight types always give the same plan.
#ifndef SHARDLM_CORE_SHARD_PLAN_H_
#define SHARDLM_CORE_SHARD_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/gguf.h"
#include "core/model_config.h"

namespace shardlm {

// Most nodes a plan may have.
inline constexpr int kMaxPlanNodes = 256;
// Largest single share in a share vector.
inline constexpr int kMaxShare = 1000000;

// Parses a share spec: "3" is 3 nodes with equal shares; "1,1,2" is 3 nodes
// whose work is proportional to those numbers. InvalidArgument (one line) for
// an empty spec or element, a non-integer, a share <= 0 or > kMaxShare, or
// more than kMaxPlanNodes nodes.
absl::StatusOr<std::vector<int>> ParseShares(absl::string_view spec);

// "1:1:2".
std::string FormatShares(const std::vector<int>& shares);

// The element type of each kind of weight matrix. A plan uses it to keep
// row-parallel boundaries on quantization blocks and to count bytes. Every
// layer is assumed to have the types of layer 0.
struct PlanWeightInfo {
  DType wq = DType::kF32;
  DType wk = DType::kF32;
  DType wv = DType::kF32;
  DType wo = DType::kF32;
  DType gate = DType::kF32;
  DType up = DType::kF32;
  DType down = DType::kF32;
  DType output = DType::kF32;  // token_embd's type when tied
  DType token_embd = DType::kF32;
  DType norm = DType::kF32;  // attn_norm, ffn_norm, output_norm
  bool tied_output = false;  // no output.weight: token_embd is the output layer

  // All f32, untied.
  PlanWeightInfo() = default;
  // Every matrix of type `matrices`, norms f32, untied (plans without files).
  explicit PlanWeightInfo(DType matrices);

  // Reads the types of blk.0.*, output.weight (absent: tied) and
  // token_embd.weight. NotFound names a missing tensor.
  static absl::StatusOr<PlanWeightInfo> FromGguf(const GgufFile& file);
};

// What one node holds. Ranges are half-open [begin, end).
struct NodeShard {
  int node = 0;
  // Its query heads (wq rows, wo columns); may be empty (see ShardPlan::Create).
  int64_t q_head_begin = 0, q_head_end = 0;
  // The KV heads those query heads use; empty when the query heads are.
  int64_t kv_head_begin = 0, kv_head_end = 0;
  int64_t ffn_begin = 0, ffn_end = 0;          // gate/up rows, down columns
  int64_t vocab_begin = 0, vocab_end = 0;      // rows of the output layer
  uint64_t weight_bytes = 0;        // every slice it holds, norms and (node 0) token_embd
  uint64_t kv_bytes_per_token = 0;  // f32 K and V of its KV heads, all layers

  int64_t q_heads() const { return q_head_end - q_head_begin; }
  int64_t kv_heads() const { return kv_head_end - kv_head_begin; }
  int64_t ffn_rows() const { return ffn_end - ffn_begin; }
  int64_t vocab_rows() const { return vocab_end - vocab_begin; }
};

class ShardPlan {
 public:
  // Splits `config` over shares.size() nodes in proportion to `shares`.
  // Every node gets at least one FFN unit (a quantization block of down's
  // columns, or one row when down is f32/f16/bf16) and one vocabulary row;
  // wo column boundaries fall on wo's blocks. With at most n_kv_heads nodes,
  // attention is split on KV-group boundaries; with more, query heads are
  // split and a KV head may be replicated. When there are more nodes than
  // units of query heads (single heads, or the heads of one wo block when wo
  // is quantized and head_dim is small), the nodes with the largest shares
  // (ties: the lower node, so node 0 first) get one unit each and the others
  // none: they hold no attention weights or KV cache and contribute zeros to
  // the attention all-reduce. InvalidArgument (one line naming the
  // constraint) when no such plan exists (fewer FFN units or vocabulary rows
  // than nodes).
  static absl::StatusOr<ShardPlan> Create(const LlamaConfig& config, const std::vector<int>& shares,
                                          const PlanWeightInfo& weights);

  // One entry per node, node i at index i.
  const std::vector<NodeShard>& nodes() const { return nodes_; }
  const std::vector<int>& shares() const { return shares_; }
  const LlamaConfig& config() const { return config_; }
  const PlanWeightInfo& weights() const { return weights_; }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  // True when attention is split inside KV groups (some KV head is held,
  // and its K/V rows computed, on several nodes).
  bool kv_replicated() const { return kv_replicated_; }
  // Number of nodes holding KV head `kv_head`.
  int KvHeadHolders(int64_t kv_head) const;

  // This plan with node `shard.node` replaced by `shard`, unchecked: for
  // tests and the simulator that inject sharding bugs and must see them
  // caught. Never used on a real run.
  ShardPlan WithNodeReplacedForTesting(const NodeShard& shard) const {
    ShardPlan copy = *this;
    copy.nodes_[shard.node] = shard;
    return copy;
  }

  // A table: one row per node (q heads, kv heads with replicated ones
  // marked '*', ffn rows, vocab rows, weight MiB, KV KiB/token) and a total.
  std::string ToString() const;

 private:
  ShardPlan() = default;

  LlamaConfig config_;
  PlanWeightInfo weights_;
  std::vector<int> shares_;
  std::vector<NodeShard> nodes_;
  bool kv_replicated_ = false;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_SHARD_PLAN_H_
