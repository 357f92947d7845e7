// The link side of calibration: two ranks of the real TcpTransport joined by
// a loopback connection, rank 1 served by a thread of its own (as a worker
// process would be by its own core); then nodes in processes of their own
// computing and all-reducing, as a loopback cluster's do.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/median.h"
#include "core/status_macros.h"
#include "sim/calibrate.h"
#include "sim/calibrate_util.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/socket.h"
#include "transport/tcp/tcp_transport.h"

namespace shardlm::sim {
namespace {

constexpr uint32_t kTag = 7;
constexpr uint32_t kDoneTag = 8;  // a node process's last message, to rank 0
constexpr int kPingPongs = 2000;
constexpr int kStreamMessages = 20000;
constexpr size_t kSmallBytes = 2176;  // a q8_0 all-reduce of a 2048-wide vector
constexpr size_t kBulkMessage = 4 << 20;
constexpr int kBulkMessages = 48;

struct Pair {
  std::unique_ptr<tcp::TcpTransport> a, b;
};

absl::StatusOr<Pair> Connect(Clock* clock) {
  const absl::Time deadline = clock->Now() + absl::Seconds(5);
  ASSIGN_OR_RETURN(tcp::Listener listener, tcp::Listener::Listen("127.0.0.1", 0, clock));
  ASSIGN_OR_RETURN(tcp::Socket dialed, tcp::Connect("127.0.0.1", listener.port(), deadline, clock));
  ASSIGN_OR_RETURN(tcp::Socket accepted, listener.Accept(deadline));
  std::vector<std::unique_ptr<tcp::FramedConnection>> pa(2), pb(2);
  pa[1] = std::make_unique<tcp::FramedConnection>(std::move(dialed));
  pb[0] = std::make_unique<tcp::FramedConnection>(std::move(accepted));
  Pair pair;
  pair.a = std::make_unique<tcp::TcpTransport>(0, std::move(pa), clock);
  pair.b = std::make_unique<tcp::TcpTransport>(1, std::move(pb), clock);
  return pair;
}

// Rank 1: echoes `echoes` messages of the given size, then receives
// `sink` messages and answers the last with one byte.
absl::Status Serve(Transport* t, Clock* clock, int echoes, int sink) {
  const absl::Time deadline = clock->Now() + absl::Seconds(60);
  for (int i = 0; i < echoes; ++i) {
    ASSIGN_OR_RETURN(std::vector<uint8_t> m, t->Recv(0, kTag, deadline));
    RETURN_IF_ERROR(t->Send(0, kTag, m, deadline));
  }
  for (int i = 0; i < sink; ++i) RETURN_IF_ERROR(t->Recv(0, kTag, deadline).status());
  const std::vector<uint8_t> ack(1);
  return t->Send(0, kTag, ack, deadline);
}

// Rank 0: seconds per round trip of kPingPongs.
absl::StatusOr<double> PingPong(Transport* t, Clock* clock, int count) {
  const absl::Time deadline = clock->Now() + absl::Seconds(60);
  const std::vector<uint8_t> m(kSmallBytes, 1);
  const absl::Time start = clock->Now();
  for (int i = 0; i < count; ++i) {
    RETURN_IF_ERROR(t->Send(1, kTag, m, deadline));
    RETURN_IF_ERROR(t->Recv(1, kTag, deadline).status());
  }
  const double seconds = absl::ToDoubleSeconds(clock->Now() - start) / count;
  RETURN_IF_ERROR(t->Recv(1, kTag, deadline).status());  // the server's ack
  return seconds;
}

// Rank 0: seconds for `count` messages of `bytes` streamed one way (until the ack).
absl::StatusOr<double> Stream(Transport* t, Clock* clock, int count, size_t bytes) {
  const absl::Time deadline = clock->Now() + absl::Seconds(60);
  const std::vector<uint8_t> m(bytes, 1);
  const absl::Time start = clock->Now();
  for (int i = 0; i < count; ++i) RETURN_IF_ERROR(t->Send(1, kTag, m, deadline));
  RETURN_IF_ERROR(t->Recv(1, kTag, deadline).status());
  return absl::ToDoubleSeconds(clock->Now() - start);
}

// One connection: `count` round trips (seconds each), or a stream of
// `count` x `bytes` (seconds in all).
absl::StatusOr<double> Measure(Clock* clock, bool ping, int count, size_t bytes) {
  ASSIGN_OR_RETURN(Pair pair, Connect(clock));
  absl::Status served;
  std::thread server([&] { served = Serve(pair.b.get(), clock, ping ? count : 0, ping ? 0 : count); });
  const absl::StatusOr<double> result =
      ping ? PingPong(pair.a.get(), clock, count) : Stream(pair.a.get(), clock, count, bytes);
  if (!result.ok()) pair.a->Abort();  // the server's calls fail promptly
  server.join();
  pair.a->Abort();
  pair.b->Abort();
  RETURN_IF_ERROR(served);
  return result;
}

// Passes over the set per timed loop, and pairs of loops (alone, synced).
constexpr int kBusyPasses = 6;
constexpr int kBusyLoops = 11;

// Sockets joining `ranks` nodes pairwise over loopback: [r][p] is rank r's
// end of its connection to rank p (invalid for p == r).
absl::StatusOr<std::vector<std::vector<tcp::Socket>>> MeshSockets(Clock* clock, int ranks) {
  const absl::Time deadline = clock->Now() + absl::Seconds(5);
  std::vector<std::vector<tcp::Socket>> mesh(ranks);
  for (auto& row : mesh) row.resize(ranks);
  for (int i = 0; i < ranks; ++i) {
    for (int j = i + 1; j < ranks; ++j) {
      ASSIGN_OR_RETURN(tcp::Listener listener, tcp::Listener::Listen("127.0.0.1", 0, clock));
      ASSIGN_OR_RETURN(mesh[i][j], tcp::Connect("127.0.0.1", listener.port(), deadline, clock));
      ASSIGN_OR_RETURN(mesh[j][i], listener.Accept(deadline));
    }
  }
  return mesh;
}

// Sends a kSmallBytes message to every other rank and receives theirs, as a
// direct all-reduce does.
absl::Status Exchange(Transport* t, int rank, int ranks, absl::Time deadline) {
  const std::vector<uint8_t> m(kSmallBytes, 1);
  for (int p = 0; p < ranks; ++p) {
    if (p != rank) RETURN_IF_ERROR(t->Send(p, kTag, m, deadline));
  }
  for (int p = 0; p < ranks; ++p) {
    if (p != rank) RETURN_IF_ERROR(t->Recv(p, kTag, deadline).status());
  }
  return absl::OkStatus();
}

// Rank `rank` of `ranks` nodes: the set's products one by one, like the
// phases of a decode step; with `t`, an Exchange after each one.
absl::Status PhaseLoop(MatrixSet* set, Transport* t, int rank, int ranks, Clock* clock) {
  const absl::Time deadline = clock->Now() + absl::Seconds(60);
  for (int pass = 0; pass < kBusyPasses; ++pass) {
    for (size_t i = 0; i < set->products(); ++i) {
      RETURN_IF_ERROR(set->RunProduct(i));
      if (t != nullptr) RETURN_IF_ERROR(Exchange(t, rank, ranks, deadline));
    }
  }
  return absl::OkStatus();
}

// Seconds of one node's PhaseLoops, alone and with the exchange.
struct LoopPair {
  double alone = 0, synced = 0;
};

// What a node process runs: its transport over its row of the mesh, its own
// weights, then kBusyLoops pairs of PhaseLoops (alone, then with the
// exchange), every loop started after an Exchange that lines the nodes up.
absl::Status NodeLoops(const CalibrateOptions& o, const std::vector<int64_t>& rows, int rank,
                       std::vector<tcp::Socket> sockets, std::vector<LoopPair>* pairs) {
  const int ranks = static_cast<int>(sockets.size());
  std::vector<std::unique_ptr<tcp::FramedConnection>> peers(ranks);
  for (int p = 0; p < ranks; ++p) {
    if (p != rank) peers[p] = std::make_unique<tcp::FramedConnection>(std::move(sockets[p]));
  }
  tcp::TcpTransport t(rank, std::move(peers), o.clock);
  ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend, OneThreadBackend());
  ASSIGN_OR_RETURN(std::unique_ptr<MatrixSet> set,
                   MatrixSet::Create(backend.get(), DType::kQ4_0, rows));
  RETURN_IF_ERROR(set->RunOnce());  // pages and caches warm
  for (int loop = 0; loop < kBusyLoops; ++loop) {
    LoopPair& pair = pairs->emplace_back();
    for (Transport* exchange : {static_cast<Transport*>(nullptr), static_cast<Transport*>(&t)}) {
      RETURN_IF_ERROR(Exchange(&t, rank, ranks, o.clock->Now() + absl::Seconds(60)));
      const absl::Time start = o.clock->Now();
      RETURN_IF_ERROR(PhaseLoop(set.get(), exchange, rank, ranks, o.clock));
      (exchange == nullptr ? pair.alone : pair.synced) =
          absl::ToDoubleSeconds(o.clock->Now() - start);
    }
  }
  // Rank 0 leaves last: a worker whose root has gone stops waiting for the
  // others (TcpTransport), and some may still be receiving.
  const absl::Time deadline = o.clock->Now() + absl::Seconds(60);
  const std::vector<uint8_t> done(1);
  if (rank != 0) return t.Send(0, kDoneTag, done, deadline);
  for (int p = 1; p < ranks; ++p) RETURN_IF_ERROR(t.Recv(p, kDoneTag, deadline).status());
  return absl::OkStatus();
}

// Writes all of `text` to `fd` (a pipe).
void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Reads `fd` to its end.
std::string ReadAll(int fd) {
  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

// The child side of NodeProcesses: runs NodeLoops as rank `rank`, writes
// its report to `fd` ("OK" or the error on the first line, then a line per
// loop pair) and exits without the parent's destructors or atexit work.
[[noreturn]] void NodeChild(const CalibrateOptions& o, const std::vector<int64_t>& rows, int rank,
                            std::vector<std::vector<tcp::Socket>> mesh, int fd) {
  std::vector<tcp::Socket> mine = std::move(mesh[rank]);
  mesh.clear();  // this process's copies of the other ranks' ends
  std::vector<LoopPair> pairs;
  const absl::Status status = NodeLoops(o, rows, rank, std::move(mine), &pairs);
  std::string text = status.ok() ? "OK\n" : std::string(status.message()) + "\n";
  for (const LoopPair& p : pairs) text += absl::StrFormat("%.9g %.9g\n", p.alone, p.synced);
  WriteAll(fd, text);
  _exit(status.ok() ? 0 : 1);
}

// Reads node `rank`'s report into `slowest` (per loop, the slowest node's
// pair so far); the node's error, or what is wrong with the report.
absl::Status ReadReport(const std::string& text, int rank, std::vector<LoopPair>* slowest) {
  const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty()) return absl::InternalError(absl::StrCat("node ", rank, " died"));
  if (lines[0] != "OK") return absl::InternalError(absl::StrCat("node ", rank, ": ", lines[0]));
  if (lines.size() != slowest->size() + 1) {
    return absl::InternalError(absl::StrCat("node ", rank, " reported ", lines.size() - 1,
                                            " loops of ", slowest->size()));
  }
  for (size_t loop = 0; loop < slowest->size(); ++loop) {
    LoopPair p;
    if (std::sscanf(lines[loop + 1].c_str(), "%lf %lf", &p.alone, &p.synced) != 2) {
      return absl::InternalError(absl::StrCat("node ", rank, ": bad report line"));
    }
    (*slowest)[loop].alone = std::max((*slowest)[loop].alone, p.alone);
    (*slowest)[loop].synced = std::max((*slowest)[loop].synced, p.synced);
  }
  return absl::OkStatus();
}

// Runs NodeLoops for `ranks` nodes, each in a process of its own (forked),
// as the nodes of a loopback cluster are: switching between processes
// costs more than between threads, most on a virtual machine. Returns, per
// loop, the slowest node's pair; an error names every node that failed
// (one node's failure makes the others lose their connections).
absl::StatusOr<std::vector<LoopPair>> NodeProcesses(const CalibrateOptions& o,
                                                   const std::vector<int64_t>& rows, int ranks) {
  ASSIGN_OR_RETURN(std::vector<std::vector<tcp::Socket>> mesh, MeshSockets(o.clock, ranks));
  std::vector<pid_t> children;
  std::vector<int> reports;
  int start_error = 0;
  for (int r = 0; r < ranks && start_error == 0; ++r) {
    int fds[2];
    if (pipe(fds) != 0) {
      start_error = errno;
      break;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      NodeChild(o, rows, r, std::move(mesh), fds[1]);
    }
    if (pid < 0) start_error = errno;
    close(fds[1]);
    if (pid < 0) {
      close(fds[0]);
    } else {
      children.push_back(pid);
      reports.push_back(fds[0]);
    }
  }
  mesh.clear();  // the children hold the connections now (or fail without them)
  std::vector<std::string> texts;
  for (int fd : reports) {
    texts.push_back(ReadAll(fd));
    close(fd);
  }
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  if (start_error != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "calibration: cannot start node process ", children.size() + 1, " of ", ranks, ": ",
        std::strerror(start_error)));
  }
  std::vector<LoopPair> slowest(kBusyLoops);
  std::string errors;
  for (int r = 0; r < ranks; ++r) {
    const absl::Status status = ReadReport(texts[r], r, &slowest);
    if (!status.ok()) absl::StrAppend(&errors, errors.empty() ? "" : "; ", status.message());
  }
  if (!errors.empty()) return absl::InternalError(absl::StrCat("calibration nodes: ", errors));
  return slowest;
}

