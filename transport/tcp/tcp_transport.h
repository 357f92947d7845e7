// The TCP transport: one rank of a cluster whose ranks are joined pairwise
// by authenticated FramedConnections (transport/tcp/mesh.h builds them).
// Every message is one kFrameData frame carrying its tag; a reader thread per
// peer sorts incoming frames into (peer, tag) mailboxes that Recv drains.
#ifndef SHARDLM_TRANSPORT_TCP_TCP_TRANSPORT_H_
#define SHARDLM_TRANSPORT_TCP_TCP_TRANSPORT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"
#include "core/transport.h"
#include "transport/tcp/connection.h"

namespace shardlm {
namespace tcp {

// Semantics, beyond core/transport.h:
//  - Send writes the whole frame to the peer's socket by `deadline` (so it
//    blocks only while the kernel's buffers are full); sending to oneself
//    queues locally.
//  - Messages of one (peer, tag) arrive in send order; tags are independent.
//  - When a peer's connection fails (closed, reset, a corrupt frame), Recv
//    from that peer still returns what had arrived, then fails promptly with
//    Unavailable naming the rank and its address; Send to it fails too.
//  - On a worker (rank > 0), once the root's connection has failed every
//    Recv fails promptly: the session is over, whoever it was waiting for.
//  - Abort() (or destruction) closes every connection: pending and later
//    calls fail, and the peers see their connection to this rank fail.
//  - With a failure timeout, every link carries a heartbeat whenever it has
//    been quiet for a quarter of it, even while this rank computes or idles;
//    a peer heard from neither data nor heartbeats for the whole timeout is
//    declared dead: its connection is closed and calls on it fail with
//    Unavailable saying it went silent. A pause shorter than the timeout
//    costs time only.
class TcpTransport : public Transport {
 public:
  // `peers[r]` is the connection to rank r (null for r == rank). Starts one
  // reader thread per connection, and a heartbeat thread when
  // `failure_timeout` is positive and finite. Deadlines are read on `clock`
  // (not owned).
  TcpTransport(int rank, std::vector<std::unique_ptr<FramedConnection>> peers, Clock* clock,
               absl::Duration failure_timeout = absl::ZeroDuration());
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return static_cast<int>(peers_.size()); }

  absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                    absl::Time deadline) override;
  absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag, absl::Time deadline) override;

  // Closes every connection and joins the readers. Idempotent.
  void Abort();

  // "host:port" of rank r's connection ("self" for this rank).
  std::string PeerName(int peer) const;

  // Stops (or resumes) sending heartbeats, as a frozen process would: for
  // tests of failure detection.
  void PauseHeartbeatsForTesting(bool paused);

 private:
  using Key = std::pair<int, uint32_t>;  // (source rank, tag)

  void ReadLoop(int peer);
  // Sends heartbeats on quiet links and declares silent peers dead, every
  // heartbeat interval until Abort.
  void HeartbeatLoop();
  absl::Status CheckPeer(const char* op, int peer) const;

  const int rank_;
  std::vector<std::unique_ptr<FramedConnection>> peers_;
  Clock* const clock_;
  const absl::Duration failure_timeout_;  // zero: no heartbeats
  std::vector<std::thread> readers_;
  std::thread heartbeat_thread_;

  std::mutex mu_;
  std::condition_variable arrived_;
  std::condition_variable aborting_;            // wakes the heartbeat thread
  bool aborted_ = false;                        // guarded by mu_
  std::vector<absl::Status> peer_error_;        // guarded by mu_; OK while alive
  std::map<Key, std::deque<std::vector<uint8_t>>> mailboxes_;  // guarded by mu_
  std::vector<absl::Time> last_heard_;          // guarded by mu_: per peer, any frame
  std::vector<absl::Time> last_sent_;           // guarded by mu_: per peer, any frame
  bool heartbeats_paused_ = false;              // guarded by mu_
};

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_TCP_TRANSPORT_H_
