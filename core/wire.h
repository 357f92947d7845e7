// Conversions between in-memory structs and their wire (protobuf) records.
#ifndef SHARDLM_CORE_WIRE_H_
#define SHARDLM_CORE_WIRE_H_

#include "absl/status/statusor.h"
#include "core/model_config.h"
#include "core/wire.pb.h"

namespace shardlm {

// The wire record of `config`.
wire::ModelConfig ToWire(const LlamaConfig& config);
// Back from the wire; InvalidArgument when a field is out of range (a peer's
// record is untrusted input).
absl::StatusOr<LlamaConfig> FromWire(const wire::ModelConfig& record);

}  // namespace shardlm

#endif  // SHARDLM_CORE_WIRE_H_
