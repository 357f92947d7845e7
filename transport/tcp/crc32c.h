// CRC-32C (Castagnoli), the checksum of TCP frame payloads.
#ifndef SHARDLM_TRANSPORT_TCP_CRC32C_H_
#define SHARDLM_TRANSPORT_TCP_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace shardlm {
namespace tcp {

// Extends `crc` (the CRC-32C of earlier bytes; 0 for none) over `data`.
uint32_t Crc32cExtend(uint32_t crc, const uint8_t* data, size_t size);

// The CRC-32C of `data` (reflected polynomial 0x82F63B78, init and final
// xor 0xFFFFFFFF): Crc32c("123456789") == 0xE3069283.
inline uint32_t Crc32c(absl::Span<const uint8_t> data) {
  return Crc32cExtend(0, data.data(), data.size());
}

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_CRC32C_H_
