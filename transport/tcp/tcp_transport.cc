#include "transport/tcp/tcp_transport.h"

#include <algorithm>

#include "absl/strings/str_format.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "transport/tcp/frame.h"

namespace shardlm {
namespace tcp {
namespace {

// Longest single condition-variable wait: deadlines are re-read on the
// injected clock after each, so a manual clock also ends the wait.
constexpr absl::Duration kMaxWait = absl::Milliseconds(50);

}  // namespace

TcpTransport::TcpTransport(int rank, std::vector<std::unique_ptr<FramedConnection>> peers,
                           Clock* clock, absl::Duration failure_timeout)
    : rank_(rank),
      peers_(std::move(peers)),
      clock_(clock),
      failure_timeout_(failure_timeout == absl::InfiniteDuration() ? absl::ZeroDuration()
                                                                    : failure_timeout),
      peer_error_(peers_.size()),
      last_heard_(peers_.size(), clock->Now()),
      last_sent_(peers_.size(), clock->Now()) {
  for (int r = 0; r < world_size(); ++r) {
    if (r != rank_ && peers_[r] != nullptr) readers_.emplace_back([this, r] { ReadLoop(r); });
  }
  if (failure_timeout_ > absl::ZeroDuration()) {
    heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  }
}

TcpTransport::~TcpTransport() { Abort(); }

void TcpTransport::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
  }
  arrived_.notify_all();
  aborting_.notify_all();
  for (auto& conn : peers_) {
    if (conn != nullptr) conn->Shutdown();
  }
  for (std::thread& t : readers_) {
    if (t.joinable()) t.join();
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

void TcpTransport::PauseHeartbeatsForTesting(bool paused) {
  std::lock_guard<std::mutex> lock(mu_);
  heartbeats_paused_ = paused;
}

void TcpTransport::HeartbeatLoop() {
  const absl::Duration interval = failure_timeout_ / 4;
  std::unique_lock<std::mutex> lock(mu_);
  while (!aborted_) {
    aborting_.wait_for(lock, absl::ToChronoNanoseconds(std::min(interval, kMaxWait)));
    const absl::Time now = clock_->Now();
    for (int r = 0; r < world_size() && !aborted_; ++r) {
      if (r == rank_ || peers_[r] == nullptr || !peer_error_[r].ok()) continue;
      if (now - last_heard_[r] > failure_timeout_) {
        peer_error_[r] = absl::UnavailableError(absl::StrFormat(
            "rank %d (%s) went silent: nothing heard for %.1f s (failure timeout %.1f s)", r,
            peers_[r]->peer(), absl::ToDoubleSeconds(now - last_heard_[r]),
            absl::ToDoubleSeconds(failure_timeout_)));
        peers_[r]->Shutdown();  // the peer, if it ever wakes, sees the session end
        arrived_.notify_all();
        continue;
      }
      if (heartbeats_paused_ || now - last_sent_[r] < interval) continue;
      last_sent_[r] = now;
      lock.unlock();
      // A failed heartbeat needs no handling: the reader sees the link fail.
      peers_[r]->SendFrameIfIdle(kFrameHeartbeat, 0, {}, now + interval).IgnoreError();
      lock.lock();
    }
  }
}

std::string TcpTransport::PeerName(int peer) const {
  if (peer == rank_) return "self";
  if (peer < 0 || peer >= world_size() || peers_[peer] == nullptr) return "?";
  return peers_[peer]->peer();
}

void TcpTransport::ReadLoop(int peer) {
  FramedConnection& conn = *peers_[peer];
  for (;;) {
    absl::StatusOr<Frame> frame = conn.RecvFrame(absl::InfiniteFuture());
    absl::Status error;
    if (!frame.ok()) {
      error = frame.status();
    } else if (frame->type == kFrameError) {
      std::string text(frame->payload.begin() + std::min<size_t>(1, frame->payload.size()),
                       frame->payload.end());
      error = absl::UnavailableError(absl::StrCat(conn.peer(), " gave up: ", text));
    } else if (frame->type != kFrameData && frame->type != kFrameHeartbeat) {
      error = absl::DataLossError(
          absl::StrCat(conn.peer(), ": unexpected frame type ", frame->type, " on a data link"));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!error.ok()) {
      if (peer_error_[peer].ok()) {  // else: already declared dead
        peer_error_[peer] = absl::UnavailableError(
            absl::StrCat("rank ", peer, " (", conn.peer(), "): ", error.message()));
      }
      arrived_.notify_all();
      return;
    }
    last_heard_[peer] = clock_->Now();
    if (frame->type == kFrameHeartbeat) continue;
    mailboxes_[{peer, frame->tag}].push_back(std::move(frame->payload));
    arrived_.notify_all();
  }
}

absl::Status TcpTransport::CheckPeer(const char* op, int peer) const {
  if (peer < 0 || peer >= world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("tcp ", op, ": rank ", peer,
                                                   " is outside the cluster of ", world_size()));
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                                absl::Time deadline) {
  RETURN_IF_ERROR(CheckPeer("send", peer));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) return absl::UnavailableError("tcp send: the transport was shut down");
    if (peer == rank_) {
      mailboxes_[{peer, tag}].emplace_back(data.begin(), data.end());
      arrived_.notify_all();
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(peer_error_[peer]);
    last_sent_[peer] = clock_->Now();
  }
  absl::Status s = peers_[peer]->SendFrame(kFrameData, tag, data, deadline);
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("tcp send to rank ", peer, ": ", s.message()));
}

absl::StatusOr<std::vector<uint8_t>> TcpTransport::Recv(int peer, uint32_t tag,
                                                        absl::Time deadline) {
  RETURN_IF_ERROR(CheckPeer("recv", peer));
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (aborted_) return absl::UnavailableError("tcp recv: the transport was shut down");
    auto it = mailboxes_.find({peer, tag});
    if (it != mailboxes_.end()) {
      std::vector<uint8_t> message = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) mailboxes_.erase(it);
      return message;
    }
    if (!peer_error_[peer].ok()) return peer_error_[peer];
    // A worker whose root is gone has no session left to wait for.
    if (rank_ != 0 && !peer_error_[0].ok()) {
      return absl::UnavailableError(absl::StrCat("the root left the session: ",
                                                 peer_error_[0].message()));
    }
    const absl::Duration left = deadline - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("tcp recv from rank ", peer, " (",
                                                      PeerName(peer), ") tag ", tag,
                                                      ": deadline exceeded"));
    }
    arrived_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, kMaxWait)));
  }
}

}  // namespace tcp
}  // namespace shardlm
