// The TCP wire framing: a fixed 24-byte little-endian header followed by the
// payload. Header layout (offsets in bytes):
//   0 magic u32 (kFrameMagic, "SLMF")   4 protocol version u16   6 type u16
//   8 tag u32   12 payload length u32   16 crc32c u32 of the payload
//   20 reserved u32 (written as 0, ignored when read)
#ifndef SHARDLM_TRANSPORT_TCP_FRAME_H_
#define SHARDLM_TRANSPORT_TCP_FRAME_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace shardlm {
namespace tcp {

inline constexpr uint32_t kFrameMagic = 0x464D4C53u;  // "SLMF" little-endian
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderSize = 24;
inline constexpr uint32_t kDefaultMaxFrameSize = 256u << 20;  // 256 MiB
// Largest frame accepted before the peer has authenticated: enough for the
// handshake and join records, too small for a stranger to make us allocate.
inline constexpr uint32_t kHandshakeMaxFrameSize = 64u << 10;  // 64 KiB

// Frame types. Handshake frames come first on every connection.
enum FrameType : uint16_t {
  kFrameHello = 1,  // payload: a serialized wire::Hello
  kFrameAuth = 2,   // payload: an HMAC-SHA256 tag (32 bytes)
  kFrameError = 3,  // payload: one line of text; the sender closes next
  kFrameJoin = 4,   // payload: a serialized wire::MeshJoin (after the handshake)
  kFrameReady = 5,  // payload: a serialized wire::MeshReady (worker to root)
  kFrameHeartbeat = 6,  // no payload: "still here", on an otherwise quiet link
  kFrameData = 16,  // payload: a Transport message under `tag`
};

// A decoded, validated frame header.
struct FrameHeader {
  uint16_t version = kProtocolVersion;
  uint16_t type = 0;
  uint32_t tag = 0;
  uint32_t length = 0;  // payload bytes
  uint32_t crc = 0;     // crc32c of the payload
};

// A whole received frame.
struct Frame {
  uint16_t type = 0;
  uint32_t tag = 0;
  std::vector<uint8_t> payload;
};

// The header of a frame carrying `payload` (length and checksum filled in).
std::array<uint8_t, kFrameHeaderSize> EncodeFrameHeader(uint16_t type, uint32_t tag,
                                                        absl::Span<const uint8_t> payload);

// Header followed by payload, in one buffer.
std::vector<uint8_t> EncodeFrame(uint16_t type, uint32_t tag, absl::Span<const uint8_t> payload);

// Parses and validates a header: magic (InvalidArgument "not a shardlm peer
// (bad magic)"), version (FailedPrecondition "protocol version V, expected
// 1"), and length <= max_frame_size (ResourceExhausted "frame of N bytes
// exceeds the maximum M"). `header` must hold kFrameHeaderSize bytes.
absl::StatusOr<FrameHeader> DecodeFrameHeader(absl::Span<const uint8_t> header,
                                              uint32_t max_frame_size = kDefaultMaxFrameSize);

// DataLoss "frame checksum mismatch" unless `payload` matches header.crc
// (and InvalidArgument if its size differs from header.length).
absl::Status CheckFramePayload(const FrameHeader& header, absl::Span<const uint8_t> payload);

// Decodes exactly one whole frame held in `bytes` (header + payload).
absl::StatusOr<Frame> DecodeFrame(absl::Span<const uint8_t> bytes,
                                  uint32_t max_frame_size = kDefaultMaxFrameSize);

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_FRAME_H_
