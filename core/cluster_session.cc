#include "core/cluster_session.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/wire.pb.h"
#include "transport/collectives.h"

namespace shardlm {
namespace {

constexpr size_t kCandidateBytes = 8;  // float logit, int32 id (little-endian)

std::vector<uint8_t> Serialize(const wire::ClusterCommand& command) {
  const std::string s = command.SerializeAsString();
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<uint8_t> EncodeCandidates(const std::vector<Candidate>& candidates) {
  std::vector<uint8_t> bytes(candidates.size() * kCandidateBytes);
  for (size_t i = 0; i < candidates.size(); ++i) {
    std::memcpy(&bytes[i * kCandidateBytes], &candidates[i].logit, 4);
    std::memcpy(&bytes[i * kCandidateBytes + 4], &candidates[i].id, 4);
  }
  return bytes;
}

absl::StatusOr<std::vector<Candidate>> DecodeCandidates(const std::vector<uint8_t>& bytes,
                                                        int rank, int64_t top_k) {
  if (bytes.size() % kCandidateBytes != 0 ||
      (top_k > 0 && static_cast<int64_t>(bytes.size() / kCandidateBytes) > top_k)) {
    return absl::DataLossError(
        absl::StrCat("cluster: rank ", rank, " sent ", bytes.size(), " bytes of candidates"));
  }
  std::vector<Candidate> candidates(bytes.size() / kCandidateBytes);
  for (size_t i = 0; i < candidates.size(); ++i) {
    std::memcpy(&candidates[i].logit, &bytes[i * kCandidateBytes], 4);
    std::memcpy(&candidates[i].id, &bytes[i * kCandidateBytes + 4], 4);
  }
  return candidates;
}

// This rank's top_k candidates of the last row of its local logits.
std::vector<Candidate> LocalCandidates(const ShardedEngine& engine, const ShardedLogits& logits,
                                       int64_t top_k) {
  const int64_t vrows = engine.shard().vocab_rows();
  absl::Span<const float> last(logits.local);
  last = last.subspan(last.size() - vrows, vrows);
  return TopCandidates(last, top_k, static_cast<int32_t>(engine.shard().vocab_begin));
}

// `engine`'s traffic, given the time it spent in Forward.
NodeTraffic Traffic(const ShardedEngine& engine, absl::Duration forward_time,
                    int64_t forward_tokens) {
  NodeTraffic t;
  t.bytes_sent = engine.traffic().bytes_sent;
  t.bytes_received = engine.traffic().bytes_received;
  t.sync = engine.sync_time();
  t.compute = std::max(absl::ZeroDuration(), forward_time - t.sync);
  t.forward_tokens = forward_tokens;
  return t;
}

}  // namespace

absl::StatusOr<ShardedLogits> ClusterRoot::Forward(absl::Span<const int32_t> tokens,
                                                   bool all_logits) {
  ASSIGN_OR_RETURN(ClusterStep step, Run(tokens, all_logits, /*top_k=*/0));
  return std::move(step.logits);
}

absl::StatusOr<ClusterStep> ClusterRoot::ForwardTopK(absl::Span<const int32_t> tokens,
                                                     int64_t top_k) {
  const int64_t vocab = engine_->config().vocab_size;
  return Run(tokens, /*all_logits=*/false, top_k <= 0 || top_k > vocab ? vocab : top_k);
}

absl::StatusOr<ClusterStep> ClusterRoot::Run(absl::Span<const int32_t> tokens, bool all_logits,
                                             int64_t top_k) {
  if (failed_ || stopped_) {
    return absl::FailedPreconditionError("cluster: the session has failed or stopped");
  }
  // Checked on the root before broadcasting, so a bad request fails without
  // starting a collective.
  RETURN_IF_ERROR(ValidateForwardTokens(tokens, engine_->position(), engine_->max_seq_len(),
                                        engine_->config().vocab_size));
  wire::ClusterCommand command;
  command.set_op(wire::ClusterCommand::FORWARD);
  for (int32_t t : tokens) command.add_tokens(t);
  command.set_all_logits(all_logits);
  command.set_top_k(static_cast<int32_t>(top_k));
  failed_ = true;  // until the whole step has succeeded
  RETURN_IF_ERROR(SendCommand(Serialize(command)));
  ClusterStep step;
  const absl::Time start = options_.clock->Now();
  ASSIGN_OR_RETURN(step.logits, engine_->Forward(tokens, all_logits));
  forward_time_ += options_.clock->Now() - start;
  forward_tokens_ += static_cast<int64_t>(tokens.size());
  if (top_k > 0) {
    ASSIGN_OR_RETURN(step.candidates, GatherCandidates(step.logits, top_k));
  }
  failed_ = false;
  return step;
}

absl::StatusOr<std::vector<Candidate>> ClusterRoot::GatherCandidates(const ShardedLogits& logits,
                                                                     int64_t top_k) {
  std::vector<std::vector<Candidate>> lists;
  lists.push_back(LocalCandidates(*engine_, logits, top_k));
  const absl::Time deadline = options_.clock->Now() + options_.timeout;
  for (int rank = 1; rank < transport_->world_size(); ++rank) {
    absl::StatusOr<std::vector<uint8_t>> bytes =
        transport_->Recv(rank, options_.candidate_tag, deadline);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("cluster: candidates from rank ", rank, ": ",
                                       bytes.status().message()));
    }
    ASSIGN_OR_RETURN(std::vector<Candidate> list, DecodeCandidates(*bytes, rank, top_k));
    lists.push_back(std::move(list));
  }
  return MergeCandidates(lists, top_k);
}

