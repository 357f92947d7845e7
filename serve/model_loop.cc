#include "serve/model_loop.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"
#include "serve/stop_matcher.h"

namespace shardlm::serve {
namespace {

StreamEvent TextEvent(std::string text) {
  StreamEvent e;
  e.text = std::move(text);
  return e;
}

}  // namespace

void ModelLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ModelLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

LoopHealth ModelLoop::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

void ModelLoop::Run() {
  while (std::shared_ptr<QueuedRequest> request = queue_->Pop()) {
    if (request->channel->cancelled()) {
      metrics_->CountCancelled();
      LOG(INFO) << "request " << request->number << ": client gone before it started";
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      health_.busy = true;
    }
    metrics_->SetLoad(queue_->size(), 1);
    const absl::Status status = Serve(*request);
    if (!status.ok()) {
      metrics_->CountFailure();
      LOG(WARNING) << "request " << request->number << " failed: " << status.message();
      StreamEvent e;
      e.kind = StreamEvent::Kind::kError;
      e.error = status;
      request->channel->Push(std::move(e));
    }
    UpdateClusterMetrics();
    metrics_->SetLoad(queue_->size(), 0);
    absl::MutexLock lock(&mu_);
    health_.busy = false;
    health_.last_ok = status.ok();
    health_.last_error = std::string(status.message());
    ++health_.served;
  }
}

void ModelLoop::UpdateClusterMetrics() {
  absl::StatusOr<std::vector<NodeTimes>> nodes = runner_->NodeStats();
  if (!nodes.ok()) {
    LOG(WARNING) << "per-node stats unavailable: " << nodes.status().message();
    nodes = metrics_->nodes();
  }
  metrics_->SetCluster(runner_->recoveries(), *std::move(nodes));
}

absl::Status ModelLoop::Serve(QueuedRequest& request) {
  const GenerationJob& job = request.job;
  RequestChannel& channel = *request.channel;
  const absl::Duration queued = absl::Now() - request.enqueued;
  if (absl::Status s = runner_->NextRequest(); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("the cluster cannot serve: ", s.message()));
  }
  Sampler sampler(job.sampling);
  Detokenizer detok(tokenizer_, job.prompt.back());
  StopMatcher stops(job.stop);
  int64_t generated = 0;
  const auto on_token = [&](int32_t id) -> absl::Status {
    if (channel.cancelled()) return absl::CancelledError("the client went away");
    ++generated;
    std::string text = stops.Push(detok.Push(id));
    if (!text.empty()) channel.Push(TextEvent(std::move(text)));
    return stops.stopped() ? absl::CancelledError("stop string") : absl::OkStatus();
  };
  const int64_t room = runner_->max_seq_len() - static_cast<int64_t>(job.prompt.size());
  const absl::Time start = absl::Now();
  const absl::StatusOr<GenerationStats> stats =
      runner_->Generate(job.prompt, &sampler, std::min(job.max_tokens, room),
                        job.ignore_eos ? -1 : tokenizer_->eos_id(), on_token);
  // A stop string ends Generate early (without its stats): time it here.
  const absl::Duration decode = stats.ok() ? stats->decode_time : absl::Now() - start;
  if (!stats.ok() && !stops.stopped()) {
    if (channel.cancelled()) {
      metrics_->CountCancelled();
      LOG(INFO) << "request " << request.number << ": client went away after " << generated
                << " tokens; stopped";
      return absl::OkStatus();
    }
    return absl::UnavailableError(absl::StrCat("generation failed: ", stats.status().message()));
  }
  std::string tail = stops.Push(detok.Flush());
  tail += stops.Flush();
  if (!tail.empty()) channel.Push(TextEvent(std::move(tail)));
  StreamEvent done;
  done.kind = StreamEvent::Kind::kDone;
  done.finish_reason = stops.stopped() || (stats.ok() && stats->stopped_at_eos) ? "stop" : "length";
  done.usage = {static_cast<int64_t>(job.prompt.size()), generated};
  metrics_->CountGeneration(done.usage.prompt_tokens, generated, decode, queued);
  LOG(INFO) << absl::StrFormat(
      "request %d: %d prompt + %d generated tokens, finish %s, queued %.1f ms, decode %.1f "
      "tokens/s", request.number, done.usage.prompt_tokens, generated, done.finish_reason,
      absl::ToDoubleMilliseconds(queued),
      absl::ToDoubleSeconds(decode) > 0 ? generated / absl::ToDoubleSeconds(decode) : 0.0);
  channel.Push(std::move(done));
  return absl::OkStatus();
}

}  // namespace shardlm::serve
