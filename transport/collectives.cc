#include "transport/collectives.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
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
// 1 mod 4, which no payload can have: int64/float chunks are multiples of 4
// bytes, f16 chunks of 2 and Q8_0 chunks of 34.

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

// --- Compressed all-reduce (f16, q8_0) ------------------------------------

// Receives `chunk` encoded in `wire` from `peer`: the raw bytes in `*wire_bytes`
// and their decoded values in `*decoded`.
absl::Status RecvEncoded(Link& link, WireFormat wire, int peer, int64_t elements,
                         std::vector<uint8_t>* wire_bytes, std::vector<float>* decoded) {
  ASSIGN_OR_RETURN(*wire_bytes, RecvExact(link, peer, WireBytes(wire, elements)));
  decoded->resize(elements);
  return DecodeWire(wire, *wire_bytes, absl::MakeSpan(*decoded));
}

absl::Span<float> WireChunkOf(absl::Span<float> data, WireFormat wire, int world_size,
                              int chunk) {
  const ChunkRange range =
      WireChunk(wire, static_cast<int64_t>(data.size()), world_size, chunk);
  return data.subspan(range.offset, range.size);
}

// Reduce-scatter: step s sends the encoded partial sum of chunk r-s and adds
// the decoded chunk r-s-1 from the predecessor (wire value first).
absl::Status CompressedReduceScatter(Link& link, absl::Span<float> data, WireFormat wire) {
  const int n = link.world_size(), r = link.rank();
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  std::vector<uint8_t> bytes;
  std::vector<float> decoded;
  for (int s = 0; s < n - 1; ++s) {
    const std::string step = absl::StrCat("all-reduce ring reduce-scatter step ", s);
    absl::Span<float> out = WireChunkOf(data, wire, n, (r - s + n) % n);
    ASSIGN_OR_RETURN(bytes, EncodeWire(wire, out));
    absl::Status status = link.Send(next, bytes);
    if (!status.ok()) return WithContext(status, step);
    absl::Span<float> in = WireChunkOf(data, wire, n, (r - s - 1 + n) % n);
    status = RecvEncoded(link, wire, prev, static_cast<int64_t>(in.size()), &bytes, &decoded);
    if (!status.ok()) return WithContext(status, step);
    for (size_t i = 0; i < in.size(); ++i) in[i] = decoded[i] + in[i];
  }
  return absl::OkStatus();
}

// All-gather: rank r owns the finished chunk r+1, encodes it once and takes
// its decoded value; every later step forwards the bytes it received.
absl::Status CompressedAllGather(Link& link, absl::Span<float> data, WireFormat wire) {
  const int n = link.world_size(), r = link.rank();
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  absl::Span<float> own = WireChunkOf(data, wire, n, (r + 1) % n);
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeWire(wire, own));
  RETURN_IF_ERROR(DecodeWire(wire, bytes, own));
  std::vector<float> decoded;
  for (int s = 0; s < n - 1; ++s) {
    const std::string step = absl::StrCat("all-reduce ring all-gather step ", s);
    absl::Status status = link.Send(next, bytes);
    if (!status.ok()) return WithContext(status, step);
    absl::Span<float> in = WireChunkOf(data, wire, n, (r - s + n) % n);
    status = RecvEncoded(link, wire, prev, static_cast<int64_t>(in.size()), &bytes, &decoded);
    if (!status.ok()) return WithContext(status, step);
    std::copy(decoded.begin(), decoded.end(), in.begin());
  }
  return absl::OkStatus();
}

absl::Status CompressedRingAllReduce(Link& link, absl::Span<float> data, WireFormat wire) {
  absl::Status status = CompressedReduceScatter(link, data, wire);
  if (status.ok()) status = CompressedAllGather(link, data, wire);
  if (!status.ok()) {
    // Best effort: the successor may be the rank that failed.
    link.Send((link.rank() + 1) % link.world_size(), EncodeAbort(status)).IgnoreError();
  }
  return status;
}

