#include "sim/fault_schedule.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_format.h"

namespace shardlm::sim {
namespace {

absl::Time At(double ms) { return SimEpoch() + absl::Microseconds(static_cast<int64_t>(ms * 1e3)); }

absl::Duration Ms(double ms) { return absl::Microseconds(static_cast<int64_t>(ms * 1e3)); }

// Every link from `node` to the others (or to `peer` only when >= 0).
template <typename Fn>
void ForLinks(int nodes, int node, int peer, Fn fn) {
  for (int other = 0; other < nodes; ++other) {
    if (other != node && (peer < 0 || other == peer)) fn(other);
  }
}

}  // namespace

bool KillsANode(Fault::Kind kind) {
  return kind == Fault::CRASH || kind == Fault::VANISH || kind == Fault::RESTART ||
         kind == Fault::LINK_DOWN || kind == Fault::DROP;
}

std::vector<Fault> DrawFaults(const Scenario& scenario, uint64_t seed) {
  std::vector<Fault> faults(scenario.faults().begin(), scenario.faults().end());
  const RandomFaults& r = scenario.random_faults();
  const int nodes = scenario.cluster().nodes();
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 17);
  auto uniform = [&](double hi) { return hi * static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  for (int i = 0; i < r.count() && !r.kinds().empty() && nodes > 1; ++i) {
    Fault f;
    f.set_kind(static_cast<Fault::Kind>(r.kinds(static_cast<int>(rng() % r.kinds_size()))));
    f.set_at_ms(uniform(r.within_ms()));
    const int first = r.allow_root() ? 0 : 1;
    f.set_node(first + static_cast<int>(rng() % static_cast<uint64_t>(nodes - first)));
    f.set_peer(static_cast<int>(rng() % static_cast<uint64_t>(nodes - 1)));
    if (f.peer() >= f.node()) f.set_peer(f.peer() + 1);
    f.set_duration_ms(uniform(r.max_duration_ms()));
    f.set_extra_us(uniform(r.max_extra_us()));
    faults.push_back(f);
  }
  std::stable_sort(faults.begin(), faults.end(),
                   [](const Fault& a, const Fault& b) { return a.at_ms() < b.at_ms(); });
  return faults;
}

std::string DescribeFault(const Fault& f) {
  return absl::StrFormat("%.3f ms: %s node %d peer %d for %.3f ms (extra %.1f us)", f.at_ms(),
                         Fault::Kind_Name(f.kind()), f.node(), f.peer(), f.duration_ms(),
                         f.extra_us());
}

void ScheduleFaults(const std::vector<Fault>& faults, Simulator* sim, SimNetwork* net,
                    const FaultTargets& targets) {
  const int n = net->nodes();
  for (const Fault& f : faults) {
    const absl::Time at = At(f.at_ms());
    const absl::Time until = at + Ms(f.duration_ms());
    const int node = f.node(), peer = f.peer();
    const absl::Duration extra = absl::Microseconds(static_cast<int64_t>(f.extra_us()));
    std::function<void()> fire;
    switch (f.kind()) {
      case Fault::CRASH: fire = [=] { net->Crash(node); }; break;
      case Fault::VANISH: fire = [=] { net->Vanish(node); }; break;
      case Fault::RESTART:
        fire = [=] {
          net->Crash(node);
          sim->At(until, [=] { (*targets.pids)[node] = targets.restart(node); });
        };
        break;
      case Fault::PAUSE: fire = [=] { sim->Pause((*targets.pids)[node], until); }; break;
      case Fault::SLOW:
        fire = [=] {
          sim->SetSlowdown((*targets.pids)[node], extra);
          sim->At(until, [=] { sim->SetSlowdown((*targets.pids)[node], absl::ZeroDuration()); });
        };
        break;
      case Fault::LINK_DOWN:
      case Fault::DROP: fire = [=] { net->BreakLink(node, peer); }; break;
      case Fault::PARTITION:
        fire = [=] {
          ForLinks(n, node, -1, [&](int o) {
            net->Clog(node, o, until);
            net->Clog(o, node, until);
          });
        };
        break;
      case Fault::ASYMMETRIC_PARTITION:
        fire = [=] { ForLinks(n, node, -1, [&](int o) { net->Clog(node, o, until); }); };
        break;
      case Fault::CLOG: fire = [=] { net->Clog(node, peer, until); }; break;
      case Fault::DELAY_SPIKE: fire = [=] { net->DelaySpike(node, peer, extra, until); }; break;
      case Fault::BANDWIDTH_DROP:
        fire = [=] { net->ScaleLink(node, peer, /*bandwidth=*/0.01, absl::ZeroDuration(), until); };
        break;
      case Fault::JITTER:
        fire = [=] { net->ScaleLink(node, peer, /*bandwidth=*/1.0, extra, until); };
        break;
      default: continue;
    }
    sim->At(at, std::move(fire));
  }
}

}  // namespace shardlm::sim