// What a collective of `ranks` computing nodes (one process each, on this
// host) costs beyond its messages: PhaseLoop with the exchange minus
// without it, per phase, minus the exchange's latency, per-message and
// transfer times from `link`.
absl::StatusOr<double> BusyCollectiveSeconds(const CalibrateOptions& o,
                                             const LinkCost& link, int ranks) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> rows,
                   LayerShapedRows(DType::kQ4_0, o.collective_set_mib));
  // Pairs of loops back to back, the median of their differences: the
  // host's speed drifts over seconds, a pair's halves see about the same.
  ASSIGN_OR_RETURN(const std::vector<LoopPair> pairs, NodeProcesses(o, rows, ranks));
  const double phases = static_cast<double>(kBusyPasses * rows.size());
  std::vector<double> alone, synced, extra;
  for (const LoopPair& p : pairs) {
    alone.push_back(p.alone / phases);
    synced.push_back(p.synced / phases);
    extra.push_back(synced.back() - alone.back());
  }
  const double messages = (ranks - 1) * (link.per_message_us() * 1e-6 +
                                         kSmallBytes / (link.bandwidth_gbps() * 1e9));
  const double hop = link.latency_us() * 1e-6 + messages;
  Say(o, absl::StrFormat("%d computing nodes: %.1f us a phase alone, %.1f us with an all-reduce "
                         "after each (%.1f us of it messages)",
                         ranks, Median(alone) * 1e6, Median(synced) * 1e6, hop * 1e6));
  return std::max(0.0, Median(extra) - hop);
}

}  // namespace

