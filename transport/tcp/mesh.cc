#include "transport/tcp/mesh.h"

#include <openssl/rand.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/wire.pb.h"
#include "core/registry.h"
#include "glog/logging.h"
#include "transport/tcp/frame.h"
#include "transport/tcp/handshake.h"
#include "transport/transport_registry.h"

namespace shardlm {
namespace tcp {

struct MeshListener::RootJoin {
  std::unique_ptr<FramedConnection> conn;
  wire::MeshJoin join;
};

namespace {

constexpr int kMaxWorldSize = 1024;

// A failure timeout as MeshJoin carries it (0: none).
uint32_t FailureTimeoutMs(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration() || timeout <= absl::ZeroDuration()) return 0;
  return static_cast<uint32_t>(std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout), 1,
                                                   std::numeric_limits<uint32_t>::max()));
}
constexpr int kMaxHandlers = 64;
constexpr absl::Duration kAcceptPoll = absl::Milliseconds(200);

absl::Status SendProto(FramedConnection& conn, uint16_t type,
                       const google::protobuf::MessageLite& message, absl::Time deadline) {
  const std::string bytes = message.SerializeAsString();
  return conn.SendFrame(
      type, 0, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      deadline);
}

// Receives a frame of `type` holding a `Message`; a peer's Error frame
// becomes its text.
template <typename Message>
absl::StatusOr<Message> RecvProto(FramedConnection& conn, uint16_t type, absl::Time deadline) {
  ASSIGN_OR_RETURN(Frame frame, conn.RecvFrame(deadline));
  if (frame.type == kFrameError) {
    std::string text(frame.payload.begin() + std::min<size_t>(1, frame.payload.size()),
                     frame.payload.end());
    return absl::UnavailableError(absl::StrCat(conn.peer(), " refused: ", text));
  }
  Message message;
  if (frame.type != type ||
      !message.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
    return absl::DataLossError(
        absl::StrCat(conn.peer(), ": expected a control record of type ", type, ", got type ",
                     frame.type, " (", frame.payload.size(), " bytes)"));
  }
  return message;
}

void SendError(FramedConnection& conn, absl::string_view text, absl::Time deadline) {
  std::vector<uint8_t> payload = {static_cast<uint8_t>(absl::StatusCode::kUnavailable)};
  payload.insert(payload.end(), text.begin(), text.end());
  conn.SendFrame(kFrameError, 0, payload, deadline).IgnoreError();
}

// Connects to `to`, authenticates as `rank` of `world` and sends `join`.
absl::StatusOr<std::unique_ptr<FramedConnection>> DialAndJoin(const HostPort& to, int rank,
                                                              int world,
                                                              const wire::MeshJoin& join,
                                                              const MeshOptions& options) {
  const absl::Time deadline = options.clock->Now() + options.handshake_timeout;
  ASSIGN_OR_RETURN(Socket socket, Connect(to.host, to.port, deadline, options.clock));
  auto conn = std::make_unique<FramedConnection>(std::move(socket), kHandshakeMaxFrameSize);
  HandshakeOptions hs;
  hs.rank = rank;
  hs.world_size = world;
  hs.secret = options.secret;
  RETURN_IF_ERROR(DialerHandshake(*conn, hs, deadline).status());
  conn->set_max_frame_size(kDefaultMaxFrameSize);
  RETURN_IF_ERROR(SendProto(*conn, kFrameJoin, join, deadline));
  return conn;
}

absl::StatusOr<uint64_t> NewSessionId() {
  uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof(id)) != 1) {
    return absl::InternalError("RAND_bytes failed to produce a session id");
  }
  return id;
}

std::string Name(const HostPort& hp) { return absl::StrCat(hp.host, ":", hp.port); }

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  HostPort hp;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(text.substr(colon + 1), &hp.port) || hp.port <= 0 || hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not HOST:PORT (port in 1..65535)"));
  }
  hp.host = text.substr(0, colon);
  return hp;
}

