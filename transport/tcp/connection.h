// Frames (transport/tcp/frame.h) over one TCP Socket.
#ifndef SHARDLM_TRANSPORT_TCP_CONNECTION_H_
#define SHARDLM_TRANSPORT_TCP_CONNECTION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "transport/tcp/frame.h"
#include "transport/tcp/socket.h"

namespace shardlm {
namespace tcp {

// Sends and receives whole frames. One sender and one receiver may run
// concurrently (each direction has its own lock).
//
// A RecvFrame that runs out of time mid-frame keeps what it has read and the
// next RecvFrame resumes it, so a deadline never desynchronizes the stream.
// A SendFrame that fails after sending part of a frame leaves the outgoing
// stream broken: later sends fail with FailedPrecondition. A received frame
// that fails validation (bad magic, version, size, checksum) breaks the
// incoming stream likewise. Errors name the peer.
class FramedConnection {
 public:
  explicit FramedConnection(Socket socket, uint32_t max_frame_size = kDefaultMaxFrameSize);

  FramedConnection(const FramedConnection&) = delete;
  FramedConnection& operator=(const FramedConnection&) = delete;

  // "host:port" of the other end.
  const std::string& peer() const { return socket_.peer(); }
  uint32_t max_frame_size() const { return max_frame_size_; }
  // Changes the largest frame accepted and sent (e.g. raised once the
  // handshake has authenticated the peer). Not thread-safe: call it only
  // while no other thread uses the connection.
  void set_max_frame_size(uint32_t max_frame_size) { max_frame_size_ = max_frame_size; }

  // Sends one frame by `deadline`. A payload over max_frame_size() is
  // InvalidArgument (nothing is sent).
  // SendFrame unless another send is under way (then nothing is sent and
  // the result is OK): for heartbeats, which must never wait behind data.
  absl::Status SendFrameIfIdle(uint16_t type, uint32_t tag, absl::Span<const uint8_t> payload,
                               absl::Time deadline);
  absl::Status SendFrame(uint16_t type, uint32_t tag, absl::Span<const uint8_t> payload,
                         absl::Time deadline);

  // Receives the next frame by `deadline`, validated.
  absl::StatusOr<Frame> RecvFrame(absl::Time deadline);

  // Whether the peer has closed the connection; see Socket::PeerClosed.
  bool PeerClosed() const { return socket_.PeerClosed(); }

  // Wakes blocked senders/receivers (their calls fail); see Socket::Shutdown.
  void Shutdown() { socket_.Shutdown(); }

 private:
  // Reads into the pending frame; requires recv_mu_.
  // SendFrame's work; send_mu_ is held.
  absl::Status SendLocked(uint16_t type, uint32_t tag, absl::Span<const uint8_t> payload,
                          absl::Time deadline);
  absl::Status ReadHeader(absl::Time deadline);
  absl::Status ReadPayload(absl::Time deadline);
  absl::Status WithPeer(const absl::Status& s) const;

  Socket socket_;
  uint32_t max_frame_size_;

  std::mutex send_mu_;
  bool send_broken_ = false;  // guarded by send_mu_

  std::mutex recv_mu_;
  absl::Status recv_error_;  // sticky validation error; guarded by recv_mu_
  // The partially received frame; guarded by recv_mu_.
  std::array<uint8_t, kFrameHeaderSize> header_buf_{};
  size_t header_got_ = 0;
  bool have_header_ = false;
  FrameHeader header_;
  std::vector<uint8_t> payload_;
  size_t payload_got_ = 0;
};

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_CONNECTION_H_