absl::Status ClusterRoot::SendCommand(const std::vector<uint8_t>& command) {
  std::vector<uint8_t> bytes = command;
  const absl::Status s = Broadcast(*transport_, 0, &bytes, options_.control_tag,
                                   options_.clock->Now() + options_.timeout);
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("cluster command: ", s.message()));
}

absl::Status ClusterRoot::Reset() {
  if (failed_ || stopped_) {
    return absl::FailedPreconditionError("cluster: the session has failed or stopped");
  }
  wire::ClusterCommand command;
  command.set_op(wire::ClusterCommand::RESET);
  failed_ = true;
  RETURN_IF_ERROR(SendCommand(Serialize(command)));
  failed_ = false;
  engine_->Reset();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NodeTraffic>> ClusterRoot::CollectStats() {
  if (failed_ || stopped_) {
    return absl::FailedPreconditionError("cluster: the session has failed or stopped");
  }
  wire::ClusterCommand command;
  command.set_op(wire::ClusterCommand::STATS);
  failed_ = true;
  RETURN_IF_ERROR(SendCommand(Serialize(command)));
  std::vector<NodeTraffic> all;
  all.push_back(Traffic(*engine_, forward_time_, forward_tokens_));
  const absl::Time deadline = options_.clock->Now() + options_.timeout;
  for (int rank = 1; rank < transport_->world_size(); ++rank) {
    absl::StatusOr<std::vector<uint8_t>> bytes =
        transport_->Recv(rank, options_.candidate_tag, deadline);
    wire::NodeStats stats;
    if (bytes.ok() && !stats.ParseFromArray(bytes->data(), static_cast<int>(bytes->size()))) {
      bytes = absl::DataLossError("unreadable");
    }
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(), absl::StrCat("cluster: stats from rank ", rank,
                                                              ": ", bytes.status().message()));
    }
    NodeTraffic t;
    t.bytes_sent = stats.bytes_sent();
    t.bytes_received = stats.bytes_received();
    t.sync = absl::Microseconds(stats.sync_us());
    t.compute = absl::Microseconds(stats.compute_us());
    t.forward_tokens = stats.forward_tokens();
    all.push_back(t);
  }
  failed_ = false;
  return all;
}

