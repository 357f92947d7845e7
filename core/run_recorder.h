// Recording what the root of a real cluster run does on its transport
// (core/run_record.proto), for `shardlm sim --replay`.
#ifndef SHARDLM_CORE_RUN_RECORDER_H_
#define SHARDLM_CORE_RUN_RECORDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/run_record.pb.h"
#include "core/transport.h"

namespace shardlm {

// FNV-1a over `bytes`: the payload hash recordings and replays compare.
uint64_t PayloadHash(absl::Span<const uint8_t> bytes);

// Whether a tag belongs to session setup or weight streaming, which
// recordings leave out (they depend on which workers hold a model copy).
bool IsSetupTag(uint32_t tag);

// A Transport that passes every call to `inner` and tells its hooks about
// it (setup tags excluded): `before` ahead of the call, `after` with its
// outcome. Thread-compatible, like the transport it wraps.
class ObservedTransport : public Transport {
 public:
  struct Hooks {
    // Before a call on a non-setup tag: (index, kind, peer, tag). An error
    // fails the call with it, without passing it on (replays use this to
    // fail a call where the recorded one failed).
    std::function<absl::Status(int64_t, record::RecordedOp::Kind, int, uint32_t)> before;
    // After it, with its outcome filled in (index and session unset).
    std::function<void(const record::RecordedOp&)> after;
  };
  ObservedTransport(Transport* inner, Hooks hooks) : inner_(inner), hooks_(std::move(hooks)) {}

  int rank() const override { return inner_->rank(); }
  int world_size() const override { return inner_->world_size(); }
  absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                    absl::Time deadline) override;
  absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag, absl::Time deadline) override;

 private:
  Transport* inner_;
  Hooks hooks_;
  int64_t next_ = 0;  // index of the next observed call
};

// Collects one run's recording. Sessions get their numbers when they run
// their first observed call; a session that failed during setup gets none.
// Thread-safe.
class RunRecorder {
 public:
  explicit RunRecorder(record::Recording header) : recording_(std::move(header)) {}

  // Wraps a new session's root transport (`workers`: node of each rank > 0).
  std::unique_ptr<Transport> Wrap(Transport* inner, std::vector<int> workers);

  // Which ranks of the first session received their weights from the root.
  void set_streamed(const std::vector<bool>& streamed);
  // A request starts; its tokens and outcome follow.
  void BeginRequest(record::RecordedRequest request);
  void AddToken(int32_t token);
  void EndRequest(const absl::Status& status);

  // Writes the recording as text to `path`.
  absl::Status Save(const std::string& path) const;

 private:
  mutable std::mutex mu_;
  record::Recording recording_;
  int32_t sessions_ = 0;
};

// Reads a recording written by RunRecorder::Save.
absl::StatusOr<record::Recording> LoadRecording(const std::string& path);

}  // namespace shardlm

#endif  // SHARDLM_CORE_RUN_RECORDER_H_
