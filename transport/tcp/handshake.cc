#include "transport/tcp/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"
#include "core/wire.pb.h"

namespace shardlm {
namespace tcp {
namespace {

constexpr size_t kMaxErrorText = 300;
constexpr size_t kMaxSecretSize = 1 << 16;

absl::Status Err(absl::StatusCode code, const FramedConnection& conn, absl::string_view msg) {
  return absl::Status(code, absl::StrCat("handshake with ", conn.peer(), ": ", msg));
}

// Tells the peer why we give up (best effort), then returns the error.
absl::Status Fail(FramedConnection& conn, absl::StatusCode code, absl::string_view msg,
                  absl::Time deadline) {
  std::vector<uint8_t> payload = {static_cast<uint8_t>(code)};
  payload.insert(payload.end(), msg.begin(), msg.end());
  conn.SendFrame(kFrameError, 0, payload, deadline).IgnoreError();
  return Err(code, conn, msg);
}

// The status a peer's Error frame carries.
absl::Status PeerError(const FramedConnection& conn, const std::vector<uint8_t>& payload) {
  int code = payload.empty() ? 0 : payload[0];
  if (code <= 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) code = 2;
  std::string text;
  for (size_t i = 1; i < payload.size() && text.size() < kMaxErrorText; ++i) {
    const char c = static_cast<char>(payload[i]);
    text.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return Err(static_cast<absl::StatusCode>(code), conn,
             absl::StrCat(text, " (reported by the peer)"));
}

// Receives the next frame, which must be of `type`.
absl::StatusOr<Frame> Expect(FramedConnection& conn, uint16_t type, absl::Time deadline) {
  absl::StatusOr<Frame> f = conn.RecvFrame(deadline);
  if (!f.ok()) {
    return absl::Status(f.status().code(),
                        absl::StrCat(f.status().message(), " (during handshake)"));
  }
  if (f->type == kFrameError) return PeerError(conn, f->payload);
  if (f->type != type) {
    return Fail(conn, absl::StatusCode::kInvalidArgument,
                absl::StrCat("unexpected frame type ", f->type, ", expected ", type), deadline);
  }
  return f;
}

absl::StatusOr<std::string> NewNonce() {
  std::string nonce(kNonceSize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceSize) != 1) {
    return absl::InternalError("RAND_bytes failed to produce a handshake nonce");
  }
  return nonce;
}

// HMAC-SHA256 under `secret` of `label` and the handshake transcript: both
// Hello records exactly as sent (dialer's first, length-prefixed), so a MAC
// also vouches for every field of both Hellos (rank, world size, nonces).
std::string Mac(const std::string& secret, absl::string_view label,
                const std::string& dialer_hello, const std::string& listener_hello) {
  const uint32_t n = static_cast<uint32_t>(dialer_hello.size());
  const char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8),
                       static_cast<char>(n >> 16), static_cast<char>(n >> 24)};
  const std::string msg =
      absl::StrCat(label, absl::string_view(len, 4), dialer_hello, listener_hello);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &out_len);
  return std::string(reinterpret_cast<char*>(out), out_len);
}

bool MacMatches(const std::string& expected, const std::vector<uint8_t>& got) {
  return got.size() == expected.size() &&
         CRYPTO_memcmp(expected.data(), got.data(), got.size()) == 0;
}

// Sends our Hello; returns its bytes (for the transcript).
absl::StatusOr<std::string> SendHello(FramedConnection& conn, const HandshakeOptions& o,
                                      const std::string& nonce, absl::Time deadline) {
  wire::Hello hello;
  hello.set_version(static_cast<wire::ProtocolVersion>(o.protocol_version));
  hello.set_rank(o.rank);
  hello.set_world_size(o.world_size);
  hello.set_nonce(nonce);
  hello.set_build(o.build);
  const std::string bytes = hello.SerializeAsString();
  RETURN_IF_ERROR(conn.SendFrame(
      kFrameHello, 0,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      deadline));
  return bytes;
}

// Receives the peer's Hello; `bytes` gets it as received (the transcript).
absl::StatusOr<wire::Hello> RecvHello(FramedConnection& conn, absl::Time deadline,
                                      std::string* bytes) {
  ASSIGN_OR_RETURN(Frame f, Expect(conn, kFrameHello, deadline));
  bytes->assign(f.payload.begin(), f.payload.end());
  wire::Hello hello;
  if (!hello.ParseFromArray(f.payload.data(), static_cast<int>(f.payload.size()))) {
    return Fail(conn, absl::StatusCode::kInvalidArgument, "malformed Hello", deadline);
  }
  if (!hello.nonce().empty() && hello.nonce().size() != kNonceSize) {
    return Fail(conn, absl::StatusCode::kInvalidArgument,
                absl::StrCat("malformed Hello (nonce of ", hello.nonce().size(), " bytes)"),
                deadline);
  }
  return hello;
}

