#include "core/sharded_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/sampler.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

// Exact numerics needs the exact wire; fast numerics a float wire.
absl::Status CheckNumerics(Numerics numerics, WireFormat wire) {
  if (numerics == Numerics::kExact && wire != WireFormat::kExact) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharded engine: an exact-numerics backend needs wire format exact, got ",
        WireFormatName(wire), " (use a fast-numerics backend for f32/f16/q8_0)"));
  }
  if (numerics == Numerics::kFast && wire == WireFormat::kExact) {
    return absl::InvalidArgumentError(
        "sharded engine: a fast-numerics backend needs wire format f32, f16 or q8_0, got exact "
        "(the exact wire carries int64 fixed point from an exact-numerics backend)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShardedEngine>> ShardedEngine::Create(
    const GgufFile* file, const ShardPlan& plan, Backend* backend, Transport* transport,
    const ShardedEngineOptions& options) {
  RETURN_IF_ERROR(CheckNumerics(backend->numerics(), options.wire));
  if (options.clock == nullptr) return absl::InvalidArgumentError("sharded engine: no clock");
  if (plan.num_nodes() != transport->world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("sharded engine: plan has ", plan.num_nodes(),
                                                   " nodes, transport ",
                                                   transport->world_size(), " ranks"));
  }
  const int rank = transport->rank();
  ASSIGN_OR_RETURN(LlamaConfig config, LlamaConfigFromGguf(*file));
  ASSIGN_OR_RETURN(ShardWeights weights,
                   LoadShardWeights(*file, config, plan.nodes()[rank], backend));
  std::unique_ptr<ShardedEngine> engine(new ShardedEngine(
      backend, transport, std::move(config), plan.nodes(), rank, std::move(weights), options));
  RETURN_IF_ERROR(engine->Allocate());
  return engine;
}

absl::Status ShardedEngine::Allocate() {
  const LlamaConfig& c = config_;
  const NodeShard& s = shard_;
  max_seq_len_ = options_.max_seq_len > 0 ? options_.max_seq_len
                                          : std::min<int64_t>(c.context_length, 4096);
  max_batch_ = std::max<int64_t>(1, options_.max_batch);
  const int64_t q_dim = s.q_heads() * c.head_dim, kv_dim = s.kv_heads() * c.head_dim;
  const int64_t b = max_batch_;
  // A node without attention heads needs no attention buffers or KV cache.
  if (s.q_heads() > 0) {
    for (int64_t l = 0; l < c.n_layers; ++l) {
      ASSIGN_OR_RETURN(auto k, backend_->CreateActivation(max_seq_len_, kv_dim));
      ASSIGN_OR_RETURN(auto v, backend_->CreateActivation(max_seq_len_, kv_dim));
      k_cache_.push_back(std::move(k));
      v_cache_.push_back(std::move(v));
    }
    ASSIGN_OR_RETURN(q_, backend_->CreateActivation(b, q_dim));
    ASSIGN_OR_RETURN(k_, backend_->CreateActivation(b, kv_dim));
    ASSIGN_OR_RETURN(v_, backend_->CreateActivation(b, kv_dim));
    ASSIGN_OR_RETURN(attn_, backend_->CreateActivation(b, q_dim));
  }
  ASSIGN_OR_RETURN(x_, backend_->CreateActivation(b, c.dim));
  ASSIGN_OR_RETURN(xn_, backend_->CreateActivation(b, c.dim));
  ASSIGN_OR_RETURN(proj_, backend_->CreateActivation(b, c.dim));
  ASSIGN_OR_RETURN(gate_, backend_->CreateActivation(b, s.ffn_rows()));
  ASSIGN_OR_RETURN(up_, backend_->CreateActivation(b, s.ffn_rows()));
  ASSIGN_OR_RETURN(hidden_, backend_->CreateActivation(b, s.ffn_rows()));
  ASSIGN_OR_RETURN(logits_, backend_->CreateActivation(b, s.vocab_rows()));
  return absl::OkStatus();
}

