#include "core/cluster_setup.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/gguf_image.h"
#include "core/hf_model.h"
#include "core/model_loader.h"
#include "core/model_config.h"
#include "core/sha256.h"
#include "core/shard_weights.h"
#include "core/status_macros.h"
#include "core/wire.h"
#include "core/wire.pb.h"

namespace shardlm {
namespace {

constexpr size_t kRecordHeader = 12;             // offset u64, length u32
constexpr size_t kWeightMessageBytes = 4 << 20;  // records per message, at most

std::vector<uint8_t> ToBytes(const google::protobuf::MessageLite& m) {
  const std::string s = m.SerializeAsString();
  return std::vector<uint8_t>(s.begin(), s.end());
}

absl::Status SendProto(Transport* t, int peer, uint32_t tag, const google::protobuf::MessageLite& m,
                       absl::Time deadline) {
  return t->Send(peer, tag, ToBytes(m), deadline);
}

template <typename Message>
absl::StatusOr<Message> RecvProto(Transport* t, int peer, uint32_t tag, absl::Time deadline,
                                  const char* what) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, t->Recv(peer, tag, deadline));
  Message m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("unreadable ", what, " from rank ", peer));
  }
  return m;
}

absl::Status WithRank(int rank, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("rank ", rank, ": ", s.message()));
}

}  // namespace

ShardedEngineOptions SessionEngineOptions(const SessionSettings& s, Clock* clock) {
  ShardedEngineOptions o;
  o.max_seq_len = s.max_seq_len;
  o.max_batch = s.max_batch;
  o.clock = clock;
  o.timeout = s.timeout;
  o.algorithm = s.algorithm;
  o.wire = s.wire;
  return o;
}

namespace {

absl::StatusOr<ShardPlan> PlanFor(const GgufFile& file, const std::vector<int>& shares) {
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(file));
  ASSIGN_OR_RETURN(const PlanWeightInfo info, PlanWeightInfo::FromGguf(file));
  return ShardPlan::Create(config, shares, info);
}

// The first byte of `file`'s image (its tensors point into it).
const uint8_t* FileBase(const GgufFile& file) {
  const GgufTensorInfo& t = file.tensors().front();
  return t.data - file.data_offset() - t.offset;
}

// Sends rank `rank` the bytes of its slices as records, then their hash.
// Streams `node`'s slices to `rank`; returns the bytes of weights sent.
absl::StatusOr<uint64_t> StreamWeights(const GgufFile& file, const NodeShard& node, int rank,
                                       const ByteRangeSet& held, Transport* transport,
                                       Clock* clock, absl::Duration timeout,
                                       const WeightProgress& progress) {
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(file));
  ASSIGN_OR_RETURN(const std::vector<ByteRange> slices, ShardByteRanges(file, config, node));
  const std::vector<ByteRange> ranges = held.Missing(slices);
  const uint8_t* base = FileBase(file);
  wire::WeightHeader header;
  header.set_gguf_header(base, file.data_offset());
  header.set_file_size(file.file_size());
  uint64_t total = 0;
  for (const ByteRange& r : ranges) total += r.size;
  header.set_total_bytes(total);
  RETURN_IF_ERROR(SendProto(transport, rank, kWeightsTag, header, clock->Now() + timeout));
  Sha256 hash;
  std::vector<uint8_t> message;
  uint64_t sent = 0;
  auto flush = [&]() -> absl::Status {
    if (message.empty()) return absl::OkStatus();
    hash.Update(message);
    RETURN_IF_ERROR(transport->Send(rank, kWeightsTag, message, clock->Now() + timeout));
    message.clear();
    if (progress) progress(rank, sent, total);
    return absl::OkStatus();
  };
  for (const ByteRange& r : ranges) {
    for (uint64_t done = 0; done < r.size;) {
      if (message.size() + kRecordHeader + 1 > kWeightMessageBytes) RETURN_IF_ERROR(flush());
      const uint64_t room = kWeightMessageBytes - message.size() - kRecordHeader;
      const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(r.size - done, room));
      const uint64_t offset = r.offset + done;
      const size_t at = message.size();
      message.resize(at + kRecordHeader + len);
      std::memcpy(&message[at], &offset, 8);
      std::memcpy(&message[at + 8], &len, 4);
      std::memcpy(&message[at + kRecordHeader], base + offset, len);
      done += len;
      sent += len;
    }
  }
  RETURN_IF_ERROR(flush());
  wire::WeightDone done;
  done.set_sha256(hash.Finish());
  RETURN_IF_ERROR(SendProto(transport, rank, kWeightsTag, done, clock->Now() + timeout));
  return sent;
}

