// The MPI transport: the ranks of MPI_COMM_WORLD are the ranks of the
// cluster (rank 0 the root). Every call is non-blocking MPI polled against
// the injected Clock, so a dead or silent rank is an error by the deadline,
// never a hang. MPI must be initialised first (transport/mpi/mpi_session.h);
// linking this target registers "mpi" with CreateTransport.
#ifndef SHARDLM_TRANSPORT_MPI_MPI_TRANSPORT_H_
#define SHARDLM_TRANSPORT_MPI_MPI_TRANSPORT_H_

#include <mpi.h>

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"
#include "core/transport.h"

namespace shardlm {
namespace mpi {

// Semantics, beyond core/transport.h:
//  - Send copies the bytes, starts an MPI_Isend and returns: the copy lives
//    until MPI completes the send. At most kMaxPendingBytes per peer are in
//    flight; past that Send waits (by `deadline`) for the peer to take some.
//    A send the peer has not taken by its deadline fails the next call
//    involving that peer. Sending to oneself queues locally.
//  - Recv probes (MPI_Improbe) for a message of (peer, tag), then receives
//    it with MPI_Imrecv, polling both until `deadline`; DeadlineExceeded
//    then says "rank P did not answer within T".
//  - Tags below MPI_TAG_UB - 1 travel as the MPI tag itself (every tag
//    shardlm uses: 0x53xx < 32766, and 32767 is the least MPI_TAG_UB the
//    standard allows); larger ones travel on MPI tag MPI_TAG_UB with the
//    real tag in a 4-byte prefix and are sorted into (peer, tag) mailboxes.
//    Order per (peer, tag) is kept either way (MPI's non-overtaking rule).
//  - Naming the rank that failed: a rank whose wait on rank P passes its
//    deadline tells every other rank so (MPI tag MPI_TAG_UB - 1). A rank
//    that then gives up on that rank waits up to 0.5 s more for such a
//    report from it (3 ranks or more) and adds the latest one: rank 0,
//    waiting on rank 1 that waits on a dead rank 2, says "rank 1 did not
//    answer within 5s (rank 1 reported: ... rank 2 did not answer ...)".
//  - Calls are serialised by a mutex. When MPI gave only
//    MPI_THREAD_FUNNELED, calls from a thread other than the one that
//    initialised MPI fail with FailedPrecondition.
class MpiTransport : public Transport {
 public:
  // Bytes of unfinished sends allowed per peer before Send waits.
  static constexpr int64_t kMaxPendingBytes = int64_t{64} << 20;

  // The transport of this process's rank in MPI_COMM_WORLD. Deadlines are
  // read on `clock` (not owned). FailedPrecondition when MPI is not
  // initialised.
  static absl::StatusOr<std::unique_ptr<MpiTransport>> Create(Clock* clock);

  // Waits briefly for unfinished sends, then cancels them.
  ~MpiTransport() override;
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }

  absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                    absl::Time deadline) override;
  absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag, absl::Time deadline) override;

  // The MPI tag that carries `tag` (the overflow tag for tags >= it).
  int MpiTag(uint32_t tag) const;

 private:
  using Key = std::pair<int, uint32_t>;  // (source rank, tag)
  struct PendingSend {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<uint8_t> bytes;
    int peer = 0;
    uint32_t tag = 0;
    absl::Time deadline;
    absl::Duration timeout;
  };
  // A request MPI may still own `bytes` for (a receive abandoned at its
  // deadline, a notice sent without waiting).
  struct InFlight {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<uint8_t> bytes;
  };

  MpiTransport(int rank, int world_size, int overflow_tag, bool funneled, Clock* clock);

  absl::Status CheckCall(const char* op, int peer) const;
  // Tests every unfinished send; a failed or overdue one sets its peer's
  // error.
  void Progress();
  // Waits until `pending_bytes_[peer] + bytes` fits the cap.
  absl::Status WaitForRoom(int peer, uint32_t tag, int64_t bytes, absl::Time deadline);
  // Probes once for a message of (peer, MPI tag of `tag`) and, when there
  // is one, receives it into its (peer, tag) mailbox and sets `*received`.
  absl::Status PollPeer(int peer, uint32_t tag, absl::Time deadline, absl::Duration timeout,
                        bool* received);
  // Receives the notices other ranks sent (non-blocking).
  void DrainNotices();
  // The DeadlineExceeded "`what`: `why`" for a wait on `peer`, with what
  // `peer` reported if it did; tells the other ranks.
  absl::Status Overdue(const std::string& what, int peer, const std::string& why);
  absl::StatusOr<std::vector<uint8_t>> ReceiveMatched(MPI_Message* message, int bytes, int peer,
                                                      uint32_t tag, absl::Time deadline,
                                                      absl::Duration timeout);

  const int rank_;
  const int world_size_;
  const int overflow_tag_;
  const int notice_tag_;
  const bool funneled_;
  Clock* const clock_;

  std::mutex mu_;
  std::list<PendingSend> pending_;             // guarded by mu_
  std::vector<int64_t> pending_bytes_;         // guarded by mu_; per peer
  std::vector<absl::Status> peer_error_;       // guarded by mu_; OK while alive
  std::map<Key, std::deque<std::vector<uint8_t>>> mailboxes_;  // guarded by mu_
  std::vector<InFlight> abandoned_;       // guarded by mu_
  std::map<int, std::string> notices_;         // guarded by mu_; by reporting rank
  std::list<InFlight> notice_sends_;      // guarded by mu_
};

// "rank P did not answer within T" (or "... take the message ..." for
// sends), the text every MPI deadline error carries.
std::string DidNotAnswer(int peer, absl::Duration timeout, bool send);

}  // namespace mpi
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_MPI_MPI_TRANSPORT_H_