absl::StatusOr<ShardedLogits> ShardedEngine::Forward(absl::Span<const int32_t> tokens,
                                                     bool all_logits) {
  RETURN_IF_ERROR(ValidateForwardTokens(tokens, position_, max_seq_len_, config_.vocab_size));
  ShardedLogits result;
  for (size_t start = 0; start < tokens.size(); start += max_batch_) {
    const size_t len = std::min<size_t>(max_batch_, tokens.size() - start);
    const bool last = start + len == tokens.size();
    RETURN_IF_ERROR(ForwardChunk(tokens.subspan(start, len), all_logits, last, &result));
  }
  return result;
}

absl::Status ShardedEngine::ForwardChunk(absl::Span<const int32_t> tokens, bool all_logits,
                                         bool last_chunk, ShardedLogits* result) {
  const LlamaConfig& c = config_;
  const int64_t n = tokens.size();
  std::vector<int32_t> positions(n);
  for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(position_ + i);

  RETURN_IF_ERROR(EmbedBroadcast(tokens));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    RETURN_IF_ERROR(AttentionBlock(l, positions));
    RETURN_IF_ERROR(FeedForwardBlock(l, n));
  }
  position_ += n;
  if (!all_logits && !last_chunk) return absl::OkStatus();

  RETURN_IF_ERROR(backend_->RmsNorm(*x_, *weights_.output_norm, c.rms_eps, n, xn_.get()));
  const Buffer* normed = xn_.get();
  int64_t rows = n;
  if (!all_logits && n > 1) {
    // Only the last token's logits are wanted: project that row alone.
    std::vector<float> last(c.dim);
    RETURN_IF_ERROR(backend_->Read(*xn_, n - 1, absl::MakeSpan(last)));
    RETURN_IF_ERROR(backend_->Write(last, 0, proj_.get()));
    normed = proj_.get();
    rows = 1;
  }
  const int64_t vrows = shard_.vocab_rows();
  RETURN_IF_ERROR(backend_->MatMul(*weights_.output, *normed, rows, logits_.get()));
  std::vector<float>& local = result->local;
  const size_t old = local.size();
  local.resize(old + rows * vrows);
  absl::Span<float> mine(local.data() + old, rows * vrows);
  RETURN_IF_ERROR(backend_->Read(*logits_, 0, mine));
  return GlobalGreedy(mine, rows, &result->greedy);
}

absl::Status ShardedEngine::EmbedBroadcast(absl::Span<const int32_t> tokens) {
  const int64_t count = static_cast<int64_t>(tokens.size()) * config_.dim;
  std::vector<uint8_t> bytes;
  host_.resize(count);
  if (transport_->rank() == 0) {
    RETURN_IF_ERROR(backend_->Embed(*weights_.token_embd, tokens, x_.get()));
    RETURN_IF_ERROR(backend_->Read(*x_, 0, absl::MakeSpan(host_)));
    bytes.resize(count * sizeof(float));
    std::memcpy(bytes.data(), host_.data(), bytes.size());
  }
  RETURN_IF_ERROR(Collective([&](absl::Time deadline) {
    return Broadcast(*transport_, 0, &bytes, options_.tag, deadline, &traffic_);
  }));
  if (transport_->rank() == 0) return absl::OkStatus();
  if (bytes.size() != count * sizeof(float)) {
    return absl::DataLossError(absl::StrCat("embedding broadcast: got ", bytes.size(),
                                            " bytes, expected ", count * sizeof(float)));
  }
  std::memcpy(host_.data(), bytes.data(), bytes.size());
  return backend_->Write(host_, 0, x_.get());
}

