// The control loop of a tensor-parallel cluster (docs/architecture.md,
// "Tensor parallelism"). Rank 0 (the root) drives: before each collective
// step it broadcasts a wire::ClusterCommand on the control tag, then every
// rank runs that step of its ShardedEngine. Workers (ranks 1..N-1) sit in
// RunClusterWorker until the root sends STOP. For sampling, every rank sends
// the root its top-k (logit, id) candidates of the last token; the root
// merges them into the global top-k and draws with Sampler::SampleCandidates,
// so full logits never cross the transport and the draws equal one node's.
//
// Failure contract: any error on a rank leaves the transport's streams in an
// undefined state. The rank's caller must then make the others fail promptly
// (LocalHub::Shutdown for the local transport) instead of waiting on them.
#ifndef SHARDLM_CORE_CLUSTER_SESSION_H_
#define SHARDLM_CORE_CLUSTER_SESSION_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"
#include "core/generator.h"
#include "core/sampler.h"
#include "core/sharded_engine.h"
#include "core/transport.h"

namespace shardlm {

struct ClusterOptions {
  // Time source for deadlines. Not owned; required.
  Clock* clock = nullptr;
  // Deadline of each control broadcast and candidate gather, from its start.
  absl::Duration timeout = absl::Seconds(60);
  // How long a worker waits for the root's next command.
  absl::Duration idle_timeout = absl::InfiniteDuration();
  // Tags of the commands and of the candidates; must differ from the
  // engines' ShardedEngineOptions::tag.
  uint32_t control_tag = 0x5343;
  uint32_t candidate_tag = 0x534B;
};

// What ClusterRoot::ForwardTopK returns.
struct ClusterStep {
  // Rank 0's part of the forward pass (its vocabulary rows, global greedy).
  ShardedLogits logits;
  // The global top_k candidates of the last token (CandidateBefore order).
  std::vector<Candidate> candidates;
};

// One rank's traffic and time since its engine was created.
struct NodeTraffic {
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  absl::Duration sync = absl::ZeroDuration();     // inside collectives
  absl::Duration compute = absl::ZeroDuration();  // the rest of its forward passes
  int64_t forward_tokens = 0;                     // tokens its forward passes took in
};

// The root's side of the loop. Not thread-safe; one per cluster.
class ClusterRoot {
 public:
  // `engine` and `transport` are rank 0's and must outlive the root.
  ClusterRoot(ShardedEngine* engine, Transport* transport, const ClusterOptions& options)
      : engine_(engine), transport_(transport), options_(options) {}

  ShardedEngine* engine() const { return engine_; }

  // Every rank appends `tokens`; returns rank 0's ShardedLogits.
  absl::StatusOr<ShardedLogits> Forward(absl::Span<const int32_t> tokens,
                                        bool all_logits = false);
  // Forward, then gathers the global top_k candidates of the last token
  // (top_k <= 0: every token of the vocabulary).
  absl::StatusOr<ClusterStep> ForwardTopK(absl::Span<const int32_t> tokens, int64_t top_k);
  // Every rank forgets its sequence.
  absl::Status Reset();
  // Every rank's NodeTraffic, index rank (the workers report theirs).
  absl::StatusOr<std::vector<NodeTraffic>> CollectStats();
  // Tells the workers to leave RunClusterWorker. Later calls do nothing.
  // FailedPrecondition, without sending, after an earlier step failed: the
  // caller must then shut the transport down.
  absl::Status Stop();

 private:
  absl::StatusOr<ClusterStep> Run(absl::Span<const int32_t> tokens, bool all_logits,
                                  int64_t top_k);
  absl::Status SendCommand(const std::vector<uint8_t>& command);
  absl::StatusOr<std::vector<Candidate>> GatherCandidates(const ShardedLogits& logits,
                                                          int64_t top_k);

  ShardedEngine* engine_;
  Transport* transport_;
  ClusterOptions options_;
  bool failed_ = false;
  bool stopped_ = false;
  absl::Duration forward_time_ = absl::ZeroDuration();  // in engine_->Forward
  int64_t forward_tokens_ = 0;
};

// A cluster root as a TokenStepper for Generate: greedy uses the engines'
// global greedy choice, sampling draws from the merged top-k candidates.
class ClusterStepper : public TokenStepper {
 public:
  explicit ClusterStepper(ClusterRoot* root) : root_(root) {}
  int64_t position() const override;
  int64_t max_seq_len() const override;
  absl::StatusOr<int32_t> Step(absl::Span<const int32_t> tokens, Sampler* sampler) override;

 private:
  ClusterRoot* root_;
};

// A worker's side: runs the root's commands on `engine` (of rank
// transport->rank() > 0) until STOP (returns OK) or an error (returned; see
// the failure contract above).
absl::Status RunClusterWorker(ShardedEngine* engine, Transport* transport,
                              const ClusterOptions& options);

// Generate (core/generator.h) on a cluster: same callback contract, EOS and
// context-full stops. Greedy uses the engines' global greedy choice;
// sampling draws from the merged top-k candidates.
absl::StatusOr<GenerationStats> GenerateDistributed(
    ClusterRoot* root, Sampler* sampler, absl::Span<const int32_t> prompt, int64_t steps,
    int32_t eos_id, Clock* clock, const std::function<absl::Status(int32_t)>& on_token);

}  // namespace shardlm

#endif  // SHARDLM_CORE_CLUSTER_SESSION_H_
