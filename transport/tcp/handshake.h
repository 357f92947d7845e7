// Connection handshake: protocol-version check and mutual pre-shared-key
// authentication (HMAC-SHA256 challenge-response).
//
//   dialer   -> Hello{version, rank, world_size, nonce_a, build}
//   listener -> Hello{version, rank, world_size, nonce_b, build}
//   listener -> Auth{HMAC(secret, "listener" || T)}
//   dialer   -> Auth{HMAC(secret, "dialer" || T)}
//
// where T is the transcript: both Hello records as sent, the dialer's first
// (length-prefixed). The MACs thus prove the secret and vouch for every
// Hello field (version, rank, world size, both fresh nonces).
//
// A side without a secret sends an empty nonce and no Auth frames; both
// sides without a secret is allowed (authenticated = false), exactly one is
// refused on both ends. Each side sends its Hello before judging the peer's,
// so both report their own precise error. A side that fails after the first
// exchange sends a best-effort Error frame with its reason before returning.
#ifndef SHARDLM_TRANSPORT_TCP_HANDSHAKE_H_
#define SHARDLM_TRANSPORT_TCP_HANDSHAKE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/frame.h"

namespace shardlm {
namespace tcp {

inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kMacSize = 32;

// This side's identity and credentials.
struct HandshakeOptions {
  int rank = 0;
  int world_size = 1;
  std::string secret;  // empty: no authentication
  std::string build = "shardlm";
  // The version put in our Hello; only tests change it.
  int protocol_version = kProtocolVersion;
};

// What the peer told us, once the handshake succeeded.
struct HandshakeResult {
  bool authenticated = false;  // both sides proved the same secret
  int peer_rank = 0;
  int peer_world_size = 0;
  std::string peer_build;
};

// Reads a shared secret: the file must exist and be non-empty; one trailing
// newline ("\n" or "\r\n") is stripped.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// The connecting side's handshake. Errors name the peer; an authentication
// failure is Unauthenticated, a version mismatch FailedPrecondition.
absl::StatusOr<HandshakeResult> DialerHandshake(FramedConnection& conn,
                                                const HandshakeOptions& options,
                                                absl::Time deadline);

// The accepting side's handshake; same error conventions.
absl::StatusOr<HandshakeResult> ListenerHandshake(FramedConnection& conn,
                                                  const HandshakeOptions& options,
                                                  absl::Time deadline);

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_HANDSHAKE_H_