absl::StatusOr<std::vector<HostPort>> ParseHostPortList(const std::string& text) {
  std::vector<HostPort> list;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(std::string(part)));
    list.push_back(std::move(hp));
  }
  if (list.empty()) return absl::InvalidArgumentError("empty worker list");
  return list;
}

namespace {

// Phase 1 of a dial: connect, authenticate and reserve `worker` (its
// listener answers "reserved" or "busy"). A busy worker is retried until
// `busy_until`: one whose previous session is still ending frees up soon.
absl::StatusOr<std::unique_ptr<FramedConnection>> Reserve(const HostPort& worker, int world,
                                                          const MeshOptions& options,
                                                          absl::Time busy_until) {
  wire::MeshJoin reserve;
  reserve.set_role(wire::MeshJoin::ROOT);
  for (;;) {
    absl::StatusOr<std::unique_ptr<FramedConnection>> conn =
        DialAndJoin(worker, 0, world, reserve, options);
    if (conn.ok()) {
      absl::StatusOr<wire::MeshReady> reserved = RecvProto<wire::MeshReady>(
          **conn, kFrameReady, options.clock->Now() + options.handshake_timeout);
      if (reserved.ok() && reserved->error().empty()) return conn;
      conn = reserved.ok() ? absl::UnavailableError(reserved->error()) : reserved.status();
    }
    const bool busy = absl::StrContains(conn.status().message(), "busy");
    if (!busy || options.clock->Now() >= busy_until) return conn.status();
    options.clock->SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace

absl::StatusOr<DialedCluster> DialAvailable(const std::vector<HostPort>& workers,
                                            const MeshOptions& options, const DialOptions& dial) {
  if (workers.empty() || static_cast<int>(workers.size()) + 1 > kMaxWorldSize) {
    return absl::InvalidArgumentError(absl::StrCat("tcp: ", workers.size(), " workers given"));
  }
  DialedCluster out;
  std::vector<std::unique_ptr<FramedConnection>> conns(1);
  const absl::Time busy_until = options.clock->Now() + dial.busy_retry;
  for (size_t i = 0; i < workers.size(); ++i) {
    absl::StatusOr<std::unique_ptr<FramedConnection>> conn =
        Reserve(workers[i], static_cast<int>(workers.size()) + 1, options, busy_until);
    if (!conn.ok()) {
      absl::Status why(conn.status().code(), absl::StrCat("worker ", Name(workers[i]), ": ",
                                                          conn.status().message()));
      if (!dial.skip_unreachable) return why;
      out.skipped.push_back(std::string(why.message()));
      continue;
    }
    out.included.push_back(static_cast<int>(i));
    conns.push_back(std::move(*conn));
  }
  const int world = static_cast<int>(conns.size());
  ASSIGN_OR_RETURN(const uint64_t session_id, NewSessionId());
  wire::MeshJoin join;
  join.set_role(wire::MeshJoin::ROOT);
  join.set_session_id(session_id);
  join.set_world_size(world);
  join.set_failure_timeout_ms(FailureTimeoutMs(options.failure_timeout));
  join.add_peers("");
  for (int i : out.included) join.add_peers(Name(workers[i]));
  for (int r = 1; r < world; ++r) {
    join.set_rank(r);
    const absl::Status sent =
        SendProto(*conns[r], kFrameJoin, join, options.clock->Now() + options.handshake_timeout);
    if (!sent.ok()) {
      return absl::Status(sent.code(), absl::StrCat("worker ", join.peers(r), " (rank ", r,
                                                    "): ", sent.message()));
    }
  }
  const absl::Time deadline = options.clock->Now() + options.setup_timeout;
  for (int r = 1; r < world; ++r) {
    absl::StatusOr<wire::MeshReady> ready =
        RecvProto<wire::MeshReady>(*conns[r], kFrameReady, deadline);
    if (ready.ok() && !ready->error().empty()) {
      ready = absl::UnavailableError(ready->error());
    }
    if (!ready.ok()) {
      return absl::Status(ready.status().code(),
                          absl::StrCat("worker ", join.peers(r), " (rank ", r,
                                       ") could not join the cluster: ",
                                       ready.status().message()));
    }
  }
  out.transport = std::make_unique<TcpTransport>(
      0, std::move(conns), options.clock, absl::Milliseconds(join.failure_timeout_ms()));
  return out;
}

absl::StatusOr<std::unique_ptr<TcpTransport>> DialCluster(const std::vector<HostPort>& workers,
                                                          const MeshOptions& options) {
  ASSIGN_OR_RETURN(DialedCluster dialed, DialAvailable(workers, options, DialOptions{}));
  return std::move(dialed.transport);
}

absl::StatusOr<std::unique_ptr<MeshListener>> MeshListener::Start(const std::string& bind_addr,
                                                                  int port,
                                                                  const MeshOptions& options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("mesh listener: no clock");
  ASSIGN_OR_RETURN(Listener listener, Listener::Listen(bind_addr, port, options.clock));
  std::unique_ptr<MeshListener> self(new MeshListener(std::move(listener), options));
  self->accept_thread_ = std::thread([s = self.get()] { s->AcceptLoop(); });
  return self;
}

MeshListener::MeshListener(Listener listener, const MeshOptions& options)
    : listener_(std::move(listener)), port_(listener_.port()), options_(options) {}

MeshListener::~MeshListener() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  changed_.notify_all();
  lock.unlock();
  if (accept_thread_.joinable()) accept_thread_.join();
  lock.lock();
  // Handlers end within the handshake timeout.
  changed_.wait(lock, [this] { return active_handlers_ == 0; });
}

int64_t MeshListener::rejected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rejected_;
}

void MeshListener::AcceptLoop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    absl::StatusOr<Socket> socket = listener_.Accept(options_.clock->Now() + kAcceptPoll);
    if (!socket.ok()) {
      if (!absl::IsDeadlineExceeded(socket.status())) {
        LOG(WARNING) << "accept on port " << port_ << ": " << socket.status().message();
      }
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (active_handlers_ >= kMaxHandlers) {
      ++rejected_;
      LOG(WARNING) << "rejected connection from " << socket->peer()
                   << ": too many connections in handshake";
      continue;  // the socket closes here
    }
    ++active_handlers_;
    std::thread([this, s = std::move(*socket)]() mutable {
      Handle(std::move(s));
      std::lock_guard<std::mutex> lock(mu_);
      --active_handlers_;
      changed_.notify_all();
    }).detach();
  }
}

