// The link side of calibration: two ranks of the real TcpTransport joined by
// a loopback connection, rank 1 served by a thread of its own (as a worker
// process would be by its own core).
#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "sim/calibrate.h"
#include "transport/tcp/connection.h"
#include "transport/tcp/socket.h"
#include "transport/tcp/tcp_transport.h"

namespace shardlm::sim {
namespace {

constexpr uint32_t kTag = 7;
constexpr int kPingPongs = 2000;
constexpr int kBusyPingPongs = 300;
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

// Round trips while one busy thread per core competes with the two ranks.
absl::StatusOr<double> BusyRoundTrip(Clock* clock) {
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < cores; ++i) {
    spinners.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  absl::StatusOr<double> rtt = Measure(clock, /*ping=*/true, kBusyPingPongs, 0);
  stop = true;
  for (std::thread& t : spinners) t.join();
  return rtt;
}

}  // namespace

absl::Status CalibrateLink(const CalibrateOptions& o, LinkCost* link, double* wakeup_us) {
  ASSIGN_OR_RETURN(const double rtt, Measure(o.clock, /*ping=*/true, kPingPongs, 0));
  ASSIGN_OR_RETURN(const double busy_rtt, BusyRoundTrip(o.clock));
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
  *wakeup_us = std::max(0.0, (busy_rtt - rtt) / 2) * 1e6;
  if (o.progress) {
    o.progress(absl::StrFormat("loopback round trip with every core busy %.1f us: %.1f us more "
                               "per hop on an oversubscribed host",
                               busy_rtt * 1e6, *wakeup_us));
    o.progress(absl::StrFormat(
        "loopback tcp: round trip %.1f us, latency %.1f us, %.2f us per message, %.2f GB/s",
        rtt * 1e6, link->latency_us(), link->per_message_us(), link->bandwidth_gbps()));
  }
  return absl::OkStatus();
}

}  // namespace shardlm::sim
