// The in-process transport: every rank of a cluster is a thread of one
// process and messages are byte copies between mailboxes of a shared LocalHub.
// Used by tests, by `generate --nodes N --transport local`, and as the
// reference behaviour the other transports are compared against.
#ifndef SHARDLM_TRANSPORT_LOCAL_LOCAL_TRANSPORT_H_
#define SHARDLM_TRANSPORT_LOCAL_LOCAL_TRANSPORT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"
#include "core/transport.h"

namespace shardlm {

class LocalEndpoint;

// The shared state of one in-process cluster: one FIFO mailbox per
// (source, destination, tag). Create it once, then hand Endpoint(r) to the
// thread that plays rank r. Thread-safe. Deadlines are real (wall) time.
//
// Semantics every endpoint follows:
//  - Send copies the bytes into the destination's mailbox and never blocks.
//    It fails with Unavailable when the sender or the destination has been
//    killed or the hub has been shut down.
//  - Recv returns the oldest message from (peer, tag); messages of one
//    (source, destination, tag) arrive in send order, tags are independent.
//    It waits until `deadline` (DeadlineExceeded naming peer and tag), and
//    fails promptly with Unavailable when the receiver or the peer is killed
//    or the hub shuts down while it waits. Messages a peer sent before it was
//    killed are still delivered (they were already handed over).
//  - A rank may send to itself.
//  - An endpoint for a rank outside [0, world_size) fails every call with
//    InvalidArgument; so does a call naming a peer outside that range.
class LocalHub : public std::enable_shared_from_this<LocalHub> {
 public:
  // A hub for ranks 0 .. world_size-1. Deadlines passed to its endpoints are
  // read on `clock` (the one the callers compute them with; not owned, must
  // outlive the hub); nullptr means real time.
  static std::shared_ptr<LocalHub> Create(int world_size, Clock* clock = nullptr);

  LocalHub(const LocalHub&) = delete;
  LocalHub& operator=(const LocalHub&) = delete;

  int world_size() const { return world_size_; }

  // The transport of `rank`. Endpoints keep the hub alive; several endpoints
  // for one rank share that rank's mailboxes.
  std::unique_ptr<Transport> Endpoint(int rank);

  // Simulates a crashed node: `rank`'s own calls fail from now on and peers
  // that send to it, or wait on it, get Unavailable promptly. Irreversible.
  void Kill(int rank);

  // Whether Kill(rank) has been called.
  bool IsDead(int rank) const;

  // Fails every pending and future call on every endpoint with Unavailable.
  void Shutdown();

  // Messages queued and not yet received, over all mailboxes (for tests).
  int64_t PendingMessages() const;

 private:
  friend class LocalEndpoint;
  using MailboxKey = std::tuple<int, int, uint32_t>;  // (src, dst, tag)

  LocalHub(int world_size, Clock* clock);

  absl::Status Send(int src, int dst, uint32_t tag, absl::Span<const uint8_t> data);
  absl::StatusOr<std::vector<uint8_t>> Recv(int dst, int src, uint32_t tag, absl::Time deadline);

  // InvalidArgument unless both ranks are in range.
  absl::Status CheckRanks(const char* op, int self, int peer) const;
  // Unavailable if the hub is shut down or either rank is dead. Requires mu_.
  absl::Status CheckAlive(const char* op, int self, int peer, uint32_t tag) const;

  const int world_size_;
  Clock* const clock_;  // nullptr: real time
  // std::mutex rather than absl::Mutex: the system Abseil is not built with
  // ThreadSanitizer, so its Mutex is invisible to --config=tsan and every
  // access it guards would be reported as a race.
  mutable std::mutex mu_;
  // wakeup_[r] wakes ranks waiting in Recv on rank r's mailboxes.
  std::vector<std::condition_variable> wakeup_;
  bool shut_down_ = false;   // guarded by mu_
  std::vector<bool> dead_;   // guarded by mu_
  // Guarded by mu_. Empty queues are erased: the map holds pending messages.
  std::map<MailboxKey, std::deque<std::vector<uint8_t>>> mailboxes_;
};

}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_LOCAL_LOCAL_TRANSPORT_H_
