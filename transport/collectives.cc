#include "transport/collectives.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

#ifdef ABSL_IS_LITTLE_ENDIAN
constexpr bool kLittleEndian = true;
#else
constexpr bool kLittleEndian = false;
#endif
static_assert(kLittleEndian, "the wire encoding of int64/float payloads is a memcpy: little endian");

// `status` with "context: " in front of its message, code kept.
absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// The transport calls of one collective: fixed tag and deadline, stats
// counting, and "send to rank P" / "recv from rank P" context on errors.
class Link {
 public:
  Link(Transport& transport, uint32_t tag, absl::Time deadline, CollectiveStats* stats)
      : transport_(transport), tag_(tag), deadline_(deadline), stats_(stats) {}

  int rank() const { return transport_.rank(); }
  int world_size() const { return transport_.world_size(); }

  absl::Status Send(int peer, absl::Span<const uint8_t> bytes) {
    absl::Status status = transport_.Send(peer, tag_, bytes, deadline_);
    if (!status.ok()) return WithContext(status, absl::StrCat("send to rank ", peer));
    if (stats_ != nullptr) {
      stats_->bytes_sent += static_cast<int64_t>(bytes.size());
      ++stats_->messages_sent;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<uint8_t>> Recv(int peer) {
    absl::StatusOr<std::vector<uint8_t>> message = transport_.Recv(peer, tag_, deadline_);
    if (!message.ok()) {
      return WithContext(message.status(), absl::StrCat("recv from rank ", peer));
    }
    if (stats_ != nullptr) {
      stats_->bytes_received += static_cast<int64_t>(message->size());
      ++stats_->messages_received;
    }
    return message;
  }

 private:
  Transport& transport_;
  const uint32_t tag_;
  const absl::Time deadline_;
  CollectiveStats* const stats_;
};

// --- Abort notices ------------------------------------------------------------
// In the ring every rank waits only on its predecessor, so a rank that fails
// tells its successor, which fails with the same code and passes it on: a
// crash anywhere ends the collective on every rank promptly. A notice is the
// magic, one status-code byte and the message, NUL-padded to a length of
// 1 mod 4, which no int64/float chunk (a multiple of 4 bytes) can have.

constexpr absl::string_view kAbortMagic = "shardlm-collective-abort:";

std::vector<uint8_t> EncodeAbort(const absl::Status& status) {
  std::string notice(kAbortMagic);
  notice.push_back(static_cast<char>(status.code()));
  notice.append(status.message().data(), status.message().size());
  while (notice.size() % 4 != 1) notice.push_back('\0');
  return std::vector<uint8_t>(notice.begin(), notice.end());
}

// The error an abort notice from `peer` stands for; OK when `message` is not
// a notice.
absl::Status DecodeAbort(const std::vector<uint8_t>& message, int peer) {
  const absl::string_view text(reinterpret_cast<const char*>(message.data()), message.size());
  if (message.size() % 4 != 1 || message.size() <= kAbortMagic.size() ||
      text.substr(0, kAbortMagic.size()) != kAbortMagic) {
    return absl::OkStatus();
  }
  auto code = static_cast<absl::StatusCode>(static_cast<uint8_t>(text[kAbortMagic.size()]));
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  absl::string_view reason = text.substr(kAbortMagic.size() + 1);
  while (!reason.empty() && reason.back() == '\0') reason.remove_suffix(1);
  return absl::Status(code, absl::StrCat("rank ", peer, " gave up: ", reason));
}

// Receives a message of exactly `bytes` bytes from `peer`; an abort notice
// becomes its error, any other size is InvalidArgument.
absl::StatusOr<std::vector<uint8_t>> RecvExact(Link& link, int peer, int64_t bytes) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> message, link.Recv(peer));
  if (static_cast<int64_t>(message.size()) == bytes) return message;
  RETURN_IF_ERROR(DecodeAbort(message, peer));
  return absl::InvalidArgumentError(absl::StrCat(
      "recv from rank ", peer, ": expected ", bytes, " bytes, got ", message.size(),
      " (do all ranks pass vectors of the same length?)"));
}

// --- Element codec ------------------------------------------------------------

template <typename T>
absl::Span<const uint8_t> AsBytes(absl::Span<const T> values) {
  static_assert(std::is_trivially_copyable<T>::value, "wire elements are plain values");
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                   values.size() * sizeof(T));
}

// dst[i] = wire[i] + dst[i] (wire element first: the running sum that came
// round the ring, then this rank's term).
template <typename T>
void AddFromWire(const std::vector<uint8_t>& wire, absl::Span<T> dst) {
  for (size_t i = 0; i < dst.size(); ++i) {
    T value;
    std::memcpy(&value, wire.data() + i * sizeof(T), sizeof(T));
    dst[i] = value + dst[i];
  }
}