// Sends the encoded vector to every peer, then sums the decoded vectors of
// all ranks (this rank's own decoded too) in rank order.
absl::Status CompressedDirectAllReduce(Link& link, absl::Span<float> data, WireFormat wire) {
  const int n = link.world_size(), r = link.rank();
  ASSIGN_OR_RETURN(std::vector<uint8_t> mine, EncodeWire(wire, data));
  absl::Status first_error;
  for (int p = 0; p < n; ++p) {
    if (p == r) continue;
    // Keep sending after a failure so that live peers still get our vector.
    absl::Status sent = link.Send(p, mine);
    if (!sent.ok() && first_error.ok()) first_error = WithContext(sent, "all-reduce direct");
  }
  RETURN_IF_ERROR(first_error);
  const int64_t length = static_cast<int64_t>(data.size());
  std::vector<float> sum(length), decoded(length);
  std::vector<uint8_t> bytes;
  for (int p = 0; p < n; ++p) {
    absl::Status status = p == r ? DecodeWire(wire, mine, absl::MakeSpan(decoded))
                                 : RecvEncoded(link, wire, p, length, &bytes, &decoded);
    if (!status.ok()) return WithContext(status, "all-reduce direct");
    for (int64_t i = 0; i < length; ++i) sum[i] = p == 0 ? decoded[i] : sum[i] + decoded[i];
  }
  std::copy(sum.begin(), sum.end(), data.begin());
  return absl::OkStatus();
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

absl::StatusOr<AllReduceAlgorithm> ParseAllReduceAlgorithm(absl::string_view name) {
  for (AllReduceAlgorithm a :
       {AllReduceAlgorithm::kAuto, AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect}) {
    if (name == AllReduceAlgorithmName(a)) return a;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown all-reduce algorithm '", name, "' (auto, ring or direct)"));
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

absl::Status AllReduceSum(Transport& transport, absl::Span<float> data, WireFormat wire,
                          AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                          CollectiveStats* stats) {
  if (wire == WireFormat::kExact) {
    return absl::InvalidArgumentError(
        "float all-reduce: wire format exact carries int64 fixed point (use the int64 "
        "AllReduceSum)");
  }
  if (wire == WireFormat::kF32) {
    return AllReduceSumImpl(transport, data, algorithm, tag, deadline, stats);
  }
  Link link(transport, tag, deadline, stats);
  if (link.world_size() <= 1) return absl::OkStatus();
  const int64_t bytes = WireBytes(wire, static_cast<int64_t>(data.size()));
  if (ResolveAllReduceAlgorithm(algorithm, link.world_size(), bytes) ==
      AllReduceAlgorithm::kRing) {
    return CompressedRingAllReduce(link, data, wire);
  }
  return CompressedDirectAllReduce(link, data, wire);
}

CollectiveStats AllReduceTraffic(WireFormat wire, AllReduceAlgorithm algorithm, int64_t length,
                                 int world_size, int rank) {
  CollectiveStats stats;
  const int n = world_size;
  if (n <= 1) return stats;
  if (ResolveAllReduceAlgorithm(algorithm, n, WireBytes(wire, length)) !=
      AllReduceAlgorithm::kRing) {
    stats.bytes_sent = stats.bytes_received = (n - 1) * WireBytes(wire, length);
    stats.messages_sent = stats.messages_received = n - 1;
    return stats;
  }
  // Step s sends chunks r-s (reduce-scatter) and r+1-s (all-gather) and
  // receives the predecessor's: r-s-1 and r-s.
  for (int s = 0; s < n - 1; ++s) {
    for (int c : {rank - s, rank + 1 - s}) {
      stats.bytes_sent += WireBytes(wire, WireChunk(wire, length, n, (c + n) % n).size);
      stats.bytes_received += WireBytes(wire, WireChunk(wire, length, n, (c - 1 + n) % n).size);
    }
  }
  stats.messages_sent = stats.messages_received = 2 * (n - 1);
  return stats;
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
