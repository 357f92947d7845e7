// The registry of transports by name ("local", "tcp", "mpi"). A transport
// registers itself from its alwayslink target with a static
// Registrar<Transport, TransportOptions>; link that target and call
// CreateTransport(name, opts).
#ifndef SHARDLM_TRANSPORT_TRANSPORT_REGISTRY_H_
#define SHARDLM_TRANSPORT_TRANSPORT_REGISTRY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "core/transport.h"

namespace shardlm {

using TransportRegistry = Registry<Transport, TransportOptions>;

// Creates the transport registered as `name` for `opts.rank` of
// `opts.world_size`; NotFound (listing the registered names) if there is none.
inline absl::StatusOr<std::unique_ptr<Transport>> CreateTransport(const std::string& name,
                                                                  const TransportOptions& opts) {
  return TransportRegistry::Global().Create(name, opts);
}

}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TRANSPORT_REGISTRY_H_
