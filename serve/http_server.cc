#include "serve/http_server.h"

#include <sys/socket.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "serve/openai_json.h"

namespace shardlm::serve {
namespace {

using Json = nlohmann::json;

constexpr char kJson[] = "application/json";
// How long a waiting handler sleeps between checks of its client.
constexpr absl::Duration kPoll = absl::Milliseconds(200);

std::string SseData(absl::string_view json) { return absl::StrCat("data: ", json, "\n\n"); }

// The next event of `channel`, waiting as long as it takes (the model loop
// answers every request it dequeues, also while shutting down).
StreamEvent NextEvent(RequestChannel& channel) {
  for (;;) {
    if (std::optional<StreamEvent> e = channel.Pop(kPoll)) return *std::move(e);
  }
}

// Writes one streamed request's events as server-sent events. Owned by the
// chunked content provider; cancels the request when the client is gone.
class SseWriter {
 public:
  SseWriter(std::shared_ptr<RequestChannel> channel, ResponseMeta meta, bool include_usage,
            StreamEvent first)
      : channel_(std::move(channel)), meta_(std::move(meta)), include_usage_(include_usage),
        pending_(std::move(first)) {}

  // One call of httplib's provider: writes what is ready. False ends the
  // response (client gone: the request is cancelled).
  bool Provide(httplib::DataSink& sink) {
    std::optional<StreamEvent> e = std::move(pending_);
    pending_.reset();
    if (!e.has_value()) e = channel_->Pop(kPoll);
    if (!e.has_value()) return Alive(sink.is_writable());
    switch (e->kind) {
      case StreamEvent::Kind::kText:
        return Alive(Write(sink, ChunkJson(meta_, e->text, nullptr, TakeFirst())));
      case StreamEvent::Kind::kDone:
        if (meta_.chat && first_) Write(sink, ChunkJson(meta_, "", nullptr, TakeFirst()));
        Write(sink, ChunkJson(meta_, "", e->finish_reason.c_str(), false));
        if (include_usage_) Write(sink, UsageChunkJson(meta_, e->usage));
        break;
      case StreamEvent::Kind::kError:
        Write(sink, ErrorJson(e->error));
        break;
    }
    const bool ok = sink.write("data: [DONE]\n\n", 14);
    sink.done();
    return Alive(ok);
  }

  // Called when httplib is finished with the response.
  void Release(bool success) {
    if (!success) channel_->Cancel();
  }

 private:
  bool TakeFirst() { return std::exchange(first_, false); }
  bool Write(httplib::DataSink& sink, const std::string& json) {
    const std::string data = SseData(json);
    return sink.write(data.data(), data.size());
  }
  bool Alive(bool ok) {
    if (!ok) channel_->Cancel();
    return ok;
  }

  std::shared_ptr<RequestChannel> channel_;
  ResponseMeta meta_;
  bool include_usage_;
  std::optional<StreamEvent> pending_;
  bool first_ = true;
};

// The whole text of a non-streamed request, or its error.
absl::Status Collect(RequestChannel& channel, std::string* text, StreamEvent* done) {
  for (;;) {
    StreamEvent e = NextEvent(channel);
    if (e.kind == StreamEvent::Kind::kError) return e.error;
    if (e.kind == StreamEvent::Kind::kDone) {
      *done = std::move(e);
      return absl::OkStatus();
    }
    *text += e.text;
  }
}

}  // namespace

HttpServer::HttpServer(HttpOptions options, JobSettings settings, const Tokenizer* tokenizer,
                       ModelRunner* runner, RequestQueue* queue, ModelLoop* loop,
                       Metrics* metrics)
    : options_(std::move(options)), settings_(std::move(settings)), tokenizer_(tokenizer),
      runner_(runner), queue_(queue), loop_(loop), metrics_(metrics),
      server_(std::make_unique<httplib::Server>()) {
  Route();
}

HttpServer::~HttpServer() = default;

void HttpServer::SetError(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusFor(status);
  res.set_content(ErrorJson(status), kJson);
}

void HttpServer::BeginRequest() {
  absl::MutexLock lock(&mu_);
  ++in_flight_;
}

void HttpServer::EndRequest() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void HttpServer::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void HttpServer::HandleCompletion(const httplib::Request& req, httplib::Response& res, bool chat) {
  const uint64_t number = ++taken_;
  absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(req.body, chat);
  absl::StatusOr<GenerationJob> job =
      request.ok() ? MakeGenerationJob(*request, *tokenizer_, settings_, number)
                   : absl::StatusOr<GenerationJob>(request.status());
  if (!job.ok()) return SetError(res, job.status());
  auto queued = std::make_shared<QueuedRequest>();
  queued->job = *std::move(job);
  std::shared_ptr<RequestChannel> channel = queued->channel;
  if (absl::Status s = queue_->Push(std::move(queued)); !s.ok()) return SetError(res, s);
  BeginRequest();
  const ResponseMeta meta{absl::StrCat(chat ? "chatcmpl-" : "cmpl-", number),
                          absl::ToUnixSeconds(absl::Now()), settings_.model_name, chat};
  if (!request->stream) {
    std::string text;
    StreamEvent done;
    if (absl::Status s = Collect(*channel, &text, &done); !s.ok()) {
      SetError(res, s);
    } else {
      res.set_content(CompletionJson(meta, text, done.finish_reason, done.usage), kJson);
    }
    return EndRequest();
  }
  // The first event decides the status: an error before any text is a
  // plain error response, not a stream.
  StreamEvent first = NextEvent(*channel);
  if (first.kind == StreamEvent::Kind::kError) {
    SetError(res, first.error);
    return EndRequest();
  }
  auto writer = std::make_shared<SseWriter>(channel, meta, request->include_usage,
                                            std::move(first));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [writer](size_t, httplib::DataSink& sink) { return writer->Provide(sink); },
      [this, writer](bool success) {
        writer->Release(success);
        EndRequest();
      });
}

