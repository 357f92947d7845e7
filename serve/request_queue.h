// Requests waiting for the model: a bounded FIFO of jobs, and per request a
// channel that carries its output from the model thread to the HTTP thread
// (and its cancellation back).
#ifndef SHARDLM_SERVE_REQUEST_QUEUE_H_
#define SHARDLM_SERVE_REQUEST_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/sampler.h"
#include "serve/openai_json.h"

namespace shardlm::serve {

// What the model thread runs for one request.
struct GenerationJob {
  std::vector<int32_t> prompt;  // BOS included
  SamplerOptions sampling;
  int64_t max_tokens = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;  // generate past the end-of-text token
};

// One piece of a request's output.
struct StreamEvent {
  enum class Kind { kText, kDone, kError };
  Kind kind = Kind::kText;
  std::string text;           // kText
  std::string finish_reason;  // kDone: "stop" or "length"
  Usage usage;                // kDone
  absl::Status error;         // kError
};

// A request's output, pushed by the model thread and popped by the HTTP
// thread; either side may be gone first. Thread-safe.
class RequestChannel {
 public:
  // Appends an event for the reader.
  void Push(StreamEvent event);
  // The next event, waiting up to `timeout`; nullopt when none came.
  std::optional<StreamEvent> Pop(absl::Duration timeout);
  // The reader is gone (client disconnected): generation stops at the next
  // token and a job still queued is skipped.
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  absl::Mutex mu_;
  std::deque<StreamEvent> events_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> cancelled_{false};
};

// A job and where its output goes.
struct QueuedRequest {
  GenerationJob job;
  std::shared_ptr<RequestChannel> channel = std::make_shared<RequestChannel>();
  uint64_t number = 0;     // arrival order, from 1 (set by Push)
  absl::Time enqueued;     // set by Push
};

// Bounded first-in first-out queue of requests. Thread-safe.
class RequestQueue {
 public:
  explicit RequestQueue(size_t capacity) : capacity_(capacity) {}

  // Queues `request` (numbering it). Unavailable when `capacity` requests
  // already wait or the queue is closed.
  absl::Status Push(std::shared_ptr<QueuedRequest> request);
  // The oldest request, waiting for one; null once closed and drained.
  std::shared_ptr<QueuedRequest> Pop();
  // Refuses new requests; Pop drains what is queued, then returns null.
  void Close();
  // Requests waiting.
  size_t size() const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<QueuedRequest>> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t pushed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_REQUEST_QUEUE_H_
