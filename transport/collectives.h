// Collectives written once on the point-to-point Transport interface, so
// every transport (local, tcp, mpi, simulated) gets them.
//
// Contract shared by every function here:
//  - Every rank of the cluster calls the same collectives in the same order
//    with the same tag, algorithm and vector length (Broadcast: same root).
//    Consecutive collectives may reuse a tag: each consumes exactly the
//    messages the others send it.
//  - Send is assumed to be buffered (it returns once the transport holds the
//    bytes, as core/transport.h promises), so send-then-receive patterns do
//    not deadlock.
//  - Nothing hangs: every wait ends by `deadline`. An error names the
//    collective, the step and the peer, then carries the transport's message
//    and status code ("all-reduce ring reduce-scatter step 2: recv from rank
//    3: ..."). After a failed collective the tag's message streams are in an
//    undefined state: use a fresh tag or transport for what follows.
//  - Payloads of int64/float/f16 travel as little-endian bytes; Q8_0 as
//    GGUF blocks.
//  - `stats`, when not null, is incremented by the payload bytes and messages
//    this rank sent and received (nothing is counted for a rank's own data).
#ifndef SHARDLM_TRANSPORT_COLLECTIVES_H_
#define SHARDLM_TRANSPORT_COLLECTIVES_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/transport.h"