void HttpServer::HandleHealth(httplib::Response& res) {
  const LoopHealth loop = loop_->health();
  Json nodes = Json::array();
  const std::vector<NodeTimes> times = metrics_->nodes();
  for (size_t r = 0; r < times.size(); ++r) {
    nodes.push_back({{"node", r},
                     {"compute_seconds", absl::ToDoubleSeconds(times[r].compute)},
                     {"sync_seconds", absl::ToDoubleSeconds(times[r].sync)},
                     {"bytes_sent", times[r].bytes_sent},
                     {"bytes_received", times[r].bytes_received}});
  }
  const Json health = {
      {"status", loop.last_ok ? "ok" : "degraded"},
      {"model", settings_.model_name},
      {"chat_template", ChatTemplateName(settings_.chat_template)},
      {"cluster",
       {{"nodes", runner_->nodes()}, {"describe", options_.describe},
        {"recoveries", metrics_->recoveries()}, {"node_stats", nodes}}},
      {"queue", {{"waiting", queue_->size()}, {"busy", loop.busy}, {"served", loop.served}}},
      {"failures", metrics_->failures()},
      {"last_error", loop.last_ok ? Json() : Json(loop.last_error)}};
  res.status = loop.last_ok ? 200 : 503;
  res.set_content(health.dump(-1, ' ', false, Json::error_handler_t::replace), kJson);
}

void HttpServer::Route() {
  httplib::Server& s = *server_;
  s.new_task_queue = [n = options_.threads] { return new httplib::ThreadPool(n); };
  s.set_payload_max_length(options_.max_body_bytes);
  // httplib's default adds SO_REUSEPORT, which lets a second server bind a
  // port already in use; keep SO_REUSEADDR only.
  s.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleCompletion(req, res, /*chat=*/false);
  });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleCompletion(req, res, /*chat=*/true);
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ModelsJson(settings_.model_name, 0), kJson);
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) { HandleHealth(res); });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->Render(), "text/plain; version=0.0.4");
  });
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                 httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string message =
        res.status == 413 ? absl::StrCat("the request body is larger than ",
                                         options_.max_body_bytes, " bytes")
        : res.status == 404 ? absl::StrCat("no route ", req.method, " ", req.path)
                            : absl::StrCat("HTTP ", res.status, " on ", req.method, " ", req.path);
    res.set_content(ErrorJson(res.status, message), kJson);
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(ErrorJson(500, "internal error"), kJson);
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // Unknown paths share one label, so clients cannot grow the metrics.
    const bool known = req.path == "/v1/completions" || req.path == "/v1/chat/completions" ||
                       req.path == "/v1/models" || req.path == "/health" || req.path == "/metrics";
    metrics_->CountRequest(known ? req.path : "other", res.status);
    LOG(INFO) << req.remote_addr << ":" << req.remote_port << " " << req.method << " " << req.path
              << " " << res.status << " (" << req.body.size() << " bytes in)";
  });
}

absl::Status HttpServer::Bind() {
  const bool ok = options_.port == 0
                      ? (port_ = server_->bind_to_any_port(options_.host)) > 0
                      : server_->bind_to_port(options_.host, port_ = options_.port);
  if (!ok) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen on ", options_.host, ":", options_.port,
        " (port in use, or not an address of this machine)"));
  }
  return absl::OkStatus();
}

absl::Status HttpServer::Run() {
  if (!server_->listen_after_bind()) {
    return absl::InternalError(absl::StrCat("the listener on ", options_.host, ":", port_,
                                            " failed"));
  }
  return absl::OkStatus();
}

void HttpServer::Stop() { server_->stop(); }

}  // namespace shardlm::serve
