// One node of a tensor-parallel llama forward pass (docs/architecture.md,
// "Tensor parallelism"): every rank of a Transport runs a ShardedEngine over
// its ShardPlan slices and calls Forward with the same tokens in lockstep.
// Rank 0 embeds the tokens and broadcasts the activations; the attention
// output and FFN down projections end in an all-reduce. In exact numerics
// (a Numerics::kExact backend, WireFormat::kExact) that all-reduce carries
// int64 fixed point, so the logits are bit-identical to the single-node
// Engine for every node count and share vector. In fast numerics (a kFast
// backend) the partial products are floats sent as f32, f16 or q8_0
// (ShardedEngineOptions::wire); every rank still ends with the same bits.
#ifndef SHARDLM_CORE_SHARDED_ENGINE_H_
#define SHARDLM_CORE_SHARDED_ENGINE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/gguf.h"
#include "core/model_config.h"
#include "core/shard_plan.h"
#include "core/shard_weights.h"
#include "core/transport.h"
#include "transport/collectives.h"

namespace shardlm {

struct ShardedEngineOptions {
  // KV-cache length in tokens; 0 means min(model context length, 4096).
  int64_t max_seq_len = 0;
  // Most tokens per batched step; longer inputs run in chunks.
  int64_t max_batch = 64;
  // Time source for collective deadlines. Not owned; required.
  Clock* clock = nullptr;
  // Deadline of each collective, from when it starts.
  absl::Duration timeout = absl::Seconds(60);
  AllReduceAlgorithm algorithm = AllReduceAlgorithm::kAuto;
  // Transport tag of every collective this engine runs.
  uint32_t tag = 0x5348;
  // Payload of the row-parallel all-reduces: kExact (int64 fixed point) with
  // an exact backend; kF32, kF16 or kQ8_0 with a fast backend.
  WireFormat wire = WireFormat::kExact;
};

// What Forward returns on every rank.
struct ShardedLogits {
  // Logits of this rank's vocabulary rows [vocab_begin, vocab_end), one row
  // per returned token, row-major.
  std::vector<float> local;
  // Per returned token, the global greedy choice: the highest logit over
  // the whole vocabulary, ties to the lowest id (core Argmax). Identical on
  // every rank.
  std::vector<int32_t> greedy;
};

class ShardedEngine {
 public:
  // Loads rank transport->rank()'s slices of `plan` from `file` onto
  // `backend`. `file`, `backend` and `transport` must outlive the engine.
  static absl::StatusOr<std::unique_ptr<ShardedEngine>> Create(
      const GgufFile* file, const ShardPlan& plan, Backend* backend, Transport* transport,
      const ShardedEngineOptions& options);

  const LlamaConfig& config() const { return config_; }
  const NodeShard& shard() const { return shard_; }
  int rank() const { return shard_.node; }
  // Tokens already in the KV cache (the next token's position).
  int64_t position() const { return position_; }
  // KV-cache length in tokens (the most tokens a sequence can hold).
  int64_t max_seq_len() const { return max_seq_len_; }

  // Collective: every rank calls it with the same tokens. Appends them to
  // the sequence and returns the logits of the last one, or of every one
  // when `all_logits`. OutOfRange if the context would overflow.
  absl::StatusOr<ShardedLogits> Forward(absl::Span<const int32_t> tokens,
                                        bool all_logits = false);

  // Collective: the full logits (rows x vocab_size, vocabulary order) from
  // every rank's `local` rows, on every rank.
  absl::StatusOr<std::vector<float>> GatherLogits(absl::Span<const float> local, int64_t rows);

  // Forgets the sequence (the KV cache is overwritten from position 0).
  void Reset() { position_ = 0; }

  // Payload bytes and messages this rank sent and received in all of its
  // collectives (embedding broadcast, row-parallel all-reduces, greedy
  // exchange, GatherLogits) since Create. Reset() does not clear it.
  const CollectiveStats& traffic() const { return traffic_; }
  // Time spent inside those collectives (waiting on peers included), as
  // measured by options.clock around each call, since Create.
  absl::Duration sync_time() const { return sync_time_; }

 private:
  ShardedEngine(Backend* backend, Transport* transport, LlamaConfig config,
                std::vector<NodeShard> nodes, int rank, ShardWeights weights,
                const ShardedEngineOptions& options)
      : backend_(backend), transport_(transport), config_(std::move(config)),
        shard_(nodes[rank]), nodes_(std::move(nodes)), weights_(std::move(weights)),
        options_(options) {}
  absl::Status Allocate();
  // Runs one collective: `run` gets its deadline and must pass &traffic_ as
  // the stats; the clock time it takes is added to sync_time_.
  absl::Status Collective(absl::FunctionRef<absl::Status(absl::Time deadline)> run);
  absl::Status ForwardChunk(absl::Span<const int32_t> tokens, bool all_logits, bool last_chunk,
                            ShardedLogits* result);
  // x_ = the embeddings of `tokens`, computed on rank 0 and broadcast.
  absl::Status EmbedBroadcast(absl::Span<const int32_t> tokens);
  absl::Status AttentionBlock(int64_t layer, absl::Span<const int32_t> positions);
  absl::Status FeedForwardBlock(int64_t layer, int64_t n);
  // x_ += the all-reduced sum over ranks of w's partial products with the
  // first n rows of `in`, as Engine's MatMul then Add: int64 fixed point
  // in exact numerics, float over options_.wire in fast numerics. `w` is
  // dim x k; null `w` (a rank without attention heads) contributes zeros.
  absl::Status RowParallelAdd(const Buffer* w, const Buffer* in, int64_t n);
  absl::Status RowParallelAddFast(const Buffer* w, const Buffer* in, int64_t n);
  // Appends the greedy choice of each of `rows` local logit rows.
  absl::Status GlobalGreedy(absl::Span<const float> local, int64_t rows,
                            std::vector<int32_t>* greedy);

  Backend* backend_;
  Transport* transport_;
  LlamaConfig config_;
  NodeShard shard_;
  std::vector<NodeShard> nodes_;  // every rank's shard, for GatherLogits
  ShardWeights weights_;
  ShardedEngineOptions options_;
  int64_t max_seq_len_ = 0;
  int64_t max_batch_ = 0;
  int64_t position_ = 0;
  std::vector<std::unique_ptr<Buffer>> k_cache_, v_cache_;  // per layer: max_seq x local kv
  // Scratch, max_batch rows each.
  std::unique_ptr<Buffer> x_, xn_, q_, k_, v_, attn_, proj_, gate_, up_, hidden_, logits_;
  std::vector<int64_t> fixed_;
  std::vector<float> host_;
  CollectiveStats traffic_;
  absl::Duration sync_time_ = absl::ZeroDuration();
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_SHARDED_ENGINE_H_