// The ranges a worker says it holds, checked against the file (a peer's
// record is untrusted).
absl::StatusOr<ByteRangeSet> HeldRanges(const wire::SessionAccept& accept, uint64_t file_size) {
  constexpr int kMaxHeldRanges = 1 << 20;
  if (accept.held_offsets_size() != accept.held_sizes_size() ||
      accept.held_offsets_size() > kMaxHeldRanges) {
    return absl::InvalidArgumentError("malformed list of held weight ranges");
  }
  std::vector<ByteRange> held;
  for (int i = 0; i < accept.held_offsets_size(); ++i) {
    const uint64_t offset = accept.held_offsets(i), size = accept.held_sizes(i);
    if (offset > file_size || size > file_size - offset) {
      return absl::InvalidArgumentError("held weight range outside the model file");
    }
    held.push_back({offset, size});
  }
  return ByteRangeSet(held);
}

}  // namespace

absl::StatusOr<ModelSource> OpenModelSource(
    const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress,
    FileMemory memory) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, OpenModelFile(path, nullptr, memory));
  return ModelSourceFromFile(path, std::move(file), progress);
}

absl::StatusOr<ModelSource> ModelSourceFromFile(
    const std::string& path, std::shared_ptr<const GgufFile> file,
    const std::function<void(uint64_t, uint64_t)>& progress) {
  ModelSource source;
  source.path = path;
  if (file->tensors().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the model has no tensors"));
  }
  source.file = std::move(file);
  if (IsHfModelDir(path)) {
    // The image converted in memory: the same bytes `shardlm convert` writes.
    Sha256 hash;
    hash.Update(source.file->bytes());
    source.sha256 = hash.Finish();
  } else {
    ASSIGN_OR_RETURN(source.sha256, Sha256File(path, progress));
  }
  return source;
}

absl::StatusOr<RootSession> StartClusterRoot(const ModelSource& model,
                                             const SessionSettings& settings, Backend* backend,
                                             Transport* transport, Clock* clock,
                                             const WeightProgress& progress) {
  const int world = transport->world_size();
  if (static_cast<int>(settings.shares.size()) != world) {
    return absl::InvalidArgumentError(absl::StrCat(settings.shares.size(),
                                                   " shares for a cluster of ", world, " nodes"));
  }
  ASSIGN_OR_RETURN(const ShardPlan plan, PlanFor(*model.file, settings.shares));
  ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(*model.file));
  wire::SessionSetup setup;
  for (int s : settings.shares) setup.add_shares(s);
  setup.set_max_seq_len(settings.max_seq_len);
  setup.set_max_batch(settings.max_batch);
  setup.set_numerics(NumericsName(settings.numerics));
  setup.set_wire(WireFormatName(settings.wire));
  setup.set_algorithm(AllReduceAlgorithmName(settings.algorithm));
  setup.set_model_sha256(model.sha256);
  setup.set_model_size(model.file->file_size());
  setup.set_model_name(model.path.substr(model.path.find_last_of('/') + 1));
  setup.set_timeout_ms(absl::ToInt64Milliseconds(settings.timeout));
  *setup.mutable_config() = ToWire(config);
  for (int r = 1; r < world; ++r) {
    RETURN_IF_ERROR(WithRank(
        r, SendProto(transport, r, kSetupTag, setup, clock->Now() + settings.timeout)));
  }
  RootSession session;
  session.streamed.assign(world, false);
  session.backends.assign(world, "");
  std::vector<ByteRangeSet> held(world);
  for (int r = 1; r < world; ++r) {
    absl::StatusOr<wire::SessionAccept> accept = RecvProto<wire::SessionAccept>(
        transport, r, kSetupTag, clock->Now() + settings.timeout, "session answer");
    if (accept.ok() && !accept->error().empty()) {
      accept = absl::FailedPreconditionError(accept->error());
    }
    RETURN_IF_ERROR(WithRank(r, accept.status()));
    session.streamed[r] = accept->need_weights();
    absl::StatusOr<ByteRangeSet> h = HeldRanges(*accept, model.file->file_size());
    RETURN_IF_ERROR(WithRank(r, h.status()));
    held[r] = *std::move(h);
  }
  for (int r = 1; r < world; ++r) {
    if (!session.streamed[r]) continue;
    absl::StatusOr<uint64_t> sent = StreamWeights(*model.file, plan.nodes()[r], r, held[r],
                                                  transport, clock, settings.timeout, progress);
    RETURN_IF_ERROR(WithRank(r, sent.status()));
    session.streamed_bytes += static_cast<int64_t>(*sent);
  }
  ASSIGN_OR_RETURN(session.engine,
                   ShardedEngine::Create(model.file.get(), plan, backend, transport,
                                         SessionEngineOptions(settings, clock)));
  session.backends[0] = backend->Describe();
  for (int r = 1; r < world; ++r) {
    absl::StatusOr<wire::SessionReady> ready = RecvProto<wire::SessionReady>(
        transport, r, kSetupTag, clock->Now() + settings.timeout, "ready report");
    if (ready.ok() && !ready->error().empty()) {
      ready = absl::FailedPreconditionError(ready->error());
    }
    RETURN_IF_ERROR(WithRank(r, ready.status()));
    session.backends[r] = ready->backend();
  }
  return session;
}

