// `shardlm bench --model PATH`: prefill and decode speed of one model on one
// backend, set against this machine's memory read bandwidth measured in the
// same run with the same thread count. Decoding a token reads (nearly) every
// weight once, so effective GB/s over measured GB/s says how close decoding
// runs to the memory-bound ceiling.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/cpu/memory_bandwidth.h"
#include "backends/cuda/device_bandwidth.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/median.h"
#include "core/sampler.h"
#include "core/gguf.h"
#include "core/model_config.h"
#include "core/status_macros.h"
#include "gflags/gflags.h"
#include "tools/backend_flags.h"
#include "tools/cluster_launch.h"
#include "tools/commands.h"
#include "tools/model_open.h"
#include "tools/shared_flags.h"

// Given as --model (tools/shardlm_main.cc): `generate` owns the name "model".
DEFINE_int64(prompt_tokens, 64, "Prompt tokens, prefilled in one batched Forward call");
DEFINE_int64(decode_tokens, 32, "Tokens then decoded one at a time (greedy)");
DEFINE_int64(warmup, 2, "Untimed single-token steps run first (pages in the weights)");
DEFINE_bool(json, false, "Print one JSON object instead of a table");
DEFINE_int32(rounds, 4,
             "Host memory: decode is timed in this many rounds with the read bandwidth measured "
             "between them; a round's bandwidth is the better reading of the two around it, and "
             "the fraction of bandwidth is the median of the rounds' ratios (a shared host's "
             "bandwidth drifts; paired, both figures see the same machine)");

namespace shardlm::cli {
namespace {

constexpr uint64_t kPromptSeed = 20240229;  // fixed: every run benchmarks the same prompt

struct BenchResult {
  std::string model;
  std::string backend;
  int threads = 0;
  int64_t prompt_tokens = 0;
  int64_t decode_tokens = 0;
  double prefill_tokens_per_s = 0;
  double decode_tokens_per_s = 0;
  double ms_per_token = 0;
  double weight_mb_per_token = 0;  // 1e6 bytes
  double effective_gb_per_s = 0;   // 1e9 bytes
  double measured_gb_per_s = 0;
  double bandwidth_fraction = 0;
  // Host memory: per decode round, the bandwidth read just before it and
  // the round's effective GB/s over it (empty for a GPU).
  std::vector<double> round_measured_gb_per_s;
  std::vector<double> round_fractions;
  // What measured_gb_per_s measured: "" (host memory) or the GPU, with its
  // peak (--backend cuda).
  std::string bandwidth_device;
  int nodes = 1;
  // Per node, per decode token (clusters only).
  struct Traffic {
    double sent_bytes = 0;
    double received_bytes = 0;
    double sync_ms = 0;
    double compute_ms = 0;
  };
  std::vector<Traffic> traffic;
};

// Bytes of weights one decode step reads: every tensor but the embedding
// table, plus one embedding row (plus the whole table when it doubles as
// the output layer).
absl::StatusOr<uint64_t> WeightBytesPerToken(const GgufFile& file) {
  uint64_t bytes = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    if (t.name != "token_embd.weight") bytes += t.size_bytes;
  }
  const GgufTensorInfo* embd = file.FindTensor("token_embd.weight");
  if (embd == nullptr || embd->dims.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file.source(), ": no token_embd.weight"));
  }
  ASSIGN_OR_RETURN(const uint64_t row, RowBytes(embd->type, embd->dims[0]));
  bytes += row;
  if (file.FindTensor("output.weight") == nullptr) bytes += embd->size_bytes;
  return bytes;
}

absl::Status CheckFlags() {
  if (FLAGS_prompt_tokens < 1) return absl::InvalidArgumentError("--prompt-tokens must be >= 1");
  if (FLAGS_decode_tokens < 1) return absl::InvalidArgumentError("--decode-tokens must be >= 1");
  if (FLAGS_warmup < 0) return absl::InvalidArgumentError("--warmup must be >= 0");
  if (FLAGS_rounds < 1) return absl::InvalidArgumentError("--rounds must be >= 1");
  return absl::OkStatus();
}

// What the timing loop drives: one node's Engine or a cluster's root.
struct Stepper {
  // Appends `tokens`; returns the greedy choice after the last one.
  std::function<absl::StatusOr<int32_t>(absl::Span<const int32_t>)> forward;
  std::function<absl::Status()> reset;
  // Called between prefill and decode and after decode (cluster stats).
  std::function<absl::Status()> checkpoint = [] { return absl::OkStatus(); };
};

