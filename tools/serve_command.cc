// `shardlm serve`: an OpenAI-compatible HTTP API (serve/) over one node or
// a tensor-parallel cluster started from the same flags as generate. One
// thread runs the model; SIGINT/SIGTERM stop taking requests, finish the
// ones accepted, then close the listener.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/generator.h"
#include "core/gguf.h"
#include "core/status_macros.h"
#include "core/tokenizer.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "serve/chat_template.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/model_loop.h"
#include "serve/request_queue.h"
#include "tools/backend_flags.h"
#include "tools/cluster_launch.h"
#include "tools/commands.h"
#include "tools/model_open.h"
#include "tools/shared_flags.h"

DEFINE_string(host, "127.0.0.1", "Address to listen on (0.0.0.0: every interface)");
DEFINE_string(chat_template, "",
              "Chat format: llama2, llama3, chatml or plain (default: recognised from the "
              "model's tokenizer.chat_template, else plain)");
DEFINE_string(model_name, "", "Model id clients name (default: the file name without .gguf)");
DEFINE_int32(max_queue, 256, "Requests that may wait for the model; more get HTTP 503");
DEFINE_int32(http_threads, 64, "Connections served at once");
DEFINE_int64(max_body_bytes, 1 << 20, "Largest request body; larger ones get HTTP 413");

namespace shardlm::cli {
namespace {

using serve::ModelRunner;
using serve::NodeTimes;
using OnToken = std::function<absl::Status(int32_t)>;

// One node: the Engine itself.
class EngineRunner : public ModelRunner {
 public:
  EngineRunner(std::unique_ptr<Backend> backend, std::unique_ptr<Engine> engine)
      : backend_(std::move(backend)), engine_(std::move(engine)) {}
  absl::Status NextRequest() override {
    engine_->Reset();
    return absl::OkStatus();
  }
  absl::StatusOr<GenerationStats> Generate(absl::Span<const int32_t> prompt, Sampler* sampler,
                                           int64_t steps, int32_t eos_id,
                                           const OnToken& on_token) override {
    return shardlm::Generate(engine_.get(), sampler, prompt, steps, eos_id, &clock_, on_token);
  }
  int64_t max_seq_len() const override { return engine_->max_seq_len(); }
  int nodes() const override { return 1; }

 private:
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Engine> engine_;
  RealClock clock_;
};

// A cluster (local, tcp or mpi); over tcp it recovers from lost workers.
class ClusterRunner : public ModelRunner {
 public:
  ClusterRunner(std::unique_ptr<LaunchedCluster> cluster, RealClock* clock)
      : cluster_(std::move(cluster)), clock_(clock), nodes_(cluster_->nodes()) {}
  ~ClusterRunner() override {
    if (absl::Status s = cluster_->Stop(); !s.ok()) LOG(WARNING) << "cluster stop: " << s;
  }
  absl::Status NextRequest() override { return cluster_->NextRequest(); }
  absl::StatusOr<GenerationStats> Generate(absl::Span<const int32_t> prompt, Sampler* sampler,
                                           int64_t steps, int32_t eos_id,
                                           const OnToken& on_token) override {
    return shardlm::Generate(cluster_->stepper(), sampler, prompt, steps, eos_id, clock_,
                             on_token);
  }
  int64_t max_seq_len() const override { return cluster_->root()->engine()->max_seq_len(); }
  int nodes() const override { return nodes_.load(); }
  int recoveries() const override { return cluster_->recoveries(); }
  absl::StatusOr<std::vector<NodeTimes>> NodeStats() override {
    ASSIGN_OR_RETURN(const std::vector<NodeTraffic> traffic, cluster_->root()->CollectStats());
    std::vector<NodeTimes> out;
    for (const NodeTraffic& t : traffic) {
      out.push_back({t.compute, t.sync, t.bytes_sent, t.bytes_received});
    }
    nodes_.store(static_cast<int>(out.size()));
    return out;
  }