absl::Status ShardedEngine::AttentionBlock(int64_t l, absl::Span<const int32_t> positions) {
  const LlamaConfig& c = config_;
  const NodeShard& s = shard_;
  const LayerWeights& w = weights_.layers[l];
  const int64_t n = positions.size();
  // No heads here: only this rank's zero share of the wo all-reduce.
  if (s.q_heads() == 0) return RowParallelAdd(nullptr, nullptr, n);
  RETURN_IF_ERROR(backend_->RmsNorm(*x_, *w.attn_norm, c.rms_eps, n, xn_.get()));
  const Buffer* qkv[] = {w.wq.get(), w.wk.get(), w.wv.get()};
  Buffer* qkv_out[] = {q_.get(), k_.get(), v_.get()};
  RETURN_IF_ERROR(backend_->MatMulGroup(qkv, *xn_, n, qkv_out));
  RopeParams rope{s.q_heads(), c.head_dim, c.rope_dim, c.rope_theta, c.rope_layout};
  RETURN_IF_ERROR(backend_->Rope(rope, positions, q_.get()));
  rope.n_heads = s.kv_heads();
  RETURN_IF_ERROR(backend_->Rope(rope, positions, k_.get()));
  RETURN_IF_ERROR(backend_->StoreRows(*k_, positions, k_cache_[l].get()));
  RETURN_IF_ERROR(backend_->StoreRows(*v_, positions, v_cache_[l].get()));
  AttentionShape shape;
  shape.n_heads = s.q_heads();
  shape.n_kv_heads = s.kv_heads();
  shape.head_dim = c.head_dim;
  shape.group = c.n_heads / c.n_kv_heads;
  shape.q_head_offset = s.q_head_begin;
  shape.kv_head_offset = s.kv_head_begin;
  RETURN_IF_ERROR(backend_->Attention(shape, *q_, *k_cache_[l], *v_cache_[l], positions,
                                      attn_.get()));
  return RowParallelAdd(w.wo.get(), attn_.get(), n);
}

absl::Status ShardedEngine::FeedForwardBlock(int64_t l, int64_t n) {
  const LlamaConfig& c = config_;
  const LayerWeights& w = weights_.layers[l];
  RETURN_IF_ERROR(backend_->RmsNorm(*x_, *w.ffn_norm, c.rms_eps, n, xn_.get()));
  const Buffer* gate_up[] = {w.w_gate.get(), w.w_up.get()};
  Buffer* gate_up_out[] = {gate_.get(), up_.get()};
  RETURN_IF_ERROR(backend_->MatMulGroup(gate_up, *xn_, n, gate_up_out));
  RETURN_IF_ERROR(backend_->SiluMul(*gate_, *up_, n, hidden_.get()));
  return RowParallelAdd(w.w_down.get(), hidden_.get(), n);
}

absl::Status ShardedEngine::Collective(
    absl::FunctionRef<absl::Status(absl::Time deadline)> run) {
  const absl::Time start = options_.clock->Now();
  absl::Status status = run(start + options_.timeout);
  sync_time_ += options_.clock->Now() - start;
  return status;
}

absl::Status ShardedEngine::RowParallelAdd(const Buffer* w, const Buffer* in, int64_t n) {
  if (options_.wire != WireFormat::kExact) return RowParallelAddFast(w, in, n);
  const int64_t count = n * config_.dim;
  fixed_.resize(count);
  if (w != nullptr) {
    RETURN_IF_ERROR(backend_->MatMulFixed(*w, *in, n, absl::MakeSpan(fixed_)));
  } else {
    std::fill(fixed_.begin(), fixed_.end(), 0);
  }
  RETURN_IF_ERROR(Collective([&](absl::Time deadline) {
    return AllReduceSum(*transport_, absl::MakeSpan(fixed_), options_.algorithm, options_.tag,
                        deadline, &traffic_);
  }));
  host_.resize(count);
  for (int64_t i = 0; i < count; ++i) host_[i] = FixedToFloat(fixed_[i]);
  RETURN_IF_ERROR(backend_->Write(host_, 0, proj_.get()));
  return backend_->Add(*proj_, n, x_.get());
}