void MeshListener::Reject(const std::string& peer, const absl::Status& why) {
  LOG(WARNING) << "rejected connection from " << peer << ": " << why.message();
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_;
}

void MeshListener::Handle(Socket socket) {
  const std::string peer = socket.peer();
  auto conn = std::make_unique<FramedConnection>(std::move(socket), kHandshakeMaxFrameSize);
  const absl::Time deadline = options_.clock->Now() + options_.handshake_timeout;
  HandshakeOptions hs;
  hs.secret = options_.secret;
  absl::Status s = ListenerHandshake(*conn, hs, deadline).status();
  if (!s.ok()) return Reject(peer, s);
  conn->set_max_frame_size(kDefaultMaxFrameSize);
  absl::StatusOr<wire::MeshJoin> join = RecvProto<wire::MeshJoin>(*conn, kFrameJoin, deadline);
  if (!join.ok()) return Reject(peer, join.status());
  const int world = join->world_size(), rank = join->rank();
  const bool root = join->role() == wire::MeshJoin::ROOT;
  if (!root && (world < 2 || world > kMaxWorldSize || rank < 1 || rank >= world ||
                join->role() != wire::MeshJoin::PEER)) {
    const std::string why = absl::StrCat("invalid join (role ", join->role(), ", rank ", rank,
                                         " of ", world, ")");
    SendError(*conn, why, deadline);
    return Reject(peer, absl::InvalidArgumentError(why));
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!root) {
    const absl::Time now = options_.clock->Now();
    for (auto it = pending_peers_.begin(); it != pending_peers_.end();) {
      for (auto p = it->second.begin(); p != it->second.end();) {
        p = now - p->second.arrived > options_.setup_timeout ? it->second.erase(p) : std::next(p);
      }
      it = it->second.empty() ? pending_peers_.erase(it) : std::next(it);
    }
    pending_peers_[join->session_id()][rank] = PendingPeer{std::move(conn), now};
    changed_.notify_all();
    return;
  }
  if (busy_ || pending_root_ != nullptr) {
    lock.unlock();
    SendError(*conn, "busy: this worker is serving another root", deadline);
    return Reject(peer, absl::UnavailableError("busy with another session"));
  }
  busy_ = true;
  lock.unlock();
  // Reserved: the root learns who is free before it fixes ranks and world.
  if (!SendProto(*conn, kFrameReady, wire::MeshReady(), deadline).ok()) {
    EndSession();
    return Reject(peer, absl::UnavailableError("the root left while reserving"));
  }
  lock.lock();
  pending_root_ = std::make_unique<RootJoin>(RootJoin{std::move(conn), wire::MeshJoin()});
  changed_.notify_all();
}