absl::Status CalibrateLink(const CalibrateOptions& o, LinkCost* link, double* wakeup_us,
                           double* busy_collective_us) {
  ASSIGN_OR_RETURN(const double rtt, Measure(o.clock, /*ping=*/true, kPingPongs, 0));
  ASSIGN_OR_RETURN(const double stream,
                   Measure(o.clock, /*ping=*/false, kStreamMessages, kSmallBytes));
  ASSIGN_OR_RETURN(const double bulk, Measure(o.clock, /*ping=*/false, kBulkMessages, kBulkMessage));
  const double bandwidth = kBulkMessages * static_cast<double>(kBulkMessage) / bulk;
  // A stream pipelines messages: its rate is the per-message CPU cost (and
  // the bytes). A round trip adds the delivery latency on top, each way.
  const double per_message = std::max(0.0, stream / kStreamMessages - kSmallBytes / bandwidth);
  link->set_per_message_us(per_message * 1e6);
  link->set_latency_us(std::max(0.0, rtt / 2 - per_message - kSmallBytes / bandwidth) * 1e6);
  link->set_bandwidth_gbps(bandwidth / 1e9);
  // Nodes on every core, then twice as many as cores.
  const int cores = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(const double busy_collective, BusyCollectiveSeconds(o, *link, cores));
  ASSIGN_OR_RETURN(const double crowded_collective, BusyCollectiveSeconds(o, *link, 2 * cores));
  *busy_collective_us = busy_collective * 1e6;
  *wakeup_us = std::max(0.0, crowded_collective - busy_collective) * 1e6;
  Say(o, absl::StrFormat("loopback tcp: round trip %.1f us, latency %.1f us, %.2f us per message, "
                         "%.2f GB/s; a collective of computing nodes %.1f us more, and %.1f us "
                         "more a hop on an oversubscribed host",
                         rtt * 1e6, link->latency_us(), link->per_message_us(),
                         link->bandwidth_gbps(), *busy_collective_us, *wakeup_us));
  return absl::OkStatus();
}

}  // namespace shardlm::sim