absl::Status ShardedEngine::RowParallelAddFast(const Buffer* w, const Buffer* in, int64_t n) {
  const int64_t count = n * config_.dim;
  host_.resize(count);
  if (w != nullptr) {
    RETURN_IF_ERROR(backend_->MatMul(*w, *in, n, proj_.get()));
    RETURN_IF_ERROR(backend_->Read(*proj_, 0, absl::MakeSpan(host_)));
  } else {
    std::fill(host_.begin(), host_.end(), 0.0f);
  }
  RETURN_IF_ERROR(Collective([&](absl::Time deadline) {
    return AllReduceSum(*transport_, absl::MakeSpan(host_), options_.wire, options_.algorithm,
                        options_.tag, deadline, &traffic_);
  }));
  RETURN_IF_ERROR(backend_->Write(host_, 0, proj_.get()));
  return backend_->Add(*proj_, n, x_.get());
}

absl::Status ShardedEngine::GlobalGreedy(absl::Span<const float> local, int64_t rows,
                                         std::vector<int32_t>* greedy) {
  const int64_t vrows = shard_.vocab_rows();
  // Per row: this rank's best value and its global id.
  std::vector<uint8_t> mine(rows * 8);
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t best = Argmax(local.subspan(i * vrows, vrows));
    const float value = local[i * vrows + best];
    const int32_t id = static_cast<int32_t>(shard_.vocab_begin + best);
    std::memcpy(&mine[i * 8], &value, 4);
    std::memcpy(&mine[i * 8 + 4], &id, 4);
  }
  std::vector<std::vector<uint8_t>> all;
  RETURN_IF_ERROR(Collective([&](absl::Time deadline) {
    return AllGather(*transport_, mine, &all, options_.tag, deadline, &traffic_);
  }));
  for (int64_t i = 0; i < rows; ++i) {
    float best_value = 0;
    int32_t best_id = -1;
    // Ranks hold ascending vocabulary ranges: a strictly greater value wins,
    // so ties keep the lowest id, as Argmax over the whole vector does.
    for (const std::vector<uint8_t>& entry : all) {
      if (entry.size() != mine.size()) return absl::DataLossError("greedy all-gather: bad size");
      float value;
      int32_t id;
      std::memcpy(&value, &entry[i * 8], 4);
      std::memcpy(&id, &entry[i * 8 + 4], 4);
      if (best_id < 0 || value > best_value || std::isnan(best_value)) {
        best_value = value;
        best_id = id;
      }
    }
    greedy->push_back(best_id);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ShardedEngine::GatherLogits(absl::Span<const float> local,
                                                               int64_t rows) {
  if (static_cast<int64_t>(local.size()) != rows * shard_.vocab_rows()) {
    return absl::InvalidArgumentError("GatherLogits: local logits are not rows x vocab rows");
  }
  std::vector<uint8_t> mine(local.size() * sizeof(float));
  std::memcpy(mine.data(), local.data(), mine.size());
  std::vector<std::vector<uint8_t>> all;
  RETURN_IF_ERROR(Collective([&](absl::Time deadline) {
    return AllGather(*transport_, mine, &all, options_.tag, deadline, &traffic_);
  }));
  const int64_t vocab = config_.vocab_size;
  std::vector<float> full(rows * vocab);
  for (size_t r = 0; r < all.size(); ++r) {
    const NodeShard& s = nodes_[r];
    const int64_t vr = s.vocab_rows();
    if (static_cast<int64_t>(all[r].size()) != rows * vr * 4) {
      return absl::DataLossError(absl::StrCat("GatherLogits: rank ", r, " sent ", all[r].size(),
                                              " bytes, expected ", rows * vr * 4));
    }
    for (int64_t i = 0; i < rows; ++i) {
      std::memcpy(&full[i * vocab + s.vocab_begin], all[r].data() + i * vr * 4, vr * 4);
    }
  }
  return full;
}

}  // namespace shardlm