void MeshListener::EndSession() {
  std::lock_guard<std::mutex> lock(mu_);
  busy_ = false;
  changed_.notify_all();
}

absl::StatusOr<std::unique_ptr<TcpTransport>> MeshListener::NextSession(absl::Time deadline) {
  std::unique_ptr<RootJoin> root;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (pending_root_ == nullptr) {
      if (stopping_) return absl::CancelledError("the listener is shutting down");
      const absl::Duration left = deadline - options_.clock->Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError("no root connected");
      }
      changed_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, kAcceptPoll)));
    }
    root = std::move(pending_root_);
  }
  const absl::Time setup_deadline = options_.clock->Now() + options_.setup_timeout;
  absl::StatusOr<std::unique_ptr<TcpTransport>> transport = ReceiveAssignment(*root, setup_deadline);
  if (transport.ok()) transport = JoinMesh(*root, setup_deadline);
  if (!transport.ok()) {
    wire::MeshReady ready;
    ready.set_error(absl::StrCat("worker rank ", root->join.rank(), ": ",
                                 transport.status().message()));
    SendProto(*root->conn, kFrameReady, ready, options_.clock->Now() + options_.handshake_timeout)
        .IgnoreError();
    EndSession();
  }
  return transport;
}

absl::StatusOr<std::unique_ptr<TcpTransport>> MeshListener::ReceiveAssignment(
    RootJoin& root, absl::Time deadline) {
  absl::StatusOr<wire::MeshJoin> join =
      RecvProto<wire::MeshJoin>(*root.conn, kFrameJoin, deadline);
  if (!join.ok()) return join.status();
  const int world = join->world_size(), rank = join->rank();
  if (join->role() != wire::MeshJoin::ROOT || world < 2 || world > kMaxWorldSize || rank < 1 ||
      rank >= world || join->peers_size() != world) {
    return absl::InvalidArgumentError(absl::StrCat("invalid assignment (rank ", rank, " of ",
                                                   world, ")"));
  }
  root.join = *std::move(join);
  return nullptr;
}