 private:
  std::unique_ptr<LaunchedCluster> cluster_;
  RealClock* clock_;
  std::atomic<int> nodes_;
};

// The model name clients use: --model-name, else the file's base name.
std::string ModelName(const std::string& path) {
  if (!FLAGS_model_name.empty()) return FLAGS_model_name;
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (absl::EndsWith(name, ".gguf")) name.resize(name.size() - 5);
  return name;
}

absl::StatusOr<serve::ChatTemplateKind> ChatTemplateFor(const GgufFile& file) {
  if (!FLAGS_chat_template.empty()) return serve::ParseChatTemplateName(FLAGS_chat_template);
  absl::StatusOr<std::string> jinja = file.GetString("tokenizer.chat_template");
  return serve::DetectChatTemplate(jinja.ok() ? *jinja : "");
}

absl::Status CheckFlags() {
  if (PortFlag() < 0 || PortFlag() > 65535) {
    return absl::InvalidArgumentError("--port must be in [0, 65535]");
  }
  if (FLAGS_max_queue < 1) return absl::InvalidArgumentError("--max-queue must be >= 1");
  if (FLAGS_http_threads < 1) return absl::InvalidArgumentError("--http-threads must be >= 1");
  if (FLAGS_max_body_bytes < 1024) {
    return absl::InvalidArgumentError("--max-body-bytes must be >= 1024");
  }
  if (!FLAGS_chat_template.empty()) {
    RETURN_IF_ERROR(serve::ParseChatTemplateName(FLAGS_chat_template).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ModelRunner>> StartModel(std::shared_ptr<const GgufFile> file,
                                                        const std::string& path,
                                                        const std::vector<int>& shares,
                                                        RealClock* clock,
                                                        ClusterProcess* process,
                                                        std::string* describe) {
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  if (shares.size() > 1) {
    ASSIGN_OR_RETURN(std::unique_ptr<LaunchedCluster> cluster,
                     LaunchClusterFromFlags(path, file, shares, backend_options, 0, clock,
                                            process));
    *describe = cluster->describe();
    return std::make_unique<ClusterRunner>(std::move(cluster), clock);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend(BackendNameFromFlags(), backend_options));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   Engine::Create(file.get(), backend.get(), EngineOptions()));
  *describe = backend->Describe();
  return std::make_unique<EngineRunner>(std::move(backend), std::move(engine));
}

// Waits for SIGINT/SIGTERM (blocked in every thread) until `done`; on one,
// stops taking requests, lets the accepted ones finish, closes `server`.
void WatchSignals(const std::atomic<bool>* done, serve::RequestQueue* queue,
                  serve::ModelLoop* loop, serve::HttpServer* server) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const timespec tick{0, 200 * 1000 * 1000};
  while (!done->load()) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig != SIGINT && sig != SIGTERM) continue;
    LOG(INFO) << "signal " << sig << ": finishing the accepted requests, then exiting";
    queue->Close();
    loop->Join();
    server->WaitIdle(absl::Seconds(10));
    server->Stop();
    return;
  }
}

absl::Status Serve(ModelRunner* runner, const Tokenizer& tokenizer,
                   serve::JobSettings settings, serve::HttpOptions http) {
  serve::Metrics metrics;
  serve::RequestQueue queue(FLAGS_max_queue);
  serve::ModelLoop loop(runner, &tokenizer, &queue, &metrics);
  serve::HttpServer server(http, settings, &tokenizer, runner, &queue, &loop, &metrics);
  RETURN_IF_ERROR(server.Bind());
  loop.Start();
  std::atomic<bool> done{false};
  std::thread signals(WatchSignals, &done, &queue, &loop, &server);
  std::fprintf(stderr, "shardlm serve: listening on http://%s:%d (model %s, chat template %s, %s)\n",
               http.host.c_str(), server.port(), settings.model_name.c_str(),
               serve::ChatTemplateName(settings.chat_template), http.describe.c_str());
  const absl::Status ran = server.Run();
  done.store(true);
  signals.join();
  queue.Close();
  loop.Join();
  LOG(INFO) << "stopped";
  return ran;
}

absl::Status RunServeImpl(ClusterProcess* process) {
  RETURN_IF_ERROR(CheckFlags());
  ASSIGN_OR_RETURN(const std::vector<int> shares, ClusterSharesFromFlags(*process));
  ASSIGN_OR_RETURN(const std::string path, ResolveModelPath(ModelFlag()));
  ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> file, OpenModel(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromGguf(*file));
  serve::JobSettings settings;
  settings.model_name = ModelName(path);
  ASSIGN_OR_RETURN(settings.chat_template, ChatTemplateFor(*file));
  settings.base_seed = SeedFlag();
  serve::HttpOptions http;
  http.host = FLAGS_host;
  http.port = PortFlag();
  http.threads = FLAGS_http_threads;
  http.max_body_bytes = static_cast<size_t>(FLAGS_max_body_bytes);
  RealClock clock;
  ASSIGN_OR_RETURN(std::unique_ptr<ModelRunner> runner,
                   StartModel(file, path, shares, &clock, process, &http.describe));
  settings.max_seq_len = runner->max_seq_len();
  return Serve(runner.get(), *tokenizer, settings, http);
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("serve", absl::InvalidArgumentError(
                             absl::StrCat("unexpected argument '", args[0], "'")));
  }
  // Every thread started from here on leaves SIGINT/SIGTERM to WatchSignals.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  FLAGS_minloglevel = 0;  // request logs
  absl::StatusOr<std::unique_ptr<ClusterProcess>> process = ClusterProcess::FromFlags();
  if (!process.ok()) return Fail("serve", process.status());
  if ((*process)->is_worker()) return (*process)->ServeAsWorker("serve");
  return (*process)->Finish("serve", RunServeImpl(process->get()));
}

}  // namespace shardlm::cli
