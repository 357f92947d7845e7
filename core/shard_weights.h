// The weights one node of a tensor-parallel cluster holds (its ShardPlan
// slices), placed on a Backend from a GGUF file. Row slices alias the file's
// mapping; column slices (wo, ffn_down) are copied into host storage the
// struct owns, since their bytes are not contiguous in the file.
#ifndef SHARDLM_CORE_SHARD_WEIGHTS_H_
#define SHARDLM_CORE_SHARD_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/gguf.h"
#include "core/model_config.h"
#include "core/model_weights.h"
#include "core/shard_plan.h"

namespace shardlm {

// One node's slices. In `layers`: wq is (q heads x head_dim) x dim, wk and wv
// (kv heads x head_dim) x dim, wo dim x (q heads x head_dim), w_gate and
// w_up ffn_rows x dim, w_down dim x ffn_rows; norms are whole. A node
// without attention heads (no query and no KV heads) has null wq, wk, wv
// and wo.
struct ShardWeights {
  std::unique_ptr<Buffer> token_embd;   // vocab x dim, node 0 only (else null)
  std::unique_ptr<Buffer> output_norm;  // 1 x dim
  std::unique_ptr<Buffer> output;       // vocab_rows x dim (of token_embd when tied)
  bool tied_output = false;
  std::vector<LayerWeights> layers;
  // Host bytes of the column slices; the backend may alias them.
  std::vector<std::unique_ptr<uint8_t[]>> owned;
};

// A span of a GGUF file: `size` bytes from absolute file offset `offset`.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Places `shard`'s slices of `file` on `backend`. `file` must outlive the
// result. Errors name the tensor: missing, wrong shape, unsupported type, or
// a column slice that does not fall on the type's blocks.
absl::StatusOr<ShardWeights> LoadShardWeights(const GgufFile& file, const LlamaConfig& config,
                                              const NodeShard& shard, Backend* backend);

// Exactly the file bytes LoadShardWeights(file, config, shard, ...) reads,
// sorted by offset, with overlapping and adjacent ranges merged: one range
// per row slice, one per row of a column slice (merged when contiguous),
// whole norms, token_embd on node 0, and the output rows (token_embd's when
// tied). Every range lies inside the data section. Errors are
// LoadShardWeights's (same slices, same checks), except that no backend's
// type support is checked.
absl::StatusOr<std::vector<ByteRange>> ShardByteRanges(const GgufFile& file,
                                                       const LlamaConfig& config,
                                                       const NodeShard& shard);

}  // namespace shardlm

#endif  // SHARDLM_CORE_SHARD_WEIGHTS_H_
