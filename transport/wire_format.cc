// The wire formats of the float all-reduce (transport/collectives.h):
// names, sizes, encoding and decoding, chunking.
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

const char* WireFormatName(WireFormat wire) {
  switch (wire) {
    case WireFormat::kExact:
      return "exact";
    case WireFormat::kF32:
      return "f32";
    case WireFormat::kF16:
      return "f16";
    case WireFormat::kQ8_0:
      return "q8_0";
  }
  return "unknown";
}

absl::StatusOr<WireFormat> ParseWireFormat(absl::string_view name) {
  for (WireFormat wire : {WireFormat::kExact, WireFormat::kF32, WireFormat::kF16,
                          WireFormat::kQ8_0}) {
    if (name == WireFormatName(wire)) return wire;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("wire format must be exact, f32, f16 or q8_0, got '", name, "'"));
}

int64_t WireBytes(WireFormat wire, int64_t elements) {
  switch (wire) {
    case WireFormat::kExact:
      return elements * 8;
    case WireFormat::kF32:
      return elements * 4;
    case WireFormat::kF16:
      return elements * 2;
    case WireFormat::kQ8_0:
      return (elements + kQK - 1) / kQK * static_cast<int64_t>(sizeof(BlockQ8_0));
  }
  return 0;
}

absl::StatusOr<std::vector<uint8_t>> EncodeWire(WireFormat wire, absl::Span<const float> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  std::vector<uint8_t> bytes(WireBytes(wire, n));
  switch (wire) {
    case WireFormat::kExact:
      break;
    case WireFormat::kF32:
      if (n > 0) std::memcpy(bytes.data(), values.data(), bytes.size());
      return bytes;
    case WireFormat::kF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = F32ToF16(values[i]);
        std::memcpy(&bytes[2 * i], &h, 2);
      }
      return bytes;
    case WireFormat::kQ8_0: {
      const int64_t whole = n / kQK * kQK;
      RETURN_IF_ERROR(QuantizeRow(DType::kQ8_0, values.data(), whole, bytes.data()));
      if (whole == n) return bytes;
      float tail[kQK] = {};  // the partial last block, zero padded
      std::copy(values.begin() + whole, values.end(), tail);
      RETURN_IF_ERROR(QuantizeRow(DType::kQ8_0, tail, kQK,
                                  bytes.data() + whole / kQK * sizeof(BlockQ8_0)));
      return bytes;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("wire format ", WireFormatName(wire), " does not carry floats"));
}

absl::Status DecodeWire(WireFormat wire, absl::Span<const uint8_t> bytes,
                        absl::Span<float> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (wire == WireFormat::kExact) {
    return absl::InvalidArgumentError("wire format exact does not carry floats");
  }
  if (static_cast<int64_t>(bytes.size()) != WireBytes(wire, n)) {
    return absl::InvalidArgumentError(absl::StrCat(
        WireFormatName(wire), " decode: ", bytes.size(), " bytes for ", n, " elements"));
  }
  if (wire == WireFormat::kF32) {
    if (n > 0) std::memcpy(values.data(), bytes.data(), bytes.size());
  } else if (wire == WireFormat::kF16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, &bytes[2 * i], 2);
      values[i] = F16ToF32(h);
    }
  } else {
    const int64_t whole = n / kQK * kQK;
    RETURN_IF_ERROR(DequantizeRow(DType::kQ8_0, bytes.data(), whole, values.data()));
    if (whole == n) return absl::OkStatus();
    float tail[kQK];
    RETURN_IF_ERROR(DequantizeRow(DType::kQ8_0, bytes.data() + whole / kQK * sizeof(BlockQ8_0),
                                  kQK, tail));
    std::copy(tail, tail + (n - whole), values.begin() + whole);
  }
  return absl::OkStatus();
}

ChunkRange WireChunk(WireFormat wire, int64_t length, int world_size, int chunk) {
  if (wire != WireFormat::kQ8_0) return RingChunk(length, world_size, chunk);
  const ChunkRange blocks = RingChunk((length + kQK - 1) / kQK, world_size, chunk);
  ChunkRange range;
  range.offset = std::min(length, blocks.offset * kQK);
  range.size = std::min(length, (blocks.offset + blocks.size) * kQK) - range.offset;
  return range;
}

}  // namespace shardlm