// Version and secret-presence checks on the peer's Hello.
absl::Status CheckPeerHello(FramedConnection& conn, const HandshakeOptions& o,
                            const wire::Hello& peer, absl::Time deadline) {
  if (peer.version() != o.protocol_version) {
    return Fail(conn, absl::StatusCode::kFailedPrecondition,
                absl::StrCat("protocol version ", static_cast<int>(peer.version()), ", expected ",
                             o.protocol_version),
                deadline);
  }
  if (!o.secret.empty() && peer.nonce().empty()) {
    return Fail(conn, absl::StatusCode::kUnauthenticated,
                "peer sent no authentication but --secret-file is set", deadline);
  }
  if (o.secret.empty() && !peer.nonce().empty()) {
    return Fail(conn, absl::StatusCode::kUnauthenticated,
                "peer requires a shared secret (--secret-file)", deadline);
  }
  return absl::OkStatus();
}

HandshakeResult ResultFrom(const wire::Hello& peer, bool authenticated) {
  HandshakeResult r;
  r.authenticated = authenticated;
  r.peer_rank = peer.rank();
  r.peer_world_size = peer.world_size();
  r.peer_build = peer.build();
  return r;
}

absl::Status WrongSecret(FramedConnection& conn, absl::Time deadline) {
  return Fail(conn, absl::StatusCode::kUnauthenticated,
              "authentication failed: wrong shared secret", deadline);
}

absl::Status SendMac(FramedConnection& conn, const std::string& mac, absl::Time deadline) {
  return conn.SendFrame(kFrameAuth, 0,
                        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(mac.data()),
                                            mac.size()),
                        deadline);
}

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot read secret file ", path, ": ", std::strerror(errno)));
  }
  std::string data;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && data.size() <= kMaxSecretSize) {
    data.append(buf, n);
  }
  const bool error = std::ferror(f) != 0;
  std::fclose(f);
  if (error) return absl::DataLossError(absl::StrCat("error reading secret file ", path));
  if (data.size() > kMaxSecretSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret file ", path, " is larger than ", kMaxSecretSize, " bytes"));
  }
  if (!data.empty() && data.back() == '\n') data.pop_back();
  if (!data.empty() && data.back() == '\r') data.pop_back();
  if (data.empty()) return absl::InvalidArgumentError(absl::StrCat("secret file ", path, " is empty"));
  return data;
}

absl::StatusOr<HandshakeResult> DialerHandshake(FramedConnection& conn,
                                                const HandshakeOptions& options,
                                                absl::Time deadline) {
  std::string nonce_a;
  if (!options.secret.empty()) {
    ASSIGN_OR_RETURN(nonce_a, NewNonce());
  }
  ASSIGN_OR_RETURN(const std::string mine, SendHello(conn, options, nonce_a, deadline));
  std::string theirs;
  ASSIGN_OR_RETURN(wire::Hello peer, RecvHello(conn, deadline, &theirs));
  RETURN_IF_ERROR(CheckPeerHello(conn, options, peer, deadline));
  if (options.secret.empty()) return ResultFrom(peer, false);

  ASSIGN_OR_RETURN(Frame auth, Expect(conn, kFrameAuth, deadline));
  if (!MacMatches(Mac(options.secret, "listener", mine, theirs), auth.payload)) {
    return WrongSecret(conn, deadline);
  }
  RETURN_IF_ERROR(SendMac(conn, Mac(options.secret, "dialer", mine, theirs), deadline));
  return ResultFrom(peer, true);
}

absl::StatusOr<HandshakeResult> ListenerHandshake(FramedConnection& conn,
                                                  const HandshakeOptions& options,
                                                  absl::Time deadline) {
  std::string theirs;
  ASSIGN_OR_RETURN(wire::Hello peer, RecvHello(conn, deadline, &theirs));
  std::string nonce_b;
  if (!options.secret.empty()) {
    ASSIGN_OR_RETURN(nonce_b, NewNonce());
  }
  ASSIGN_OR_RETURN(const std::string mine, SendHello(conn, options, nonce_b, deadline));
  RETURN_IF_ERROR(CheckPeerHello(conn, options, peer, deadline));
  if (options.secret.empty()) return ResultFrom(peer, false);

  RETURN_IF_ERROR(SendMac(conn, Mac(options.secret, "listener", theirs, mine), deadline));
  ASSIGN_OR_RETURN(Frame auth, Expect(conn, kFrameAuth, deadline));
  if (!MacMatches(Mac(options.secret, "dialer", theirs, mine), auth.payload)) {
    return WrongSecret(conn, deadline);
  }
  return ResultFrom(peer, true);
}

}  // namespace tcp
}  // namespace shardlm
