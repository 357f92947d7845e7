// The server's counters and gauges, rendered as Prometheus text for
// GET /metrics: requests by endpoint and status, tokens, decode speed,
// queue depth, per-node sync and compute time, failures and recoveries.
#ifndef SHARDLM_SERVE_METRICS_H_
#define SHARDLM_SERVE_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace shardlm::serve {

// Per-node time of the cluster's current session (from CollectStats).
struct NodeTimes {
  absl::Duration compute;
  absl::Duration sync;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
};

// Thread-safe.
class Metrics {
 public:
  // One HTTP request answered on `route` with `status`.
  void CountRequest(const std::string& route, int status);
  // One generation finished: its tokens, decode time and time in the queue.
  void CountGeneration(int64_t prompt_tokens, int64_t completion_tokens, absl::Duration decode,
                       absl::Duration queued);
  // A generation that failed in the model or the cluster.
  void CountFailure();
  // A generation stopped because its client went away.
  void CountCancelled();
  // The cluster's state after a request: recoveries so far and per-node times.
  void SetCluster(int recoveries, std::vector<NodeTimes> nodes);
  // Requests waiting and being generated now.
  void SetLoad(int64_t queued, int64_t running);

  int recoveries() const;
  int64_t failures() const;
  std::vector<NodeTimes> nodes() const;

  // Prometheus text exposition format, version 0.0.4.
  std::string Render() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_ ABSL_GUARDED_BY(mu_);
  int64_t generations_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t prompt_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completion_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration decode_time_ ABSL_GUARDED_BY(mu_);
  absl::Duration queue_time_ ABSL_GUARDED_BY(mu_);
  double last_tokens_per_second_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  int recoveries_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<NodeTimes> nodes_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_METRICS_H_
