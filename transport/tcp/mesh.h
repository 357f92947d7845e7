// Building the TCP mesh of one cluster session.
//
// The root dials every worker (`--workers H:P,...`), authenticates, and
// sends each a wire::MeshJoin{ROOT} naming its rank, the world size, a fresh
// session id and every rank's address. Worker r then dials workers 1..r-1
// itself (MeshJoin{PEER}) and waits for workers r+1..N-1 to dial it; once
// its links to every rank are up it answers the root with wire::MeshReady.
// Every rank ends with a TcpTransport over N-1 authenticated connections.
#ifndef SHARDLM_TRANSPORT_TCP_MESH_H_
#define SHARDLM_TRANSPORT_TCP_MESH_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/socket.h"
#include "transport/tcp/tcp_transport.h"

namespace shardlm {
namespace tcp {

// "host:port" parsed; InvalidArgument naming `text` when malformed.
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(const std::string& text);
// A comma-separated list of host:port (at least one).
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(const std::string& text);

struct MeshOptions {
  std::string secret;  // empty: no authentication (both ends must agree)
  Clock* clock = nullptr;  // Not owned; required.
  // Bound on each connect + handshake.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Bound on the whole mesh setup (every worker answering MeshReady).
  absl::Duration setup_timeout = absl::Seconds(60);
  // Root only: the session's failure timeout, which the workers adopt
  // (TcpTransport heartbeats); zero: no heartbeats.
  absl::Duration failure_timeout = absl::ZeroDuration();
};

// How DialAvailable treats workers it cannot use.
struct DialOptions {
  // Leave out workers that cannot be reached or refuse (else: fail).
  bool skip_unreachable = false;
  // How long to keep retrying a worker that is busy (its previous session
  // may still be ending).
  absl::Duration busy_retry = absl::Seconds(2);
};

// What DialAvailable made.
struct DialedCluster {
  std::unique_ptr<TcpTransport> transport;  // rank 0
  std::vector<int> included;                // worker indexes, in rank order (rank i+1)
  std::vector<std::string> skipped;         // why each left-out worker was left out
};

// The root's side, in three steps: reserve every worker (connect,
// authenticate, "are you free?"), then assign ranks to the reserved ones
// and send each the peer list, then wait until each reports ready.
absl::StatusOr<DialedCluster> DialAvailable(const std::vector<HostPort>& workers,
                                            const MeshOptions& options, const DialOptions& dial);

// The root's side: dials `workers` (worker i becomes rank i + 1) and returns
// rank 0's transport once every worker reported ready. Errors name the
// worker: unreachable, wrong secret, wrong protocol, busy with another root,
// or a failure it reported while joining the others.
absl::StatusOr<std::unique_ptr<TcpTransport>> DialCluster(const std::vector<HostPort>& workers,
                                                          const MeshOptions& options);

// A worker's side: listens, authenticates every connection on a thread of
// its own (a stranger, a wrong secret or garbage bytes cost one rejected
// connection, logged, and never stop the listener), and hands out one root
// session at a time. Thread-safe.
class MeshListener {
 public:
  // Binds `bind_addr`:`port` (port 0: ephemeral) and starts accepting.
  static absl::StatusOr<std::unique_ptr<MeshListener>> Start(const std::string& bind_addr,
                                                             int port,
                                                             const MeshOptions& options);
  ~MeshListener();
  MeshListener(const MeshListener&) = delete;
  MeshListener& operator=(const MeshListener&) = delete;

  int port() const { return port_; }

  // Waits (until `deadline`) for a root, joins the mesh of its session and
  // returns this worker's transport. A session whose setup fails returns
  // that error (after telling the root); the caller may simply call again.
  // Until EndSession(), other roots are refused as busy.
  absl::StatusOr<std::unique_ptr<TcpTransport>> NextSession(absl::Time deadline);

  // The current session is over: the next root may start one.
  void EndSession();

  // Connections rejected so far (failed handshake, bad join, busy).
  int64_t rejected() const;

 private:
  struct PendingPeer {
    std::unique_ptr<FramedConnection> conn;
    absl::Time arrived;
  };
  struct RootJoin;

  MeshListener(Listener listener, const MeshOptions& options);
  void AcceptLoop();
  void Handle(Socket socket);
  void Reject(const std::string& peer, const absl::Status& why);
  // Waits for the root's rank assignment (its second MeshJoin) into root.join.
  absl::StatusOr<std::unique_ptr<TcpTransport>> ReceiveAssignment(RootJoin& root,
                                                                  absl::Time deadline);
  absl::StatusOr<std::unique_ptr<TcpTransport>> JoinMesh(RootJoin& root, absl::Time deadline);
  absl::Status WaitForPeers(uint64_t session_id, int rank, int world,
                            const FramedConnection& root,
                            std::vector<std::unique_ptr<FramedConnection>>* conns,
                            absl::Time deadline);

  Listener listener_;
  const int port_;
  const MeshOptions options_;
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;                     // guarded by mu_
  bool busy_ = false;                         // guarded by mu_: a root is being served
  std::unique_ptr<RootJoin> pending_root_;    // guarded by mu_
  // session id -> rank -> connection; guarded by mu_.
  std::map<uint64_t, std::map<int, PendingPeer>> pending_peers_;
  int64_t rejected_ = 0;                      // guarded by mu_
  int active_handlers_ = 0;                   // guarded by mu_
};

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_MESH_H_
