// Transport: point-to-point byte movement between the ranks of one cluster.
// Collectives are written once on top of this interface (transport/).
#ifndef SHARDLM_CORE_TRANSPORT_H_
#define SHARDLM_CORE_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace shardlm {

class Clock;

// Options handed to a transport factory. Keys are transport-specific
// (for tcp: "workers", "port", "secret_file").
struct TransportOptions {
  int rank = 0;
  int world_size = 1;
  Clock* clock = nullptr;  // Not owned; required.
  std::map<std::string, std::string> params;
};

class Transport {
 public:
  static constexpr const char* kPluginKind = "transport";
  virtual ~Transport() = default;

  // This process's rank in [0, world_size()); rank 0 is the root.
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Sends `data` to `peer` under `tag`. Returns when the bytes are handed to
  // the transport (not necessarily delivered) or fails by `deadline`. A dead
  // or unreachable peer is an error (Unavailable / DeadlineExceeded), never
  // a hang or a crash.
  virtual absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                            absl::Time deadline) = 0;

  // Receives the next message from `peer` with `tag`, in send order for
  // that (peer, tag). Fails by `deadline`.
  virtual absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag,
                                                    absl::Time deadline) = 0;
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_TRANSPORT_H_
