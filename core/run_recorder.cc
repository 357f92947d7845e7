#include "core/run_recorder.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/cluster_setup.h"
#include "core/text_proto.h"
#include "google/protobuf/text_format.h"

namespace shardlm {

uint64_t PayloadHash(absl::Span<const uint8_t> bytes) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

bool IsSetupTag(uint32_t tag) { return tag == kSetupTag || tag == kWeightsTag; }

namespace {

// The record of one call and its outcome (`payload`: what was sent or
// received; ignored when the call failed).
record::RecordedOp CallRecord(int64_t index, record::RecordedOp::Kind kind, int peer, uint32_t tag,
                              absl::Span<const uint8_t> payload, const absl::Status& s) {
  record::RecordedOp op;
  op.set_index(index);
  op.set_kind(kind);
  op.set_peer(peer);
  op.set_tag(tag);
  op.set_bytes(s.ok() ? payload.size() : 0);
  op.set_hash(s.ok() ? PayloadHash(payload) : 0);
  op.set_code(static_cast<int>(s.code()));
  if (!s.ok()) op.set_error(std::string(s.message()));
  return op;
}

}  // namespace

absl::Status ObservedTransport::Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                                     absl::Time deadline) {
  if (IsSetupTag(tag)) return inner_->Send(peer, tag, data, deadline);
  const int64_t index = next_++;
  absl::Status s =
      hooks_.before ? hooks_.before(index, record::RecordedOp::SEND, peer, tag) : absl::OkStatus();
  if (s.ok()) s = inner_->Send(peer, tag, data, deadline);
  if (hooks_.after) hooks_.after(CallRecord(index, record::RecordedOp::SEND, peer, tag, data, s));
  return s;
}

absl::StatusOr<std::vector<uint8_t>> ObservedTransport::Recv(int peer, uint32_t tag,
                                                             absl::Time deadline) {
  if (IsSetupTag(tag)) return inner_->Recv(peer, tag, deadline);
  const int64_t index = next_++;
  const absl::Status injected =
      hooks_.before ? hooks_.before(index, record::RecordedOp::RECV, peer, tag) : absl::OkStatus();
  absl::StatusOr<std::vector<uint8_t>> got =
      injected.ok() ? inner_->Recv(peer, tag, deadline) : injected;
  if (hooks_.after) {
    hooks_.after(CallRecord(index, record::RecordedOp::RECV, peer, tag,
                            got.ok() ? absl::MakeConstSpan(*got) : absl::Span<const uint8_t>(),
                            got.status()));
  }
  return got;
}

std::unique_ptr<Transport> RunRecorder::Wrap(Transport* inner, std::vector<int> workers) {
  auto number = std::make_shared<int32_t>(0);  // given at the first observed call
  ObservedTransport::Hooks hooks;
  hooks.after = [this, number, workers](const record::RecordedOp& op) {
    std::lock_guard<std::mutex> lock(mu_);
    if (*number == 0) {
      *number = ++sessions_;
      record::RecordedSession* s = recording_.add_sessions();
      s->set_number(*number);
      for (int w : workers) s->add_workers(w);
    }
    record::RecordedOp* r = recording_.add_ops();
    *r = op;
    r->set_session(*number);
  };
  return std::make_unique<ObservedTransport>(inner, std::move(hooks));
}

void RunRecorder::set_streamed(const std::vector<bool>& streamed) {
  std::lock_guard<std::mutex> lock(mu_);
  bool any = false;
  for (size_t r = 1; r < streamed.size(); ++r) any |= streamed[r];
  recording_.set_streamed(any);
}

void RunRecorder::BeginRequest(record::RecordedRequest request) {
  std::lock_guard<std::mutex> lock(mu_);
  *recording_.add_requests() = std::move(request);
}

void RunRecorder::AddToken(int32_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  if (recording_.requests_size() > 0) recording_.mutable_requests()->rbegin()->add_output(token);
}

void RunRecorder::EndRequest(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (recording_.requests_size() > 0 && !status.ok()) {
    recording_.mutable_requests()->rbegin()->set_error(std::string(status.message()));
  }
}

absl::Status RunRecorder::Save(const std::string& path) const {
  std::string text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!google::protobuf::TextFormat::PrintToString(recording_, &text)) {
      return absl::InternalError("cannot print the recording");
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << "# shardlm run recording (core/run_record.proto); replay: shardlm sim --replay "
      << path << "\n"
      << text;
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat("--record: cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<record::Recording> LoadRecording(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read recording ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  record::Recording r;
  const absl::Status parsed = ParseTextProto(ss.str(), path, &r);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a shardlm run recording (core/run_record.proto): ", parsed.message()));
  }
  if (r.nodes() < 1 || r.shares_size() != r.nodes() || r.model_path().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": recording lacks its cluster or model"));
  }
  return r;
}

}  // namespace shardlm
