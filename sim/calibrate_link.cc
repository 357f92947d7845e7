// The link side of calibration: two ranks of the real TcpTransport joined by
// a loopback connection, rank 1 served by a thread of its own (as a worker
// process would be by its own core).
#include <algorithm>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

// `ranks` TcpTransports joined pairwise over loopback.
absl::StatusOr<std::vector<std::unique_ptr<tcp::TcpTransport>>> ConnectMesh(Clock* clock,
                                                                           int ranks) {
  const absl::Time deadline = clock->Now() + absl::Seconds(5);
  std::vector<std::vector<std::unique_ptr<tcp::FramedConnection>>> peers(ranks);
  for (auto& p : peers) p.resize(ranks);
  for (int i = 0; i < ranks; ++i) {
    for (int j = i + 1; j < ranks; ++j) {
      ASSIGN_OR_RETURN(tcp::Listener listener, tcp::Listener::Listen("127.0.0.1", 0, clock));
      ASSIGN_OR_RETURN(tcp::Socket dialed,
                       tcp::Connect("127.0.0.1", listener.port(), deadline, clock));
      ASSIGN_OR_RETURN(tcp::Socket accepted, listener.Accept(deadline));
      peers[i][j] = std::make_unique<tcp::FramedConnection>(std::move(dialed));
      peers[j][i] = std::make_unique<tcp::FramedConnection>(std::move(accepted));
    }
  }
  std::vector<std::unique_ptr<tcp::TcpTransport>> mesh;
  for (int r = 0; r < ranks; ++r) {
    mesh.push_back(std::make_unique<tcp::TcpTransport>(r, std::move(peers[r]), clock));
  }
  return mesh;
}

// Rank `rank` of `ranks` nodes: the set's products one by one, like the
// phases of a decode step; with `t`, after each one it sends a kSmallBytes
// message to every other rank and receives theirs, as a direct all-reduce
// does.
absl::Status PhaseLoop(MatrixSet* set, Transport* t, int rank, int ranks, Clock* clock) {
  const absl::Time deadline = clock->Now() + absl::Seconds(60);
  const std::vector<uint8_t> m(kSmallBytes, 1);
  for (int pass = 0; pass < kBusyPasses; ++pass) {
    for (size_t i = 0; i < set->products(); ++i) {
      RETURN_IF_ERROR(set->RunProduct(i));
      if (t == nullptr) continue;
      for (int p = 0; p < ranks; ++p) {
        if (p != rank) RETURN_IF_ERROR(t->Send(p, kTag, m, deadline));
      }
      for (int p = 0; p < ranks; ++p) {
        if (p != rank) RETURN_IF_ERROR(t->Recv(p, kTag, deadline).status());
      }
    }
  }
  return absl::OkStatus();
}

// Seconds per phase of every set's PhaseLoop at once, one thread a set,
// with the exchange or without.
absl::StatusOr<double> PhaseSeconds(const CalibrateOptions& o, const std::vector<MatrixSet*>& sets,
                                    bool exchange) {
  const int ranks = static_cast<int>(sets.size());
  std::vector<std::unique_ptr<tcp::TcpTransport>> mesh;
  if (exchange) {
    ASSIGN_OR_RETURN(mesh, ConnectMesh(o.clock, ranks));
  }
  std::vector<absl::Status> status(ranks);
  const absl::Time start = o.clock->Now();
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      status[r] = PhaseLoop(sets[r], exchange ? mesh[r].get() : nullptr, r, ranks, o.clock);
      if (!status[r].ok() && exchange) mesh[r]->Abort();  // the others fail promptly
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(o.clock->Now() - start) /
                         static_cast<double>(kBusyPasses * sets[0]->products());
  for (auto& t : mesh) t->Abort();
  for (const absl::Status& st : status) RETURN_IF_ERROR(st);
  return seconds;
}

// What a collective of `ranks` computing nodes (one thread each, on this
// host) costs beyond its messages: PhaseLoop with the exchange minus
// without it, per phase, minus the exchange's latency, per-message and
// transfer times from `link`.
absl::StatusOr<double> BusyCollectiveSeconds(const CalibrateOptions& o,
                                             const LinkCost& link, int ranks) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> rows,
                   LayerShapedRows(DType::kQ4_0, o.collective_set_mib));
  std::vector<std::unique_ptr<CpuBackend>> backends;
  std::vector<std::unique_ptr<MatrixSet>> sets;
  std::vector<MatrixSet*> all;
  for (int rank = 0; rank < ranks; ++rank) {
    ASSIGN_OR_RETURN(backends.emplace_back(), OneThreadBackend());
    ASSIGN_OR_RETURN(sets.emplace_back(),
                     MatrixSet::Create(backends.back().get(), DType::kQ4_0, rows));
    all.push_back(sets.back().get());
  }
  // Pairs of runs back to back, the median of their differences: the
  // host's speed drifts over seconds, a pair's halves see about the same.
  std::vector<double> alone, synced, extra;
  for (int loop = 0; loop < kBusyLoops; ++loop) {
    ASSIGN_OR_RETURN(alone.emplace_back(), PhaseSeconds(o, all, /*exchange=*/false));
    ASSIGN_OR_RETURN(synced.emplace_back(), PhaseSeconds(o, all, /*exchange=*/true));
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