namespace {

// The settings the root sent, checked (a peer's record is untrusted).
absl::StatusOr<SessionSettings> SettingsFromWire(const wire::SessionSetup& setup, int world) {
  SessionSettings s;
  s.shares.assign(setup.shares().begin(), setup.shares().end());
  if (static_cast<int>(s.shares.size()) != world) {
    return absl::InvalidArgumentError(absl::StrCat("the root sent ", s.shares.size(),
                                                   " shares for ", world, " nodes"));
  }
  if (setup.max_seq_len() < 0 || setup.max_batch() < 1 || setup.timeout_ms() <= 0) {
    return absl::InvalidArgumentError("the root sent out-of-range session settings");
  }
  s.max_seq_len = setup.max_seq_len();
  s.max_batch = setup.max_batch();
  s.timeout = absl::Milliseconds(setup.timeout_ms());
  ASSIGN_OR_RETURN(s.numerics, ParseNumerics(setup.numerics()));
  ASSIGN_OR_RETURN(s.wire, ParseWireFormat(setup.wire()));
  ASSIGN_OR_RETURN(s.algorithm, ParseAllReduceAlgorithm(setup.algorithm()));
  return s;
}

// Receives the streamed slices into `into`'s image of the root's file (a
// new one unless it holds the same model) and returns the image.
absl::StatusOr<std::shared_ptr<const GgufFile>> ReceiveWeights(Transport* transport,
                                                               const wire::SessionSetup& setup,
                                                               StreamedWeights* into,
                                                               Clock* clock,
                                                               absl::Duration timeout,
                                                               uint64_t* received_bytes) {
  ASSIGN_OR_RETURN(const wire::WeightHeader header,
                   RecvProto<wire::WeightHeader>(transport, 0, kWeightsTag,
                                                 clock->Now() + timeout, "weight header"));
  if (into->image() == nullptr || into->sha256() != setup.model_sha256() ||
      into->image()->file_size() != header.file_size()) {
    const std::string& h = header.gguf_header();
    RETURN_IF_ERROR(into->Reset(
        setup.model_sha256(),
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(h.data()), h.size()),
        header.file_size(), absl::StrCat(setup.model_name(), " (streamed from the root)")));
  }
  GgufImageBuilder* image = into->image();
  Sha256 hash;
  uint64_t got = 0;
  std::vector<ByteRange> received;
  while (got < header.total_bytes()) {
    ASSIGN_OR_RETURN(std::vector<uint8_t> message,
                     transport->Recv(0, kWeightsTag, clock->Now() + timeout));
    hash.Update(message);
    for (size_t at = 0; at < message.size();) {
      uint64_t offset;
      uint32_t len;
      if (message.size() - at < kRecordHeader) return absl::DataLossError("torn weight record");
      std::memcpy(&offset, &message[at], 8);
      std::memcpy(&len, &message[at + 8], 4);
      at += kRecordHeader;
      if (len > message.size() - at) return absl::DataLossError("torn weight record");
      RETURN_IF_ERROR(image->Write(offset, absl::MakeConstSpan(&message[at], len)));
      received.push_back({offset, len});
      at += len;
      got += len;
    }
  }
  if (got != header.total_bytes()) {
    return absl::DataLossError(absl::StrCat("received ", got, " weight bytes, expected ",
                                            header.total_bytes()));
  }
  ASSIGN_OR_RETURN(const wire::WeightDone done,
                   RecvProto<wire::WeightDone>(transport, 0, kWeightsTag,
                                               clock->Now() + timeout, "weight digest"));
  if (hash.Finish() != done.sha256()) {
    return absl::DataLossError("the streamed weights fail their SHA-256 check");
  }
  into->MarkHeld(received);
  *received_bytes = got;
  return into->File();
}