// Runs warmup, the timed prefill and the timed decode steps. With a `probe`
// (host memory), the decode runs in --rounds rounds with a bandwidth
// reading before the first and after each; `bytes_per_token` gives each
// round's effective rate.
absl::Status TimeSteps(const Stepper& step, int64_t vocab, uint64_t bytes_per_token,
                       ReadBandwidthProbe* probe, BenchResult* r) {
  std::mt19937_64 rng(kPromptSeed);
  std::vector<int32_t> prompt(r->prompt_tokens);
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  for (int64_t i = 0; i < FLAGS_warmup; ++i) {
    RETURN_IF_ERROR(step.forward({prompt[i % prompt.size()]}).status());
  }
  RETURN_IF_ERROR(step.reset());

  RealClock clock;
  const absl::Time prefill_start = clock.Now();
  ASSIGN_OR_RETURN(int32_t next, step.forward(prompt));
  const absl::Time prefill_end = clock.Now();
  RETURN_IF_ERROR(step.checkpoint());
  const int64_t rounds = probe == nullptr ? 1 : std::min<int64_t>(FLAGS_rounds, r->decode_tokens);
  double decode_s = 0;
  // A round's bandwidth is the better of the readings just before and just
  // after it (each reading serves the rounds on both sides), so that one
  // reading caught in a dip does not flatter the round.
  constexpr int kPassesPerReading = 2;
  double before = 0;
  if (probe != nullptr) {
    ASSIGN_OR_RETURN(before, probe->Measure(kPassesPerReading));
  }
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t tokens = r->decode_tokens * (round + 1) / rounds - r->decode_tokens * round / rounds;
    const absl::Time start = clock.Now();
    for (int64_t i = 0; i < tokens; ++i) {
      ASSIGN_OR_RETURN(next, step.forward({next}));
    }
    const double seconds = std::max(absl::ToDoubleSeconds(clock.Now() - start), 1e-9);
    decode_s += seconds;
    if (probe != nullptr) {
      ASSIGN_OR_RETURN(const double after, probe->Measure(kPassesPerReading));
      const double measured = std::max(before, after);
      r->round_measured_gb_per_s.push_back(measured);
      r->round_fractions.push_back(bytes_per_token * tokens / seconds / 1e9 / measured);
      before = after;
    }
  }
  RETURN_IF_ERROR(step.checkpoint());
  const double prefill_s = absl::ToDoubleSeconds(prefill_end - prefill_start);
  r->prefill_tokens_per_s = r->prompt_tokens / std::max(prefill_s, 1e-9);
  r->decode_tokens_per_s = r->decode_tokens / std::max(decode_s, 1e-9);
  r->ms_per_token = decode_s * 1e3 / r->decode_tokens;
  return absl::OkStatus();
}

absl::Status TimeSingleNode(const GgufFile& file, int64_t needed, uint64_t bytes_per_token,
                            ReadBandwidthProbe* probe, BenchResult* r) {
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                   CreateBackend(BackendNameFromFlags(), backend_options));
  EngineOptions engine_options;
  engine_options.max_seq_len = needed;
  engine_options.max_batch = r->prompt_tokens;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   Engine::Create(&file, backend.get(), engine_options));
  r->backend = backend->Describe();
  r->threads = backend->parallelism();
  Stepper step;
  step.forward = [&](absl::Span<const int32_t> tokens) -> absl::StatusOr<int32_t> {
    ASSIGN_OR_RETURN(const std::vector<float> logits, engine->Forward(tokens));
    return Argmax(logits);
  };
  step.reset = [&] {
    engine->Reset();
    return absl::OkStatus();
  };
  return TimeSteps(step, engine->config().vocab_size, bytes_per_token, probe, r);
}