absl::StatusOr<std::unique_ptr<TcpTransport>> MeshListener::JoinMesh(RootJoin& root,
                                                                     absl::Time deadline) {
  const wire::MeshJoin& join = root.join;
  const int rank = join.rank(), world = join.world_size();
  std::vector<std::unique_ptr<FramedConnection>> conns(world);
  wire::MeshJoin mine;
  mine.set_role(wire::MeshJoin::PEER);
  mine.set_session_id(join.session_id());
  mine.set_rank(rank);
  mine.set_world_size(world);
  for (int r = 1; r < rank; ++r) {
    ASSIGN_OR_RETURN(const HostPort to, ParseHostPort(join.peers(r)));
    absl::StatusOr<std::unique_ptr<FramedConnection>> conn =
        DialAndJoin(to, rank, world, mine, options_);
    if (!conn.ok()) {
      return absl::Status(conn.status().code(), absl::StrCat("cannot reach rank ", r, " at ",
                                                             join.peers(r), ": ",
                                                             conn.status().message()));
    }
    conns[r] = std::move(*conn);
  }
  RETURN_IF_ERROR(WaitForPeers(join.session_id(), rank, world, *root.conn, &conns, deadline));
  RETURN_IF_ERROR(SendProto(*root.conn, kFrameReady, wire::MeshReady(), deadline));
  conns[0] = std::move(root.conn);
  return std::make_unique<TcpTransport>(rank, std::move(conns), options_.clock,
                                        absl::Milliseconds(join.failure_timeout_ms()));
}

absl::Status MeshListener::WaitForPeers(uint64_t session_id, int rank, int world,
                                        const FramedConnection& root,
                                        std::vector<std::unique_ptr<FramedConnection>>* conns,
                                        absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    auto& pending = pending_peers_[session_id];
    int missing = -1;
    for (int r = rank + 1; r < world; ++r) {
      if ((*conns)[r] != nullptr) continue;
      auto it = pending.find(r);
      if (it == pending.end()) {
        if (missing < 0) missing = r;
        continue;
      }
      (*conns)[r] = std::move(it->second.conn);
      pending.erase(it);
    }
    if (missing < 0) {
      pending_peers_.erase(session_id);
      return absl::OkStatus();
    }
    if (stopping_) return absl::CancelledError("the listener is shutting down");
    const absl::Duration left = deadline - options_.clock->Now();
    if (root.PeerClosed()) {
      pending_peers_.erase(session_id);
      return absl::UnavailableError(
          absl::StrCat("the root (", root.peer(), ") left before rank ", missing, " connected"));
    }
    if (left <= absl::ZeroDuration()) {
      pending_peers_.erase(session_id);
      return absl::DeadlineExceededError(
          absl::StrCat("rank ", missing, " did not connect to this worker in time"));
    }
    changed_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, kAcceptPoll)));
  }
}

namespace {

// CreateTransport("tcp", {rank 0, world_size N, clock, params}) dials the
// workers of params["workers"] (N - 1 of them) with params["secret_file"].
absl::StatusOr<std::unique_ptr<Transport>> MakeTcpTransport(const TransportOptions& opts) {
  if (opts.rank != 0) {
    return absl::InvalidArgumentError(
        "tcp transport: only the root (rank 0) is created by name; workers run `shardlm worker`");
  }
  auto workers_it = opts.params.find("workers");
  if (workers_it == opts.params.end()) {
    return absl::InvalidArgumentError("tcp transport: no \"workers\" parameter");
  }
  ASSIGN_OR_RETURN(const std::vector<HostPort> workers, ParseHostPortList(workers_it->second));
  if (static_cast<int>(workers.size()) + 1 != opts.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("tcp transport: ", workers.size(),
                                                   " workers for a world of ", opts.world_size));
  }
  MeshOptions mesh;
  mesh.clock = opts.clock;
  auto secret_it = opts.params.find("secret_file");
  if (secret_it != opts.params.end() && !secret_it->second.empty()) {
    ASSIGN_OR_RETURN(mesh.secret, ReadSecretFile(secret_it->second));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<TcpTransport> t, DialCluster(workers, mesh));
  return std::unique_ptr<Transport>(std::move(t));
}

const Registrar<Transport, TransportOptions> kRegisterTcp("tcp", &MakeTcpTransport);

}  // namespace
}  // namespace tcp
}  // namespace shardlm