// After the setup arrived: everything up to the ready report.
absl::Status LoadWorker(Transport* transport, const wire::SessionSetup& setup,
                        const ModelSource* local, const WorkerBackendFactory& make_backend,
                        Clock* clock, const std::function<ShardPlan(const ShardPlan&)>& plan_hook,
                        StreamedWeights* cache, WorkerSession* session) {
  ASSIGN_OR_RETURN(const SessionSettings settings,
                   SettingsFromWire(setup, transport->world_size()));
  session->model_name = setup.model_name();
  session->streamed = local == nullptr || local->sha256 != setup.model_sha256();
  if (!session->streamed) session->file = local->file;
  StreamedWeights one_session;  // without a cache: this session's image only
  StreamedWeights* weights = cache != nullptr ? cache : &one_session;
  wire::SessionAccept accept;
  accept.set_need_weights(session->streamed);
  if (session->streamed && weights->sha256() == setup.model_sha256()) {
    for (const ByteRange& r : weights->held().ranges()) {
      accept.add_held_offsets(r.offset);
      accept.add_held_sizes(r.size);
    }
  }
  RETURN_IF_ERROR(SendProto(transport, 0, kSetupTag, accept, clock->Now() + settings.timeout));
  if (session->streamed) {
    uint64_t received = 0;
    ASSIGN_OR_RETURN(session->file, ReceiveWeights(transport, setup, weights, clock,
                                                   settings.timeout, &received));
    session->weight_bytes_received = static_cast<int64_t>(received);
  }
  ASSIGN_OR_RETURN(ShardPlan plan, PlanFor(*session->file, settings.shares));
  if (plan_hook) plan = plan_hook(plan);
  if (session->streamed) {
    // What earlier sessions left and this one does not use goes back.
    ASSIGN_OR_RETURN(const LlamaConfig config, LlamaConfigFromGguf(*session->file));
    ASSIGN_OR_RETURN(const std::vector<ByteRange> needed,
                     ShardByteRanges(*session->file, config, plan.nodes()[transport->rank()]));
    weights->KeepOnly(needed);
    session->weight_bytes_kept =
        static_cast<int64_t>(TotalBytes(needed)) - session->weight_bytes_received;
  }
  ASSIGN_OR_RETURN(session->backend, make_backend(settings.numerics));
  ASSIGN_OR_RETURN(session->engine,
                   ShardedEngine::Create(session->file.get(), plan, session->backend.get(),
                                         transport, SessionEngineOptions(settings, clock)));
  session->cluster.clock = clock;
  session->cluster.timeout = settings.timeout;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerSession>> JoinClusterSession(
    Transport* transport, const ModelSource* local, const WorkerBackendFactory& make_backend,
    Clock* clock, absl::Duration setup_timeout,
    const std::function<ShardPlan(const ShardPlan&)>& plan_hook, StreamedWeights* cache) {
  ASSIGN_OR_RETURN(const wire::SessionSetup setup,
                   RecvProto<wire::SessionSetup>(transport, 0, kSetupTag,
                                                 clock->Now() + setup_timeout, "session setup"));
  auto session = std::make_unique<WorkerSession>();
  // A failure before the SessionAccept reaches the root in its place: both
  // records carry `error` as field 1, so the root reads it either way.
  const absl::Status loaded = LoadWorker(transport, setup, local, make_backend, clock,
                                         plan_hook, cache, session.get());
  wire::SessionReady ready;
  if (!loaded.ok()) {
    ready.set_error(std::string(loaded.message()));
  } else {
    ready.set_backend(session->backend->Describe());
    ready.set_streamed(session->streamed);
  }
  const absl::Time deadline = clock->Now() + absl::Milliseconds(std::max<int64_t>(
                                                 setup.timeout_ms(), 1000));
  const absl::Status sent = SendProto(transport, 0, kSetupTag, ready, deadline);
  RETURN_IF_ERROR(loaded);
  RETURN_IF_ERROR(sent);
  return session;
}

}  // namespace shardlm
