#include "transport/tcp/frame.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "transport/tcp/crc32c.h"

namespace shardlm {
namespace tcp {
namespace {

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

std::array<uint8_t, kFrameHeaderSize> EncodeFrameHeader(uint16_t type, uint32_t tag,
                                                        absl::Span<const uint8_t> payload) {
  std::array<uint8_t, kFrameHeaderSize> h{};
  Put32(&h[0], kFrameMagic);
  Put16(&h[4], kProtocolVersion);
  Put16(&h[6], type);
  Put32(&h[8], tag);
  Put32(&h[12], static_cast<uint32_t>(payload.size()));
  Put32(&h[16], Crc32c(payload));
  Put32(&h[20], 0);
  return h;
}

std::vector<uint8_t> EncodeFrame(uint16_t type, uint32_t tag, absl::Span<const uint8_t> payload) {
  const auto header = EncodeFrameHeader(type, tag, payload);
  std::vector<uint8_t> out(kFrameHeaderSize + payload.size());
  std::memcpy(out.data(), header.data(), kFrameHeaderSize);
  if (!payload.empty()) std::memcpy(out.data() + kFrameHeaderSize, payload.data(), payload.size());
  return out;
}

absl::StatusOr<FrameHeader> DecodeFrameHeader(absl::Span<const uint8_t> header,
                                              uint32_t max_frame_size) {
  if (header.size() < kFrameHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated frame header: ", header.size(), " of ", kFrameHeaderSize, " bytes"));
  }
  const uint8_t* p = header.data();
  if (Get32(p) != kFrameMagic) return absl::InvalidArgumentError("not a shardlm peer (bad magic)");
  FrameHeader h;
  h.version = Get16(p + 4);
  if (h.version != kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("protocol version ", h.version, ", expected ", kProtocolVersion));
  }
  h.type = Get16(p + 6);
  h.tag = Get32(p + 8);
  h.length = Get32(p + 12);
  h.crc = Get32(p + 16);
  if (h.length > max_frame_size) {
    return absl::ResourceExhaustedError(absl::StrCat("frame of ", h.length,
                                                     " bytes exceeds the maximum ", max_frame_size));
  }
  return h;
}

absl::Status CheckFramePayload(const FrameHeader& header, absl::Span<const uint8_t> payload) {
  if (payload.size() != header.length) {
    return absl::InvalidArgumentError(absl::StrCat("frame payload is ", payload.size(),
                                              " bytes, header says ", header.length));
  }
  if (Crc32c(payload) != header.crc) return absl::DataLossError("frame checksum mismatch");
  return absl::OkStatus();
}

absl::StatusOr<Frame> DecodeFrame(absl::Span<const uint8_t> bytes, uint32_t max_frame_size) {
  ASSIGN_OR_RETURN(FrameHeader h, DecodeFrameHeader(bytes, max_frame_size));
  const absl::Span<const uint8_t> payload = bytes.subspan(kFrameHeaderSize);
  RETURN_IF_ERROR(CheckFramePayload(h, payload));
  Frame f;
  f.type = h.type;
  f.tag = h.tag;
  f.payload.assign(payload.begin(), payload.end());
  return f;
}

}  // namespace tcp
}  // namespace shardlm
