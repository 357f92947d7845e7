#include "transport/mpi/mpi_transport.h"

#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "transport/transport_registry.h"

namespace shardlm {
namespace mpi {
namespace {

// Polling: the first polls of a wait only yield the CPU (some
// milliseconds: the all-reduces' latency is the decode speed), later ones
// sleep on the clock, doubling up to kMaxSleep (the wake-up latency of a
// rank that waited long, e.g. for a slower peer's compute).
constexpr int kYieldPolls = 50;
constexpr absl::Duration kFirstSleep = absl::Microseconds(10);
constexpr absl::Duration kMaxSleep = absl::Microseconds(100);
// How long a rank that gives up on a peer waits for the peer's own report.
constexpr absl::Duration kNoticeGrace = absl::Milliseconds(500);
// How long the destructor lets unfinished sends complete.
constexpr absl::Duration kDrainTime = absl::Seconds(2);

class Backoff {
 public:
  explicit Backoff(Clock* clock) : clock_(clock) {}
  void Pause() {
    if (polls_ < kYieldPolls) {
      ++polls_;
      sched_yield();
      return;
    }
    clock_->SleepFor(sleep_);
    sleep_ = std::min(sleep_ * 2, kMaxSleep);
  }

 private:
  Clock* clock_;
  int polls_ = 0;
  absl::Duration sleep_ = kFirstSleep;
};

std::string MpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return absl::StrCat("MPI error ", code);
  return std::string(text, len);
}

std::string TagName(uint32_t tag) { return absl::StrCat("0x", absl::Hex(tag)); }

absl::StatusOr<std::unique_ptr<Transport>> MakeMpiTransport(const TransportOptions& opts) {
  if (opts.clock == nullptr) return absl::InvalidArgumentError("mpi transport: no clock");
  ASSIGN_OR_RETURN(std::unique_ptr<MpiTransport> t, MpiTransport::Create(opts.clock));
  if (t->rank() != opts.rank || t->world_size() != opts.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("mpi transport: asked for rank ", opts.rank, " of ", opts.world_size,
                     " but MPI made this process rank ", t->rank(), " of ", t->world_size()));
  }
  return std::unique_ptr<Transport>(std::move(t));
}

const Registrar<Transport, TransportOptions> kRegisterMpi("mpi", &MakeMpiTransport);

}  // namespace

std::string DidNotAnswer(int peer, absl::Duration timeout, bool send) {
  return absl::StrCat("rank ", peer, send ? " did not take the message" : " did not answer",
                      " within ",
                      absl::FormatDuration(absl::Trunc(timeout + absl::Microseconds(500),
                                                       absl::Milliseconds(1))));
}

absl::StatusOr<std::unique_ptr<MpiTransport>> MpiTransport::Create(Clock* clock) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) {
    return absl::FailedPreconditionError(
        "mpi transport: MPI is not running (start an MpiSession first)");
  }
  int rank = 0, world = 0, level = MPI_THREAD_SINGLE, flag = 0;
  void* tag_ub = nullptr;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Query_thread(&level);
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
  const int overflow = flag ? *static_cast<int*>(tag_ub) : 32767;
  if (level < MPI_THREAD_FUNNELED) {
    return absl::FailedPreconditionError(
        "mpi transport: MPI runs at MPI_THREAD_SINGLE; it needs MPI_THREAD_FUNNELED");
  }
  // Errors come back as codes (MpiSession sets this too).
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::unique_ptr<MpiTransport>(
      new MpiTransport(rank, world, overflow, level < MPI_THREAD_SERIALIZED, clock));
}

MpiTransport::MpiTransport(int rank, int world_size, int overflow_tag, bool funneled,
                           Clock* clock)
    : rank_(rank),
      world_size_(world_size),
      overflow_tag_(overflow_tag),
      notice_tag_(overflow_tag - 1),
      funneled_(funneled),
      clock_(clock),
      pending_bytes_(world_size),
      peer_error_(world_size) {}

MpiTransport::~MpiTransport() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time until = clock_->Now() + kDrainTime;
  Backoff backoff(clock_);
  while (!pending_.empty() && clock_->Now() < until) {
    Progress();
    if (!pending_.empty()) backoff.Pause();
  }
  for (PendingSend& p : pending_) {
    MPI_Cancel(&p.request);
    MPI_Request_free(&p.request);
  }
  for (InFlight& n : notice_sends_) {
    int done = 0;
    MPI_Test(&n.request, &done, MPI_STATUS_IGNORE);
    if (!done) {
      MPI_Request_free(&n.request);
      new std::vector<uint8_t>(std::move(n.bytes));  // see below
    }
  }
  for (InFlight& a : abandoned_) {
    int done = 0;
    MPI_Test(&a.request, &done, MPI_STATUS_IGNORE);
    if (!done) MPI_Request_free(&a.request);
  }
  // Requests freed while active may still write into their buffers until
  // MPI finalises: leak them rather than free memory MPI may touch.
  for (InFlight& a : abandoned_) {
    if (a.request != MPI_REQUEST_NULL) new std::vector<uint8_t>(std::move(a.bytes));
  }
  for (PendingSend& p : pending_) new std::vector<uint8_t>(std::move(p.bytes));
}