template <typename T>
void CopyFromWire(const std::vector<uint8_t>& wire, absl::Span<T> dst) {
  if (!dst.empty()) std::memcpy(dst.data(), wire.data(), dst.size() * sizeof(T));
}

// --- All-reduce ------------------------------------------------------------

template <typename T>
absl::Span<T> Chunk(absl::Span<T> data, int world_size, int chunk) {
  const ChunkRange range = RingChunk(static_cast<int64_t>(data.size()), world_size, chunk);
  return data.subspan(range.offset, range.size);
}

// One step of the ring: send chunk `send_chunk` to the successor, receive
// chunk `recv_chunk` from the predecessor and add it in (`add`) or copy it.
template <typename T>
absl::Status RingStep(Link& link, absl::Span<T> data, int send_chunk, int recv_chunk, bool add,
                      absl::string_view step) {
  const int n = link.world_size();
  const int next = (link.rank() + 1) % n;
  const int prev = (link.rank() + n - 1) % n;
  absl::Span<T> out = Chunk(data, n, send_chunk);
  absl::Status sent = link.Send(next, AsBytes(absl::Span<const T>(out)));
  if (!sent.ok()) return WithContext(sent, step);
  absl::Span<T> in = Chunk(data, n, recv_chunk);
  absl::StatusOr<std::vector<uint8_t>> wire =
      RecvExact(link, prev, static_cast<int64_t>(in.size() * sizeof(T)));
  if (!wire.ok()) return WithContext(wire.status(), step);
  if (add) {
    AddFromWire(*wire, in);
  } else {
    CopyFromWire(*wire, in);
  }
  return absl::OkStatus();
}