// The cluster of --nodes/--transport/--workers; records every node's
// traffic per decode token.
absl::Status TimeCluster(std::shared_ptr<const GgufFile> file, const std::vector<int>& shares,
                         int64_t needed, uint64_t bytes_per_token, ReadBandwidthProbe* probe,
                         ClusterProcess* process, BenchResult* r) {
  ASSIGN_OR_RETURN(const BackendOptions backend_options, BackendOptionsFromFlags());
  RealClock clock;
  ASSIGN_OR_RETURN(std::unique_ptr<LaunchedCluster> cluster,
                   LaunchClusterFromFlags(r->model, std::move(file), shares, backend_options, needed, &clock,
                                          process));
  ClusterRoot* root = cluster->root();
  r->backend = cluster->describe();
  r->threads = backend_options.threads;  // 0: all cores (resolved in Bench)
  r->nodes = cluster->nodes();
  std::vector<std::vector<NodeTraffic>> checkpoints;
  Stepper step;
  step.forward = [&](absl::Span<const int32_t> tokens) -> absl::StatusOr<int32_t> {
    ASSIGN_OR_RETURN(const ShardedLogits logits, root->Forward(tokens));
    return logits.greedy.back();
  };
  step.reset = [&] { return root->Reset(); };
  step.checkpoint = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<NodeTraffic> t, root->CollectStats());
    checkpoints.push_back(std::move(t));
    return absl::OkStatus();
  };
  const absl::Status timed =
      TimeSteps(step, root->engine()->config().vocab_size, bytes_per_token, probe, r);
  const absl::Status stopped = cluster->Stop();
  RETURN_IF_ERROR(timed);
  RETURN_IF_ERROR(stopped);
  const std::vector<NodeTraffic>& a = checkpoints[0];
  const std::vector<NodeTraffic>& b = checkpoints[1];
  const double n = static_cast<double>(r->decode_tokens);
  for (size_t i = 0; i < a.size(); ++i) {
    r->traffic.push_back({(b[i].bytes_sent - a[i].bytes_sent) / n,
                          (b[i].bytes_received - a[i].bytes_received) / n,
                          absl::ToDoubleMilliseconds(b[i].sync - a[i].sync) / n,
                          absl::ToDoubleMilliseconds(b[i].compute - a[i].compute) / n});
  }
  return absl::OkStatus();
}

absl::StatusOr<BenchResult> Bench(ClusterProcess* process) {
  RETURN_IF_ERROR(CheckFlags());
  BenchResult r;
  ASSIGN_OR_RETURN(r.model, ResolveModelPath(ModelFlag()));
  r.prompt_tokens = FLAGS_prompt_tokens;
  r.decode_tokens = FLAGS_decode_tokens;
  ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> file, OpenModel(r.model));
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(*file));
  const int64_t needed = std::max(r.prompt_tokens + r.decode_tokens, FLAGS_warmup);
  if (needed > config.context_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--prompt-tokens + --decode-tokens = ", needed, " exceed the model's context of ",
        config.context_length));
  }
  ASSIGN_OR_RETURN(const uint64_t bytes_per_token, WeightBytesPerToken(*file));
  ASSIGN_OR_RETURN(const std::vector<int> shares, ClusterSharesFromFlags(*process));
  const bool gpu = BackendNameFromFlags() == "cuda";
  std::unique_ptr<ReadBandwidthProbe> probe;
  if (!gpu) {
    // Host memory: read between the decode rounds with the backend's threads.
    ASSIGN_OR_RETURN(const BackendOptions o, BackendOptionsFromFlags());
    ASSIGN_OR_RETURN(probe, ReadBandwidthProbe::Create(o.threads));
  }
  if (shares.size() > 1) {
    RETURN_IF_ERROR(TimeCluster(file, shares, needed, bytes_per_token, probe.get(), process, &r));
  } else {
    RETURN_IF_ERROR(TimeSingleNode(*file, needed, bytes_per_token, probe.get(), &r));
  }
  if (r.threads <= 0) {
    ASSIGN_OR_RETURN(const BackendOptions o, BackendOptionsFromFlags());
    r.threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  }

  r.weight_mb_per_token = bytes_per_token / 1e6;
  r.effective_gb_per_s = bytes_per_token * r.decode_tokens_per_s / 1e9;
  if (gpu) {
    // Decoding reads the weights from GPU memory: set it against that.
    ASSIGN_OR_RETURN(const BackendOptions o, BackendOptionsFromFlags());
    ASSIGN_OR_RETURN(const cuda::DeviceBandwidth bw, cuda::MeasureDeviceBandwidth(o.device));
    r.measured_gb_per_s = bw.measured_gb_per_s;
    r.bandwidth_device = absl::StrFormat("%s, peak %.0f GB/s", bw.device, bw.peak_gb_per_s);
    r.bandwidth_fraction = r.effective_gb_per_s / r.measured_gb_per_s;
  } else {
    r.measured_gb_per_s = Median(r.round_measured_gb_per_s);
    r.bandwidth_fraction = Median(r.round_fractions);
  }
  return r;
}

