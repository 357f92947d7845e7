// Event-loop speed of the simulator: pure events, and message ping-pong
// between two cooperative processes over the simulated network (two
// thread hand-offs per message). `bazel run -c opt //sim:sim_bench`.
#include <functional>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace shardlm::sim {
namespace {

// Events that schedule their successors: the queue holds `width` events.
void BM_Events(benchmark::State& state) {
  const int width = static_cast<int>(state.range(0));
  constexpr int64_t kEvents = 1 << 20;
  for (auto _ : state) {
    Simulator sim;
    int64_t left = kEvents;
    std::function<void()> tick = [&] {
      if (--left > 0) sim.After(absl::Nanoseconds(1 + (left % 7)), tick);
    };
    for (int i = 0; i < width; ++i) sim.After(absl::Nanoseconds(i), tick);
    benchmark::DoNotOptimize(sim.Run());
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}
BENCHMARK(BM_Events)->Arg(1)->Arg(64)->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_PingPong(benchmark::State& state) {
  constexpr int kRounds = 20000;
  int64_t events = 0;
  for (auto _ : state) {
    Simulator sim;
    SimNetwork net(&sim, 2, LinkModel{}, 1);
    std::unique_ptr<Transport> t0, t1;
    const int p0 = sim.Spawn("a", [&] {
      for (int i = 0; i < kRounds; ++i) {
        t0->Send(1, 1, std::vector<uint8_t>(64), absl::InfiniteFuture()).IgnoreError();
        t0->Recv(1, 2, absl::InfiniteFuture()).status().IgnoreError();
      }
    });
    const int p1 = sim.Spawn("b", [&] {
      for (int i = 0; i < kRounds; ++i) {
        t1->Recv(0, 1, absl::InfiniteFuture()).status().IgnoreError();
        t1->Send(0, 2, std::vector<uint8_t>(64), absl::InfiniteFuture()).IgnoreError();
      }
    });
    t0 = net.Attach(0, p0);
    t1 = net.Attach(1, p1);
    events += sim.Run();
  }
  state.SetItemsProcessed(events);
  state.counters["messages/s"] = benchmark::Counter(2.0 * kRounds * state.iterations(),
                                                    benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PingPong)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shardlm::sim