// Reduce-scatter (after step s rank r holds the partial sum of chunk r-s-1
// over ranks r-s-1 .. r), then all-gather of the finished chunks.
template <typename T>
absl::Status RingSteps(Link& link, absl::Span<T> data) {
  const int n = link.world_size();
  const int r = link.rank();
  for (int s = 0; s < n - 1; ++s) {
    RETURN_IF_ERROR(RingStep(link, data, (r - s + n) % n, (r - s - 1 + n) % n, /*add=*/true,
                             absl::StrCat("all-reduce ring reduce-scatter step ", s)));
  }
  // Rank r now holds the full sum of chunk r+1.
  for (int s = 0; s < n - 1; ++s) {
    RETURN_IF_ERROR(RingStep(link, data, (r + 1 - s + n) % n, (r - s + n) % n, /*add=*/false,
                             absl::StrCat("all-reduce ring all-gather step ", s)));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status RingAllReduce(Link& link, absl::Span<T> data) {
  absl::Status status = RingSteps(link, data);
  if (!status.ok()) {
    // Best effort: the successor may be the rank that failed.
    link.Send((link.rank() + 1) % link.world_size(), EncodeAbort(status)).IgnoreError();
  }
  return status;
}

// Sends the whole vector to every peer, then sums all vectors in rank order.
template <typename T>
absl::Status DirectAllReduce(Link& link, absl::Span<T> data) {
  const int n = link.world_size();
  const int r = link.rank();
  const absl::Span<const uint8_t> mine = AsBytes(absl::Span<const T>(data));
  absl::Status first_error;
  for (int p = 0; p < n; ++p) {
    if (p == r) continue;
    // Keep sending after a failure so that live peers still get our vector.
    absl::Status sent = link.Send(p, mine);
    if (!sent.ok() && first_error.ok()) first_error = WithContext(sent, "all-reduce direct");
  }
  RETURN_IF_ERROR(first_error);
  std::vector<T> sum(data.size());
  for (int p = 0; p < n; ++p) {
    absl::Span<T> acc(sum);
    if (p == r) {
      for (size_t i = 0; i < acc.size(); ++i) acc[i] = p == 0 ? data[i] : acc[i] + data[i];
      continue;
    }
    absl::StatusOr<std::vector<uint8_t>> wire =
        RecvExact(link, p, static_cast<int64_t>(mine.size()));
    if (!wire.ok()) return WithContext(wire.status(), "all-reduce direct");
    if (p == 0) {
      CopyFromWire(*wire, acc);
    } else {
      AddFromWire(*wire, acc);  // acc = ((x_0 + x_1) + ...) + x_p
    }
  }
  std::copy(sum.begin(), sum.end(), data.begin());
  return absl::OkStatus();
}

template <typename T>
absl::Status AllReduceSumImpl(Transport& transport, absl::Span<T> data,
                              AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                              CollectiveStats* stats) {
  Link link(transport, tag, deadline, stats);
  if (link.world_size() <= 1) return absl::OkStatus();
  switch (ResolveAllReduceAlgorithm(algorithm, link.world_size(),
                                    static_cast<int64_t>(data.size() * sizeof(T)))) {
    case AllReduceAlgorithm::kRing:
      return RingAllReduce(link, data);
    case AllReduceAlgorithm::kDirect:
    case AllReduceAlgorithm::kAuto:
      break;
  }
  return DirectAllReduce(link, data);
}

// Sends `bytes` to every peer (all of them, even after a failure), then
// returns the first send error.
absl::Status SendToAll(Link& link, absl::Span<const uint8_t> bytes, absl::string_view context) {
  absl::Status first_error;
  for (int p = 0; p < link.world_size(); ++p) {
    if (p == link.rank()) continue;
    absl::Status sent = link.Send(p, bytes);
    if (!sent.ok() && first_error.ok()) first_error = WithContext(sent, context);
  }
  return first_error;
}

}  // namespace

const char* AllReduceAlgorithmName(AllReduceAlgorithm algorithm) {
  switch (algorithm) {
    case AllReduceAlgorithm::kAuto:
      return "auto";
    case AllReduceAlgorithm::kRing:
      return "ring";
    case AllReduceAlgorithm::kDirect:
      return "direct";
  }
  return "unknown";
}

AllReduceAlgorithm ResolveAllReduceAlgorithm(AllReduceAlgorithm algorithm, int world_size,
                                             int64_t bytes) {
  if (algorithm != AllReduceAlgorithm::kAuto) return algorithm;
  if (world_size <= 3 || bytes < kAutoDirectMaxBytes) return AllReduceAlgorithm::kDirect;
  return AllReduceAlgorithm::kRing;
}

ChunkRange RingChunk(int64_t length, int world_size, int chunk) {
  const int64_t base = length / world_size;
  const int64_t extra = length % world_size;
  ChunkRange range;
  range.offset = chunk * base + std::min<int64_t>(chunk, extra);
  range.size = base + (chunk < extra ? 1 : 0);
  return range;
}

absl::Status AllReduceSum(Transport& transport, absl::Span<int64_t> data,
                          AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                          CollectiveStats* stats) {
  return AllReduceSumImpl(transport, data, algorithm, tag, deadline, stats);
}

absl::Status AllReduceSum(Transport& transport, absl::Span<float> data,
                          AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                          CollectiveStats* stats) {
  return AllReduceSumImpl(transport, data, algorithm, tag, deadline, stats);
}

absl::Status Broadcast(Transport& transport, int root, std::vector<uint8_t>* data, uint32_t tag,
                       absl::Time deadline, CollectiveStats* stats) {
  Link link(transport, tag, deadline, stats);
  const std::string context = absl::StrCat("broadcast from root ", root);
  if (root < 0 || root >= link.world_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": root outside [0, ", link.world_size(), ")"));
  }
  if (link.rank() == root) return SendToAll(link, *data, context);
  absl::StatusOr<std::vector<uint8_t>> message = link.Recv(root);
  if (!message.ok()) return WithContext(message.status(), context);
  *data = *std::move(message);
  return absl::OkStatus();
}

absl::Status AllGather(Transport& transport, absl::Span<const uint8_t> mine,
                       std::vector<std::vector<uint8_t>>* all, uint32_t tag, absl::Time deadline,
                       CollectiveStats* stats) {
  Link link(transport, tag, deadline, stats);
  RETURN_IF_ERROR(SendToAll(link, mine, "all-gather"));
  std::vector<std::vector<uint8_t>> gathered(link.world_size());
  for (int p = 0; p < link.world_size(); ++p) {
    if (p == link.rank()) {
      gathered[p].assign(mine.begin(), mine.end());
      continue;
    }
    absl::StatusOr<std::vector<uint8_t>> message = link.Recv(p);
    if (!message.ok()) return WithContext(message.status(), "all-gather");
    gathered[p] = *std::move(message);
  }
  *all = std::move(gathered);
  return absl::OkStatus();
}

absl::Status Barrier(Transport& transport, uint32_t tag, absl::Time deadline,
                     CollectiveStats* stats) {
  Link link(transport, tag, deadline, stats);
  RETURN_IF_ERROR(SendToAll(link, {}, "barrier"));
  for (int p = 0; p < link.world_size(); ++p) {
    if (p == link.rank()) continue;
    absl::StatusOr<std::vector<uint8_t>> message = RecvExact(link, p, 0);
    if (!message.ok()) return WithContext(message.status(), "barrier");
  }
  return absl::OkStatus();
}

}  // namespace shardlm