int MpiTransport::MpiTag(uint32_t tag) const {
  return tag < static_cast<uint32_t>(notice_tag_) ? static_cast<int>(tag) : overflow_tag_;
}

absl::Status MpiTransport::CheckCall(const char* op, int peer) const {
  if (peer < 0 || peer >= world_size_) {
    return absl::InvalidArgumentError(absl::StrCat("mpi ", op, ": rank ", peer,
                                                   " is outside the cluster of ", world_size_));
  }
  int main = 1;
  if (funneled_) MPI_Is_thread_main(&main);
  if (!main) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mpi ", op, ": MPI gave MPI_THREAD_FUNNELED; call it from the thread that started MPI"));
  }
  return absl::OkStatus();
}

void MpiTransport::Progress() {
  const absl::Time now = clock_->Now();
  std::vector<const PendingSend*> overdue;
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    MPI_Status status;
    const int rc = MPI_Test(&it->request, &done, &status);
    absl::Status& error = peer_error_[it->peer];
    if (rc != MPI_SUCCESS && error.ok()) {
      error = absl::UnavailableError(absl::StrCat("mpi send to rank ", it->peer, " tag ",
                                                  TagName(it->tag), ": ", MpiError(rc)));
    } else if (!done && now >= it->deadline && error.ok()) {
      overdue.push_back(&*it);
    }
    if (done || rc != MPI_SUCCESS) {
      pending_bytes_[it->peer] -= static_cast<int64_t>(it->bytes.size());
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (const PendingSend* p : overdue) {
    if (!peer_error_[p->peer].ok()) continue;
    peer_error_[p->peer] = Overdue(absl::StrCat("mpi send to rank ", p->peer, " tag ",
                                                TagName(p->tag)),
                                   p->peer, DidNotAnswer(p->peer, p->timeout, true));
  }
}

void MpiTransport::DrainNotices() {
  for (;;) {
    int flag = 0;
    MPI_Message message = MPI_MESSAGE_NULL;
    MPI_Status status;
    if (MPI_Improbe(MPI_ANY_SOURCE, notice_tag_, MPI_COMM_WORLD, &flag, &message, &status) !=
            MPI_SUCCESS ||
        !flag) {
      return;
    }
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    std::string text(std::max(bytes, 0), '\0');
    // Notices are a few hundred bytes: sent eagerly, here already.
    if (MPI_Mrecv(text.data(), bytes, MPI_BYTE, &message, MPI_STATUS_IGNORE) == MPI_SUCCESS) {
      notices_[status.MPI_SOURCE] = std::move(text);
    }
  }
}

absl::Status MpiTransport::Overdue(const std::string& what, int peer, const std::string& why) {
  DrainNotices();
  // `peer` may be waiting on a third rank with about the same deadline:
  // give its report a moment to arrive.
  const absl::Time grace_end = clock_->Now() + kNoticeGrace;
  Backoff backoff(clock_);
  while (world_size_ > 2 && peer != rank_ && notices_.count(peer) == 0 &&
         clock_->Now() < grace_end) {
    backoff.Pause();
    DrainNotices();
  }
  // The others hear this rank's own wait, not what it heard (no chains).
  const std::string text = absl::StrCat(what, ": ", why);
  std::string message = text;
  auto it = notices_.find(peer);
  if (it != notices_.end()) {
    absl::StrAppend(&message, " (rank ", peer, " reported: ", it->second, ")");
  }
  for (int r = 0; r < world_size_ && peer != rank_; ++r) {
    if (r == rank_ || r == peer) continue;
    notice_sends_.push_back({MPI_REQUEST_NULL, std::vector<uint8_t>(text.begin(), text.end())});
    InFlight& n = notice_sends_.back();
    MPI_Isend(n.bytes.data(), static_cast<int>(n.bytes.size()), MPI_BYTE, r, notice_tag_,
              MPI_COMM_WORLD, &n.request);
  }
  return absl::DeadlineExceededError(message);
}

absl::Status MpiTransport::WaitForRoom(int peer, uint32_t tag, int64_t bytes,
                                       absl::Time deadline) {
  const absl::Duration timeout = deadline - clock_->Now();
  Backoff backoff(clock_);
  for (;;) {
    Progress();
    RETURN_IF_ERROR(peer_error_[peer]);
    if (pending_bytes_[peer] == 0 || pending_bytes_[peer] + bytes <= kMaxPendingBytes) {
      return absl::OkStatus();
    }
    if (clock_->Now() >= deadline) {
      return Overdue(absl::StrCat("mpi send to rank ", peer, " tag ", TagName(tag)), peer,
                     DidNotAnswer(peer, timeout, true));
    }
    backoff.Pause();
  }
}

absl::Status MpiTransport::Send(int peer, uint32_t tag, absl::Span<const uint8_t> data,
                                absl::Time deadline) {
  RETURN_IF_ERROR(CheckCall("send", peer));
  std::lock_guard<std::mutex> lock(mu_);
  if (peer == rank_) {
    mailboxes_[{peer, tag}].emplace_back(data.begin(), data.end());
    return absl::OkStatus();
  }
  const int mpi_tag = MpiTag(tag);
  const size_t prefix = mpi_tag == overflow_tag_ ? sizeof(uint32_t) : 0;
  if (data.size() + prefix > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("mpi send to rank ", peer, ": ", data.size(),
                                                   " bytes exceed one MPI message"));
  }
  RETURN_IF_ERROR(WaitForRoom(peer, tag, static_cast<int64_t>(data.size()), deadline));
  PendingSend p;
  p.bytes.resize(prefix + data.size());
  if (prefix > 0) std::memcpy(p.bytes.data(), &tag, sizeof(tag));  // little-endian hosts
  if (!data.empty()) std::memcpy(p.bytes.data() + prefix, data.data(), data.size());
  p.peer = peer;
  p.tag = tag;
  p.deadline = deadline;
  p.timeout = deadline - clock_->Now();
  const int rc = MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, peer,
                           mpi_tag, MPI_COMM_WORLD, &p.request);
  if (rc != MPI_SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("mpi send to rank ", peer, " tag ", TagName(tag), ": ", MpiError(rc)));
  }
  pending_bytes_[peer] += static_cast<int64_t>(p.bytes.size());
  pending_.push_back(std::move(p));
  Progress();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> MpiTransport::ReceiveMatched(
    MPI_Message* message, int bytes, int peer, uint32_t tag, absl::Time deadline,
    absl::Duration timeout) {
  std::vector<uint8_t> buffer(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  int rc = MPI_Imrecv(buffer.data(), bytes, MPI_BYTE, message, &request);
  Backoff backoff(clock_);
  for (int done = 0; rc == MPI_SUCCESS;) {
    rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS && done) return buffer;
    if (rc == MPI_SUCCESS && clock_->Now() >= deadline) {
      abandoned_.push_back({request, std::move(buffer)});
      peer_error_[peer] = Overdue(
          absl::StrCat("mpi recv from rank ", peer, " tag ", TagName(tag)), peer,
          absl::StrCat(DidNotAnswer(peer, timeout, false), " (a message of ", bytes,
                       " bytes unfinished)"));
      return peer_error_[peer];
    }
    Progress();
    backoff.Pause();
  }
  peer_error_[peer] = absl::UnavailableError(
      absl::StrCat("mpi recv from rank ", peer, " tag ", TagName(tag), ": ", MpiError(rc)));
  return peer_error_[peer];
}

