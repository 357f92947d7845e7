// The OpenAI-compatible HTTP front end (cpp-httplib): POST /v1/completions
// and /v1/chat/completions (whole or as server-sent events), GET /v1/models,
// /health and /metrics. Handler threads queue jobs and wait on their
// channels; one ModelLoop thread runs them in order. Every error is an
// OpenAI-shaped JSON body with its HTTP status.
#ifndef SHARDLM_SERVE_HTTP_SERVER_H_
#define SHARDLM_SERVE_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/tokenizer.h"
#include "serve/completion_job.h"
#include "serve/metrics.h"
#include "serve/model_loop.h"
#include "serve/request_queue.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace shardlm::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  int threads = 64;                 // connections served at once
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  std::string describe;             // the model and cluster, for /health
};

class HttpServer {
 public:
  // None of the pointers is owned; all must outlive the server.
  HttpServer(HttpOptions options, JobSettings settings, const Tokenizer* tokenizer,
             ModelRunner* runner, RequestQueue* queue, ModelLoop* loop, Metrics* metrics);
  ~HttpServer();

  // Binds host:port. FailedPrecondition naming the address when it cannot
  // (port in use, address not local).
  absl::Status Bind();
  // The bound port (after Bind).
  int port() const { return port_; }
  // Serves until Stop; call after Bind.
  absl::Status Run();
  // Waits up to `timeout` for requests being answered to finish.
  void WaitIdle(absl::Duration timeout);
  // Closes the listener; Run returns.
  void Stop();

 private:
  void Route();
  void HandleCompletion(const httplib::Request& req, httplib::Response& res, bool chat);
  void HandleHealth(httplib::Response& res);
  // Sets res to the OpenAI error for `status`.
  void SetError(httplib::Response& res, const absl::Status& status);
  // Counts a request as in flight (BeginRequest) or done (EndRequest).
  void BeginRequest();
  void EndRequest();

  HttpOptions options_;
  JobSettings settings_;
  const Tokenizer* tokenizer_;
  ModelRunner* runner_;
  RequestQueue* queue_;
  ModelLoop* loop_;
  Metrics* metrics_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<uint64_t> taken_{0};
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_HTTP_SERVER_H_
