#include "transport/local/local_transport.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "transport/transport_registry.h"

namespace shardlm {

// One rank's view of a LocalHub.
class LocalEndpoint : public Transport {
 public:
  LocalEndpoint(std::shared_ptr<LocalHub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}

  int rank() const override { return rank_; }
  int world_size() const override { return hub_->world_size(); }

  absl::Status Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                    absl::Time deadline) override {
    return hub_->Send(rank_, peer, tag, data);
  }

  absl::StatusOr<std::vector<uint8_t>> Recv(int peer, uint32_t tag,
                                            absl::Time deadline) override {
    return hub_->Recv(rank_, peer, tag, deadline);
  }

 private:
  const std::shared_ptr<LocalHub> hub_;
  const int rank_;
};

std::shared_ptr<LocalHub> LocalHub::Create(int world_size, Clock* clock) {
  return std::shared_ptr<LocalHub>(new LocalHub(world_size, clock));
}

LocalHub::LocalHub(int world_size, Clock* clock)
    : world_size_(world_size),
      clock_(clock),
      wakeup_(std::max(world_size, 0)),
      dead_(std::max(world_size, 0), false) {}

std::unique_ptr<Transport> LocalHub::Endpoint(int rank) {
  // Create() is the only constructor path, so the hub is always owned by a
  // shared_ptr and shared_from_this() is valid.
  return std::make_unique<LocalEndpoint>(shared_from_this(), rank);
}

void LocalHub::Kill(int rank) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rank < 0 || rank >= world_size_) return;
  dead_[rank] = true;
  // Anyone may be waiting on the dead rank.
  for (std::condition_variable& cv : wakeup_) cv.notify_all();
}

bool LocalHub::IsDead(int rank) const {
  std::lock_guard<std::mutex> lock(mu_);
  return rank >= 0 && rank < world_size_ && dead_[rank];
}

void LocalHub::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  for (std::condition_variable& cv : wakeup_) cv.notify_all();
}

int64_t LocalHub::PendingMessages() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [key, queue] : mailboxes_) n += static_cast<int64_t>(queue.size());
  return n;
}

absl::Status LocalHub::CheckRanks(const char* op, int self, int peer) const {
  if (self < 0 || self >= world_size_) {
    return absl::InvalidArgumentError(absl::StrCat("local transport: ", op, " on rank ", self,
                                                   ", outside a hub of ", world_size_, " ranks"));
  }
  if (peer < 0 || peer >= world_size_) {
    return absl::InvalidArgumentError(absl::StrCat("local transport: ", op, " names peer rank ",
                                                   peer, ", outside a hub of ", world_size_,
                                                   " ranks"));
  }
  return absl::OkStatus();
}

absl::Status LocalHub::CheckAlive(const char* op, int self, int peer, uint32_t tag) const {
  if (shut_down_) {
    return absl::UnavailableError(absl::StrCat("local transport: ", op, " rank ", peer, " tag ",
                                               tag, ": the hub is shut down"));
  }
  if (dead_[self]) {
    return absl::UnavailableError(absl::StrCat("local transport: ", op, " rank ", peer, " tag ",
                                               tag, ": this rank (", self, ") is dead"));
  }
  if (dead_[peer]) {
    return absl::UnavailableError(absl::StrCat("local transport: ", op, " rank ", peer, " tag ",
                                               tag, ": rank ", peer, " is dead"));
  }
  return absl::OkStatus();
}

absl::Status LocalHub::Send(int src, int dst, uint32_t tag, absl::Span<const uint8_t> data) {
  RETURN_IF_ERROR(CheckRanks("send to", src, dst));
  std::vector<uint8_t> copy(data.begin(), data.end());
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckAlive("send to", src, dst, tag));
  mailboxes_[MailboxKey(src, dst, tag)].push_back(std::move(copy));
  wakeup_[dst].notify_all();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> LocalHub::Recv(int dst, int src, uint32_t tag,
                                                    absl::Time deadline) {
  RETURN_IF_ERROR(CheckRanks("recv from", dst, src));
  const MailboxKey key(src, dst, tag);
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&]() {
    return mailboxes_.count(key) > 0 || shut_down_ || dead_[dst] || dead_[src];
  };
  if (deadline == absl::InfiniteFuture()) {
    wakeup_[dst].wait(lock, ready);
  } else {
    // The deadline is on the callers' clock: wait for what remains of it.
    // Past deadlines are clamped so the conversion cannot overflow.
    const absl::Duration remaining =
        clock_ == nullptr ? deadline - absl::Now() : deadline - clock_->Now();
    const absl::Time until = absl::Now() + std::max(remaining, absl::ZeroDuration());
    wakeup_[dst].wait_until(lock, absl::ToChronoTime(until), ready);
  }
  auto it = mailboxes_.find(key);
  // A dead receiver or a closed hub fails even with mail waiting; a dead
  // sender's earlier messages are still delivered.
  if (shut_down_ || dead_[dst] || it == mailboxes_.end()) {
    RETURN_IF_ERROR(CheckAlive("recv from", dst, src, tag));
    return absl::DeadlineExceededError(absl::StrCat(
        "local transport: recv from rank ", src, " tag ", tag, ": no message by the deadline"));
  }
  std::vector<uint8_t> message = std::move(it->second.front());
  it->second.pop_front();
  if (it->second.empty()) mailboxes_.erase(it);
  return message;
}

namespace {

// CreateTransport("local", ...): a single-node cluster. Multi-rank in-process
// clusters need every rank to share one LocalHub, which a string-keyed
// TransportOptions cannot carry.
absl::StatusOr<std::unique_ptr<Transport>> MakeLocalTransport(const TransportOptions& opts) {
  if (opts.world_size > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the local transport's ranks must be created from one LocalHub "
        "(transport/local/local_transport.h); CreateTransport(\"local\") makes only a "
        "single-node cluster, got world_size ",
        opts.world_size));
  }
  if (opts.world_size != 1 || opts.rank != 0) {
    return absl::InvalidArgumentError(absl::StrCat("local transport: rank ", opts.rank,
                                                   " of world_size ", opts.world_size,
                                                   " is not a valid single-node cluster"));
  }
  return LocalHub::Create(1)->Endpoint(0);
}

const Registrar<Transport, TransportOptions> kRegisterLocal("local", &MakeLocalTransport);

}  // namespace
}  // namespace shardlm
