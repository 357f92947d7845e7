// The one thread that runs the model (the engine is not thread-safe): takes
// requests from the queue in order, generates each with core/generator.h's
// Generate, and streams valid UTF-8 text (cut at stop strings) into the
// request's channel. A cancelled request stops at its next token.
#ifndef SHARDLM_SERVE_MODEL_LOOP_H_
#define SHARDLM_SERVE_MODEL_LOOP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/generator.h"
#include "core/sampler.h"
#include "core/tokenizer.h"
#include "serve/metrics.h"
#include "serve/request_queue.h"

namespace shardlm::serve {

// The model behind the server: one node or a cluster.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // Readies the model for the next request (a cluster forgets the last
  // sequence and lets lost workers rejoin). Called before every request.
  virtual absl::Status NextRequest() = 0;
  // Generate (core/generator.h) over `prompt` from position 0, stopping at
  // `eos_id` (-1: never).
  virtual absl::StatusOr<GenerationStats> Generate(
      absl::Span<const int32_t> prompt, Sampler* sampler, int64_t steps, int32_t eos_id,
      const std::function<absl::Status(int32_t)>& on_token) = 0;
  // Most tokens a sequence can hold.
  virtual int64_t max_seq_len() const = 0;
  // Nodes now serving, and lost-worker recoveries so far.
  virtual int nodes() const = 0;
  virtual int recoveries() const { return 0; }
  // Per-node times of the current session (empty for one node).
  virtual absl::StatusOr<std::vector<NodeTimes>> NodeStats() { return std::vector<NodeTimes>(); }
};

// What GET /health reports about the model thread.
struct LoopHealth {
  bool last_ok = true;     // the last request's model work succeeded
  std::string last_error;  // its error otherwise
  int64_t served = 0;      // requests finished
  bool busy = false;       // generating now
};

class ModelLoop {
 public:
  // None owned; all must outlive the loop.
  ModelLoop(ModelRunner* runner, const Tokenizer* tokenizer, RequestQueue* queue,
            Metrics* metrics)
      : runner_(runner), tokenizer_(tokenizer), queue_(queue), metrics_(metrics) {}
  ~ModelLoop() { Join(); }

  // Starts the thread.
  void Start();
  // Returns once the queue is closed and drained (call RequestQueue::Close).
  void Join();
  LoopHealth health() const;

 private:
  void Run();
  // Generates `request` and sends its output; the error to report if any.
  absl::Status Serve(QueuedRequest& request);
  // Publishes the cluster's recoveries and per-node times to the metrics.
  void UpdateClusterMetrics();

  ModelRunner* runner_;
  const Tokenizer* tokenizer_;
  RequestQueue* queue_;
  Metrics* metrics_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  LoopHealth health_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_MODEL_LOOP_H_