absl::Status ClusterRoot::Stop() {
  if (stopped_) return absl::OkStatus();
  if (failed_) return absl::FailedPreconditionError("cluster: not stopped cleanly after an error");
  wire::ClusterCommand command;
  command.set_op(wire::ClusterCommand::STOP);
  stopped_ = true;
  const absl::Status s = SendCommand(Serialize(command));
  if (!s.ok()) failed_ = true;
  return s;
}

absl::Status RunClusterWorker(ShardedEngine* engine, Transport* transport,
                              const ClusterOptions& options) {
  absl::Duration forward_time = absl::ZeroDuration();
  int64_t forward_tokens = 0;
  for (;;) {
    std::vector<uint8_t> bytes;
    RETURN_IF_ERROR(Broadcast(*transport, 0, &bytes, options.control_tag,
                              options.clock->Now() + options.idle_timeout));
    wire::ClusterCommand command;
    if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError("cluster worker: unreadable command from the root");
    }
    switch (command.op()) {
      case wire::ClusterCommand::STOP:
        return absl::OkStatus();
      case wire::ClusterCommand::RESET:
        engine->Reset();
        break;
      case wire::ClusterCommand::FORWARD: {
        const std::vector<int32_t> tokens(command.tokens().begin(), command.tokens().end());
        const absl::Time start = options.clock->Now();
        ASSIGN_OR_RETURN(const ShardedLogits logits,
                         engine->Forward(tokens, command.all_logits()));
        forward_time += options.clock->Now() - start;
        forward_tokens += static_cast<int64_t>(tokens.size());
        if (command.top_k() > 0) {
          RETURN_IF_ERROR(transport->Send(
              0, options.candidate_tag,
              EncodeCandidates(LocalCandidates(*engine, logits, command.top_k())),
              options.clock->Now() + options.timeout));
        }
        break;
      }
      case wire::ClusterCommand::STATS: {
        const NodeTraffic t = Traffic(*engine, forward_time, forward_tokens);
        wire::NodeStats stats;
        stats.set_bytes_sent(t.bytes_sent);
        stats.set_bytes_received(t.bytes_received);
        stats.set_sync_us(absl::ToInt64Microseconds(t.sync));
        stats.set_compute_us(absl::ToInt64Microseconds(t.compute));
        stats.set_forward_tokens(t.forward_tokens);
        const std::string bytes = stats.SerializeAsString();
        RETURN_IF_ERROR(transport->Send(
            0, options.candidate_tag,
            absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
            options.clock->Now() + options.timeout));
        break;
      }
      default:
        return absl::DataLossError(
            absl::StrCat("cluster worker: unknown command ", static_cast<int>(command.op())));
    }
  }
}

int64_t ClusterStepper::position() const { return root_->engine()->position(); }

int64_t ClusterStepper::max_seq_len() const { return root_->engine()->max_seq_len(); }

absl::StatusOr<int32_t> ClusterStepper::Step(absl::Span<const int32_t> tokens, Sampler* sampler) {
  if (sampler->greedy()) {
    ASSIGN_OR_RETURN(const ShardedLogits logits, root_->Forward(tokens));
    return logits.greedy.back();
  }
  ASSIGN_OR_RETURN(const ClusterStep step, root_->ForwardTopK(tokens, sampler->options().top_k));
  return sampler->SampleCandidates(step.candidates);
}

absl::StatusOr<GenerationStats> GenerateDistributed(
    ClusterRoot* root, Sampler* sampler, absl::Span<const int32_t> prompt, int64_t steps,
    int32_t eos_id, Clock* clock, const std::function<absl::Status(int32_t)>& on_token) {
  ClusterStepper stepper(root);
  return Generate(&stepper, sampler, prompt, steps, eos_id, clock, on_token);
}

}  // namespace shardlm