namespace shardlm {

enum class AllReduceAlgorithm {
  // kDirect when world_size <= 3 or the vector is smaller than
  // kAutoDirectMaxBytes, else kRing. Every rank resolves it identically.
  kAuto,
  // Reduce-scatter then all-gather over world_size chunks: each rank sends
  // about 2 (N-1)/N of the vector in 2 (N-1) messages to its successor.
  kRing,
  // Every rank sends its whole vector to every other rank and sums locally:
  // (N-1) x the vector per rank, one message latency. Best for small N or
  // small vectors.
  kDirect,
};

// Vectors below this many bytes use kDirect under kAuto.
inline constexpr int64_t kAutoDirectMaxBytes = 4096;

// "auto", "ring" or "direct".
const char* AllReduceAlgorithmName(AllReduceAlgorithm algorithm);
// Parses an AllReduceAlgorithmName; InvalidArgument naming the choices
// otherwise.
absl::StatusOr<AllReduceAlgorithm> ParseAllReduceAlgorithm(absl::string_view name);

// The algorithm `algorithm` stands for with `world_size` ranks and a vector
// of `bytes` bytes (kAuto resolved; the others returned as they are).
AllReduceAlgorithm ResolveAllReduceAlgorithm(AllReduceAlgorithm algorithm, int world_size,
                                             int64_t bytes);

// Bytes and messages moved by one rank (payload only).
struct CollectiveStats {
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  int64_t messages_sent = 0;
  int64_t messages_received = 0;
};

// Element range [offset, offset + size) of ring chunk `chunk` of a vector of
// `length` elements split over `world_size` chunks: the first
// length % world_size chunks hold one element more than the rest; chunks are
// empty when length < world_size.
struct ChunkRange {
  int64_t offset = 0;
  int64_t size = 0;
};
ChunkRange RingChunk(int64_t length, int world_size, int chunk);

// How the partial sums of a row-parallel projection travel in an all-reduce
// (architecture.md, "Numerics contract").
enum class WireFormat {
  // int64 fixed point (2^-30), summed exactly: 8 bytes per element. Carried
  // by the int64 AllReduceSum only.
  kExact,
  // Plain floats, 4 bytes per element.
  kF32,
  // IEEE half floats, 2 bytes per element.
  kF16,
  // GGUF Q8_0 blocks (f16 scale amax/127, 32 int8), 34 bytes per 32
  // elements; a partial last block is sent whole (zero padded).
  kQ8_0,
};

// "exact", "f32", "f16" or "q8_0".
const char* WireFormatName(WireFormat wire);

// Parses a WireFormatName; InvalidArgument naming the choices otherwise.
absl::StatusOr<WireFormat> ParseWireFormat(absl::string_view name);

// Bytes on the wire for a vector of `elements` elements in `wire`.
int64_t WireBytes(WireFormat wire, int64_t elements);

// `values` encoded in a float wire format (kF32, kF16, kQ8_0): exactly
// WireBytes(wire, values.size()) bytes. InvalidArgument for kExact.
absl::StatusOr<std::vector<uint8_t>> EncodeWire(WireFormat wire, absl::Span<const float> values);

// Decodes WireBytes(wire, values.size()) bytes of `bytes` into `values`.
// InvalidArgument for kExact or a wrong byte count.
absl::Status DecodeWire(WireFormat wire, absl::Span<const uint8_t> bytes, absl::Span<float> values);

// Ring chunk `chunk` of a vector of `length` elements sent in `wire` over
// `world_size` ranks. Like RingChunk, except that kQ8_0 splits on whole
// 32-element blocks (RingChunk over the blocks; the last block may be
// partial) so that no block is split between chunks.
ChunkRange WireChunk(WireFormat wire, int64_t length, int world_size, int chunk);

// Replaces `data` on every rank by the element-wise sum over all ranks.
// Integer sums are exact, so every rank ends with the same bits whatever the
// algorithm (ring == direct bit for bit).
absl::Status AllReduceSum(Transport& transport, absl::Span<int64_t> data,
                          AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                          CollectiveStats* stats = nullptr);

// Float version. Every rank ends with identical bytes. Summation order:
//  - kDirect: ((x_0 + x_1) + x_2) + ... + x_{N-1}, in rank order.
//  - kRing: the elements of chunk c are summed starting at rank c and going
//    round the ring: ((x_c + x_{c+1}) + ...) + x_{c-1}, ranks mod N.
// The two orders may differ in the last bits; use int64 fixed point (above)
// where results must not depend on the algorithm or the node count.
absl::Status AllReduceSum(Transport& transport, absl::Span<float> data,
                          AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                          CollectiveStats* stats = nullptr);

// Float all-reduce whose payloads travel in `wire` (kF32, kF16 or kQ8_0;
// kExact is InvalidArgument: use the int64 version). kAuto resolves on
// WireBytes(wire, data.size()). Every rank ends with identical bytes:
//  - kF32: exactly the float AllReduceSum above.
//  - kRing (kF16, kQ8_0): chunks are WireChunk's. In the reduce-scatter each
//    rank encodes its running partial sum of a chunk, the successor decodes
//    it and adds its own term in float. Then the owner of each finished
//    chunk encodes it once and every rank, the owner included, replaces the
//    chunk by the decoded bytes (forwarded unchanged round the ring).
//    Each rank sends 2 (N-1) encoded chunks.
//  - kDirect (kF16, kQ8_0): each rank encodes its whole vector once and
//    sends it to every peer; every rank sums the decoded vectors of all
//    ranks, its own included, in rank order. (N-1) encoded vectors per rank.
absl::Status AllReduceSum(Transport& transport, absl::Span<float> data, WireFormat wire,
                          AllReduceAlgorithm algorithm, uint32_t tag, absl::Time deadline,
                          CollectiveStats* stats = nullptr);

// What one all-reduce of `length` elements in `wire` moves for `rank`
// (payload bytes and messages, as CollectiveStats counts them): the int64
// AllReduceSum for kExact, the float one otherwise. `algorithm` is resolved
// as the all-reduce resolves it.
CollectiveStats AllReduceTraffic(WireFormat wire, AllReduceAlgorithm algorithm, int64_t length,
                                 int world_size, int rank);

// Copies `*data` of rank `root` into `*data` of every other rank (any size;
// the root sends to each rank directly). A dead non-root rank fails the
// root's call after it has sent to every live rank.
absl::Status Broadcast(Transport& transport, int root, std::vector<uint8_t>* data, uint32_t tag,
                       absl::Time deadline, CollectiveStats* stats = nullptr);

// Sets `*all` to world_size entries in rank order, entry r being rank r's
// `mine` (sizes may differ between ranks).
absl::Status AllGather(Transport& transport, absl::Span<const uint8_t> mine,
                       std::vector<std::vector<uint8_t>>* all, uint32_t tag, absl::Time deadline,
                       CollectiveStats* stats = nullptr);

// Returns OK on a rank only once every rank has entered the barrier.
absl::Status Barrier(Transport& transport, uint32_t tag, absl::Time deadline,
                     CollectiveStats* stats = nullptr);

}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_COLLECTIVES_H_
