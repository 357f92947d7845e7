#include "serve/request_queue.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace shardlm::serve {

void RequestChannel::Push(StreamEvent event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

std::optional<StreamEvent> RequestChannel::Pop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto has_event = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&has_event), timeout)) return std::nullopt;
  StreamEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

absl::Status RequestQueue::Push(std::shared_ptr<QueuedRequest> request) {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::UnavailableError("the server is shutting down");
  if (queue_.size() >= capacity_) {
    return absl::UnavailableError(
        absl::StrCat("the server is busy: ", queue_.size(), " requests are waiting"));
  }
  request->number = ++pushed_;
  request->enqueued = absl::Now();
  queue_.push_back(std::move(request));
  return absl::OkStatus();
}

std::shared_ptr<QueuedRequest> RequestQueue::Pop() {
  absl::MutexLock lock(&mu_);
  const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || !queue_.empty();
  };
  mu_.Await(absl::Condition(&ready));
  if (queue_.empty()) return nullptr;
  std::shared_ptr<QueuedRequest> request = std::move(queue_.front());
  queue_.pop_front();
  return request;
}

void RequestQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

size_t RequestQueue::size() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

}  // namespace shardlm::serve
