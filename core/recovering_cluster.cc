#include "core/recovering_cluster.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace shardlm {

bool IsRecoverable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsDataLoss(s) ||
         absl::IsAborted(s) || absl::IsCancelled(s);
}

std::string RecoveryEvent::ToString() const {
  return absl::StrFormat(
      "recovered from \"%s\": detected after %.1f ms, re-planned %d -> %d nodes in %.1f ms "
      "(%.1f MB of weights sent), KV cache rebuilt over %d tokens in %.1f ms, total %.1f ms",
      cause, absl::ToDoubleMilliseconds(detect), nodes_before, nodes_after,
      absl::ToDoubleMilliseconds(replan), static_cast<double>(weight_bytes) / 1e6,
      rebuilt_tokens, absl::ToDoubleMilliseconds(rebuild),
      absl::ToDoubleMilliseconds(detect + replan + rebuild));
}

RecoveringCluster::RecoveringCluster(SessionFactory factory, Clock* clock, int max_recoveries,
                                     std::function<void(const RecoveryEvent&)> on_recovery)
    : factory_(std::move(factory)), clock_(clock), max_recoveries_(max_recoveries),
      on_recovery_(std::move(on_recovery)) {}

RecoveringCluster::~RecoveringCluster() {
  if (session_ != nullptr) session_->Abort();
}

absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> RecoveringCluster::NewSession() {
  // A node can fail while a session is being set up: that is one more
  // failure to get past, up to a bound (a plan that cannot exist is final).
  absl::Status last;
  for (int attempt = 0; attempt < kSessionAttempts; ++attempt) {
    absl::StatusOr<std::unique_ptr<ClusterSessionHandle>> s = factory_();
    if (s.ok()) return s;
    last = s.status();
    if (!IsRecoverable(last) && !absl::IsFailedPrecondition(last)) break;
  }
  return last;
}

absl::Status RecoveringCluster::Start() {
  ASSIGN_OR_RETURN(session_, NewSession());
  full_nodes_ = session_->nodes();
  return absl::OkStatus();
}

int64_t RecoveringCluster::position() const {
  return static_cast<int64_t>(history_.size());
}

int64_t RecoveringCluster::max_seq_len() const {
  return session_->root()->engine()->max_seq_len();
}

absl::StatusOr<int32_t> RecoveringCluster::StepOnce(absl::Span<const int32_t> tokens,
                                                    Sampler* sampler) {
  ClusterStepper stepper(session_->root());
  return stepper.Step(tokens, sampler);
}

absl::StatusOr<int32_t> RecoveringCluster::Step(absl::Span<const int32_t> tokens,
                                                Sampler* sampler) {
  for (;;) {
    const absl::Time start = clock_->Now();
    absl::StatusOr<int32_t> next = StepOnce(tokens, sampler);
    if (next.ok()) {
      history_.insert(history_.end(), tokens.begin(), tokens.end());
      return next;
    }
    if (!IsRecoverable(next.status()) ||
        static_cast<int>(recoveries_.size()) >= max_recoveries_) {
      return next.status();
    }
    RETURN_IF_ERROR(Recover(next.status(), clock_->Now() - start));
  }
}

absl::Status RecoveringCluster::Recover(const absl::Status& cause, absl::Duration detect) {
  RecoveryEvent event;
  event.cause = std::string(cause.message());
  event.detect = detect;
  event.nodes_before = session_->nodes();
  for (;;) {
    session_->Abort();
    session_.reset();
    const absl::Time replan_start = clock_->Now();
    ASSIGN_OR_RETURN(session_, NewSession());
    event.nodes_after = session_->nodes();
    event.weight_bytes = session_->weight_bytes();
    const absl::Time rebuild_start = clock_->Now();
    event.replan = rebuild_start - replan_start;
    event.rebuilt_tokens = static_cast<int64_t>(history_.size());
    const absl::Status rebuilt =
        history_.empty() ? absl::OkStatus() : session_->root()->Forward(history_).status();
    if (rebuilt.ok()) {
      event.rebuild = clock_->Now() - rebuild_start;
      break;
    }
    // A failure during recovery is one more failure: recover again.
    if (!IsRecoverable(rebuilt) || static_cast<int>(recoveries_.size()) >= max_recoveries_) {
      return rebuilt;
    }
    recoveries_.push_back(event);
    if (on_recovery_) on_recovery_(event);
    event.cause = std::string(rebuilt.message());
    event.nodes_before = session_->nodes();
  }
  recoveries_.push_back(event);
  if (on_recovery_) on_recovery_(event);
  return absl::OkStatus();
}

absl::Status RecoveringCluster::Reset() {
  history_.clear();
  if (session_->nodes() < full_nodes_ && (!rejoin_probe_ || rejoin_probe_())) {
    // Nodes were lost: at this request boundary a new session takes back
    // any that answer again (restarted or new workers).
    const int before = session_->nodes();
    session_->Stop().IgnoreError();
    session_.reset();
    ASSIGN_OR_RETURN(session_, NewSession());
    ++rejoin_attempts_;
    if (on_rejoin_) on_rejoin_(before, session_->nodes());
    return absl::OkStatus();
  }
  absl::Status s = session_->root()->Reset();
  if (s.ok() || !IsRecoverable(s)) return s;
  // The session broke between requests: start over on a new one.
  session_->Abort();
  session_.reset();
  ASSIGN_OR_RETURN(session_, NewSession());
  return absl::OkStatus();
}

absl::Status RecoveringCluster::Stop() {
  if (session_ == nullptr) return absl::OkStatus();
  const absl::Status s = session_->Stop();
  session_.reset();
  return s;
}

}  // namespace shardlm
