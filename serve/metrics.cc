#include "serve/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shardlm::serve {
namespace {

// "# HELP name help\n# TYPE name type\n".
std::string Header(const char* name, const char* type, const char* help) {
  return absl::StrCat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

std::string Sample(const char* name, double value) {
  return absl::StrFormat("%s %.17g\n", name, value);
}

}  // namespace

void Metrics::CountRequest(const std::string& route, int status) {
  absl::MutexLock lock(&mu_);
  ++requests_[{route, status}];
}

void Metrics::CountGeneration(int64_t prompt_tokens, int64_t completion_tokens,
                              absl::Duration decode, absl::Duration queued) {
  absl::MutexLock lock(&mu_);
  ++generations_;
  prompt_tokens_ += prompt_tokens;
  completion_tokens_ += completion_tokens;
  decode_time_ += decode;
  queue_time_ += queued;
  const double s = absl::ToDoubleSeconds(decode);
  if (s > 0) last_tokens_per_second_ = completion_tokens / s;
}

void Metrics::CountFailure() {
  absl::MutexLock lock(&mu_);
  ++failures_;
}

void Metrics::CountCancelled() {
  absl::MutexLock lock(&mu_);
  ++cancelled_;
}

void Metrics::SetCluster(int recoveries, std::vector<NodeTimes> nodes) {
  absl::MutexLock lock(&mu_);
  recoveries_ = recoveries;
  nodes_ = std::move(nodes);
}

void Metrics::SetLoad(int64_t queued, int64_t running) {
  absl::MutexLock lock(&mu_);
  queued_ = queued;
  running_ = running;
}

int Metrics::recoveries() const {
  absl::MutexLock lock(&mu_);
  return recoveries_;
}

int64_t Metrics::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

std::vector<NodeTimes> Metrics::nodes() const {
  absl::MutexLock lock(&mu_);
  return nodes_;
}

std::string Metrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out = Header("shardlm_http_requests_total", "counter",
                           "HTTP requests answered, by route and status code.");
  for (const auto& [key, n] : requests_) {
    absl::StrAppendFormat(&out, "shardlm_http_requests_total{route=\"%s\",code=\"%d\"} %d\n",
                          key.first, key.second, n);
  }
  const double decode_s = absl::ToDoubleSeconds(decode_time_);
  out += Header("shardlm_generations_total", "counter", "Generations finished.") +
         Sample("shardlm_generations_total", generations_) +
         Header("shardlm_prompt_tokens_total", "counter", "Prompt tokens processed.") +
         Sample("shardlm_prompt_tokens_total", prompt_tokens_) +
         Header("shardlm_completion_tokens_total", "counter", "Tokens generated.") +
         Sample("shardlm_completion_tokens_total", completion_tokens_) +
         Header("shardlm_decode_seconds_total", "counter", "Time spent decoding.") +
         Sample("shardlm_decode_seconds_total", decode_s) +
         Header("shardlm_queue_seconds_total", "counter", "Time requests waited in the queue.") +
         Sample("shardlm_queue_seconds_total", absl::ToDoubleSeconds(queue_time_)) +
         Header("shardlm_tokens_per_second", "gauge",
                "Decode speed: of the last generation, and over all of them (avg).") +
         absl::StrFormat("shardlm_tokens_per_second{window=\"last\"} %.17g\n",
                         last_tokens_per_second_) +
         absl::StrFormat("shardlm_tokens_per_second{window=\"avg\"} %.17g\n",
                         decode_s > 0 ? completion_tokens_ / decode_s : 0.0) +
         Header("shardlm_generation_failures_total", "counter",
                "Generations that failed in the model or the cluster.") +
         Sample("shardlm_generation_failures_total", failures_) +
         Header("shardlm_generations_cancelled_total", "counter",
                "Generations stopped because the client went away.") +
         Sample("shardlm_generations_cancelled_total", cancelled_) +
         Header("shardlm_cluster_recoveries_total", "counter", "Lost-worker recoveries.") +
         Sample("shardlm_cluster_recoveries_total", recoveries_) +
         Header("shardlm_queue_depth", "gauge", "Requests waiting for the model.") +
         Sample("shardlm_queue_depth", queued_) +
         Header("shardlm_requests_running", "gauge", "Requests being generated.") +
         Sample("shardlm_requests_running", running_);
  out += Header("shardlm_node_sync_seconds", "counter",
                "Per node: time inside collectives in the current cluster session.");
  for (size_t r = 0; r < nodes_.size(); ++r) {
    absl::StrAppendFormat(&out, "shardlm_node_sync_seconds{node=\"%d\"} %.17g\n", r,
                          absl::ToDoubleSeconds(nodes_[r].sync));
  }
  out += Header("shardlm_node_compute_seconds", "counter",
                "Per node: forward-pass time outside collectives in the current session.");
  for (size_t r = 0; r < nodes_.size(); ++r) {
    absl::StrAppendFormat(&out, "shardlm_node_compute_seconds{node=\"%d\"} %.17g\n", r,
                          absl::ToDoubleSeconds(nodes_[r].compute));
  }
  return out;
}

}  // namespace shardlm::serve