absl::Status MpiTransport::PollPeer(int peer, uint32_t tag, absl::Time deadline,
                                    absl::Duration timeout, bool* received) {
  const int mpi_tag = MpiTag(tag);
  int flag = 0;
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status;
  const int rc = MPI_Improbe(peer, mpi_tag, MPI_COMM_WORLD, &flag, &message, &status);
  if (rc != MPI_SUCCESS) {
    return peer_error_[peer] = absl::UnavailableError(
               absl::StrCat("mpi recv from rank ", peer, " tag ", TagName(tag), ": ",
                            MpiError(rc)));
  }
  if (!flag) return absl::OkStatus();
  int bytes = 0;
  MPI_Get_count(&status, MPI_BYTE, &bytes);
  ASSIGN_OR_RETURN(std::vector<uint8_t> buffer,
                   ReceiveMatched(&message, bytes, peer, tag, deadline, timeout));
  uint32_t real_tag = tag;
  if (mpi_tag == overflow_tag_) {
    if (buffer.size() < sizeof(uint32_t)) {
      return peer_error_[peer] = absl::DataLossError(
                 absl::StrCat("mpi recv from rank ", peer, ": message without its tag"));
    }
    std::memcpy(&real_tag, buffer.data(), sizeof(real_tag));
    buffer.erase(buffer.begin(), buffer.begin() + sizeof(uint32_t));
  }
  mailboxes_[{peer, real_tag}].push_back(std::move(buffer));
  notices_.erase(peer);  // it is talking again
  *received = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> MpiTransport::Recv(int peer, uint32_t tag,
                                                        absl::Time deadline) {
  RETURN_IF_ERROR(CheckCall("recv", peer));
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Duration timeout = deadline - clock_->Now();
  Backoff backoff(clock_);
  for (;;) {
    auto it = mailboxes_.find({peer, tag});
    if (it != mailboxes_.end()) {
      std::vector<uint8_t> message = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) mailboxes_.erase(it);
      return message;
    }
    Progress();
    RETURN_IF_ERROR(peer_error_[peer]);
    bool received = false;
    if (peer != rank_) RETURN_IF_ERROR(PollPeer(peer, tag, deadline, timeout, &received));
    if (received) continue;  // ours, or another overflow tag's: look again
    if (clock_->Now() >= deadline) {
      return Overdue(absl::StrCat("mpi recv from rank ", peer, " tag ", TagName(tag)), peer,
                     DidNotAnswer(peer, timeout, false));
    }
    backoff.Pause();
  }
}

}  // namespace mpi
}  // namespace shardlm