void PrintTable(const BenchResult& r) {
  const auto row = [](const char* name, const std::string& value) {
    std::printf("%-22s %s\n", name, value.c_str());
  };
  row("model", r.model);
  row("backend", r.backend);
  row("prompt tokens", absl::StrCat(r.prompt_tokens));
  row("decode tokens", absl::StrCat(r.decode_tokens));
  row("prefill tokens/s", absl::StrFormat("%.1f", r.prefill_tokens_per_s));
  row("decode tokens/s", absl::StrFormat("%.1f", r.decode_tokens_per_s));
  row("ms/token", absl::StrFormat("%.3f", r.ms_per_token));
  row("weight MB/token", absl::StrFormat("%.3f", r.weight_mb_per_token));
  row("effective GB/s", absl::StrFormat("%.3f", r.effective_gb_per_s));
  if (r.bandwidth_device.empty()) {
    const auto [lo, hi] = std::minmax_element(r.round_measured_gb_per_s.begin(),
                                              r.round_measured_gb_per_s.end());
    row("measured GB/s",
        absl::StrFormat("%.2f (%d threads; median of %d readings between decode rounds, %.2f-%.2f)",
                        r.measured_gb_per_s, r.threads, r.round_measured_gb_per_s.size(), *lo,
                        *hi));
    row("fraction of bandwidth",
        absl::StrFormat("%.1f%% (median of the rounds' ratios; whole decode over median "
                        "reading %.1f%%)",
                        100 * r.bandwidth_fraction,
                        100 * r.effective_gb_per_s / r.measured_gb_per_s));
  } else {
    row("measured GB/s", absl::StrFormat("%.2f (%s)", r.measured_gb_per_s, r.bandwidth_device));
    row("fraction of bandwidth", absl::StrFormat("%.1f%%", 100 * r.bandwidth_fraction));
  }
  if (r.traffic.empty()) return;
  std::printf("per decode token:\n  node  compute ms  sync ms  sent bytes  received bytes\n");
  for (size_t i = 0; i < r.traffic.size(); ++i) {
    const BenchResult::Traffic& t = r.traffic[i];
    std::printf("  %4zu  %10.2f  %7.2f  %10.0f  %14.0f\n", i, t.compute_ms, t.sync_ms,
                t.sent_bytes, t.received_bytes);
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  return std::isfinite(v) ? absl::StrFormat("%.6g", v) : "null";
}

std::string JsonNumbers(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&out, i ? ", " : "", JsonNumber(v[i]));
  return out + "]";
}

std::string TrafficJson(const BenchResult& r) {
  std::string out;
  for (size_t i = 0; i < r.traffic.size(); ++i) {
    const BenchResult::Traffic& t = r.traffic[i];
    absl::StrAppend(&out, i ? ", " : "", "{\"node\": ", i, ", \"sent_bytes\": ",
                    JsonNumber(t.sent_bytes), ", \"received_bytes\": ",
                    JsonNumber(t.received_bytes), ", \"sync_ms\": ", JsonNumber(t.sync_ms),
                    ", \"compute_ms\": ", JsonNumber(t.compute_ms), "}");
  }
  return out;
}

void PrintJson(const BenchResult& r) {
  std::printf(
      "{\"model\": %s, \"backend\": %s, \"threads\": %d, \"prompt_tokens\": %lld, "
      "\"decode_tokens\": %lld, \"prefill_tokens_per_s\": %s, \"decode_tokens_per_s\": %s, "
      "\"ms_per_token\": %s, \"weight_mb_per_token\": %s, \"effective_gb_per_s\": %s, "
      "\"measured_bandwidth_gb_per_s\": %s, \"bandwidth_fraction\": %s, "
      "\"round_measured_gb_per_s\": %s, \"round_fractions\": %s, \"nodes\": %d, "
      "\"traffic_per_decode_token\": [%s]}\n",
      JsonString(r.model).c_str(), JsonString(r.backend).c_str(), r.threads,
      static_cast<long long>(r.prompt_tokens), static_cast<long long>(r.decode_tokens),
      JsonNumber(r.prefill_tokens_per_s).c_str(), JsonNumber(r.decode_tokens_per_s).c_str(),
      JsonNumber(r.ms_per_token).c_str(), JsonNumber(r.weight_mb_per_token).c_str(),
      JsonNumber(r.effective_gb_per_s).c_str(), JsonNumber(r.measured_gb_per_s).c_str(),
      JsonNumber(r.bandwidth_fraction).c_str(), JsonNumbers(r.round_measured_gb_per_s).c_str(),
      JsonNumbers(r.round_fractions).c_str(), r.nodes, TrafficJson(r).c_str());
}

}  // namespace

int RunBench(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("bench", absl::InvalidArgumentError(absl::StrCat(
                             "unexpected argument '", args[0], "' (use --model PATH)")));
  }
  absl::StatusOr<std::unique_ptr<ClusterProcess>> process = ClusterProcess::FromFlags();
  if (!process.ok()) return Fail("bench", process.status());
  if ((*process)->is_worker()) return (*process)->ServeAsWorker("bench");
  absl::StatusOr<BenchResult> result = Bench(process->get());
  if (!result.ok()) return (*process)->Finish("bench", result.status());
  FLAGS_json ? PrintJson(*result) : PrintTable(*result);
  return 0;
}

}  // namespace shardlm::cli
