// Generation that survives losing workers (docs/architecture.md, failure
// recovery). A RecoveringCluster drives the current cluster session like
// ClusterStepper; when a step fails because a node died or stopped
// answering, it tears the session down, asks its factory for a new one over
// the nodes still alive (re-planned, weights loaded or streamed anew),
// rebuilds the KV cache by running the tokens so far through the new
// session, and retries the step. In exact numerics the new session computes
// the same logits bit for bit, so the text is exactly the fault-free text.
#ifndef SHARDLM_CORE_RECOVERING_CLUSTER_H_
#define SHARDLM_CORE_RECOVERING_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/cluster_session.h"
#include "core/generator.h"

namespace shardlm {

// One live cluster session, as made by a SessionFactory.
class ClusterSessionHandle {
 public:
  virtual ~ClusterSessionHandle() = default;
  virtual ClusterRoot* root() = 0;
  // Nodes in the session, the root included.
  virtual int nodes() const = 0;
  // Ends the session after a failure: every peer sees it end promptly.
  virtual void Abort() = 0;
  // Ends it cleanly (workers leave their loop and wait for the next root).
  virtual absl::Status Stop() = 0;
  // Weight bytes the root sent while starting the session.
  virtual int64_t weight_bytes() const { return 0; }
};

// Makes a new session over whichever nodes are reachable now (at least the
// root itself).
using SessionFactory = std::function<absl::StatusOr<std::unique_ptr<ClusterSessionHandle>>()>;

// The timeline of one recovery.
struct RecoveryEvent {
  std::string cause;          // the error that ended the old session
  int nodes_before = 0;
  int nodes_after = 0;
  absl::Duration detect;      // from the failing step's start to its error
  absl::Duration replan;      // new session: mesh, plan, weights
  int64_t weight_bytes = 0;   // weights the root sent to the new session
  int64_t rebuilt_tokens = 0;
  absl::Duration rebuild;     // KV cache rebuilt over those tokens
  std::string ToString() const;
};

// Whether `s` may be cured by a new session (a lost, reset or silent node),
// as opposed to a bad request.
bool IsRecoverable(const absl::Status& s);

class RecoveringCluster : public TokenStepper {
 public:
  // `clock` is not owned; `on_recovery` (optional) hears of each recovery.
  RecoveringCluster(SessionFactory factory, Clock* clock, int max_recoveries = 16,
                    std::function<void(const RecoveryEvent&)> on_recovery = nullptr);
  ~RecoveringCluster() override;

  // Makes the first session.
  absl::Status Start();

  int64_t position() const override;
  int64_t max_seq_len() const override;
  absl::StatusOr<int32_t> Step(absl::Span<const int32_t> tokens, Sampler* sampler) override;

  // Forgets the sequence (between requests). When the session has fewer
  // nodes than the first one had and the rejoin probe says a lost node may
  // answer, starts a new session first, so that workers that answer again
  // (restarted or new) rejoin the plan.
  absl::Status Reset();
  // New sessions Reset started to take lost nodes back.
  int rejoin_attempts() const { return rejoin_attempts_; }
  // Whether any lost node might answer now (cheap; default: always try).
  void set_rejoin_probe(std::function<bool()> probe) { rejoin_probe_ = std::move(probe); }
  // Hears of each rejoin session: (nodes before, nodes after).
  void set_on_rejoin(std::function<void(int, int)> on_rejoin) { on_rejoin_ = std::move(on_rejoin); }
  // Ends the session cleanly.
  absl::Status Stop();

  ClusterRoot* root() { return session_->root(); }
  int nodes() const { return session_->nodes(); }
  const std::vector<RecoveryEvent>& recoveries() const { return recoveries_; }

 private:
  // Attempts at a new session before giving up.
  static constexpr int kSessionAttempts = 4;
  // factory_(), retried while sessions fail to start for transient reasons.
  absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> NewSession();
  absl::StatusOr<int32_t> StepOnce(absl::Span<const int32_t> tokens, Sampler* sampler);
  // Replaces the failed session and replays history_ into it.
  absl::Status Recover(const absl::Status& cause, absl::Duration detect);

  SessionFactory factory_;
  Clock* clock_;
  int max_recoveries_;
  std::function<void(const RecoveryEvent&)> on_recovery_;
  std::unique_ptr<ClusterSessionHandle> session_;
  std::vector<int32_t> history_;  // every token in the KV cache, in order
  std::vector<RecoveryEvent> recoveries_;
  int full_nodes_ = 0;  // nodes of the first session
  int rejoin_attempts_ = 0;
  std::function<bool()> rejoin_probe_;
  std::function<void(int, int)> on_rejoin_;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_RECOVERING_CLUSTER_H_
