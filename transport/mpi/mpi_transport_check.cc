// Checks MpiTransport on every rank of an mpirun job (run it with -np 2 or
// more): ordering per (peer, tag), self-sends, large and overflow-tag
// messages, buffered sends, deadlines, bad peers, and the collectives.
// Prints "rank R: PASS/FAIL: what" lines; exits 0 when every check of this
// rank passed.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/transport.h"
#include "transport/collectives.h"
#include "transport/mpi/mpi_session.h"
#include "transport/mpi/mpi_transport.h"
#include "transport/transport_registry.h"

namespace shardlm::mpi {
namespace {

int failures = 0;
int my_rank = 0;

void Check(bool ok, const std::string& what) {
  std::printf("rank %d: %s: %s\n", my_rank, ok ? "PASS" : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

// Deterministic payload of message `i` from `from` to `to` on `tag`.
std::vector<uint8_t> Payload(int from, int to, uint32_t tag, int i, size_t size) {
  std::vector<uint8_t> bytes(size);
  uint32_t x = static_cast<uint32_t>(from * 1000003 + to * 7919 + i * 31) ^ tag;
  for (uint8_t& b : bytes) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return bytes;
}

size_t SizeOf(int i) {
  const size_t sizes[] = {0, 1, 100, 5000, 300000, 3 << 20};  // up to past the eager limits
  return sizes[i % 6];
}

// Every rank sends every rank (itself too) kCount messages on each of
// three tags (one above any MPI_TAG_UB), interleaved; then receives them
// tag by tag in reverse tag order, checking order and content.
void CheckOrdering(Transport& t, Clock& clock) {
  constexpr int kCount = 8;
  const uint32_t tags[] = {0x5348, 7, 0xFFFFFFF0u};
  const absl::Time deadline = clock.Now() + absl::Seconds(20);
  bool sent = true;
  for (int i = 0; i < kCount; ++i) {
    for (uint32_t tag : tags) {
      for (int peer = 0; peer < t.world_size(); ++peer) {
        sent = sent && t.Send(peer, tag, Payload(t.rank(), peer, tag, i, SizeOf(i + peer)),
                              deadline).ok();
      }
    }
  }
  Check(sent, "buffered sends to every rank (sizes 0 B .. 3 MiB) return before any recv");
  bool ordered = true;
  std::string first_error;
  for (int k = 2; k >= 0; --k) {
    for (int peer = t.world_size() - 1; peer >= 0; --peer) {
      for (int i = 0; i < kCount; ++i) {
        absl::StatusOr<std::vector<uint8_t>> got = t.Recv(peer, tags[k], deadline);
        const bool ok = got.ok() && *got == Payload(peer, t.rank(), tags[k], i,
                                                    SizeOf(i + t.rank()));
        if (!ok && first_error.empty()) {
          first_error = got.ok() ? "wrong bytes" : std::string(got.status().message());
        }
        ordered = ordered && ok;
      }
    }
  }
  Check(ordered, absl::StrCat("send order kept per (peer, tag), self and overflow tags included ",
                              first_error));
}

void CheckDeadlines(Transport& t, RealClock& clock) {
  const int peer = (t.rank() + 1) % t.world_size();
  const absl::Time start = clock.Now();
  absl::StatusOr<std::vector<uint8_t>> got =
      t.Recv(peer, 0x4444, start + absl::Milliseconds(300));
  const absl::Duration took = clock.Now() - start;
  const std::string want = absl::StrCat("rank ", peer, " did not answer within 300ms");
  Check(absl::IsDeadlineExceeded(got.status()) &&
            got.status().message().find(want) != std::string::npos,
        absl::StrCat("recv of a message nobody sends: DeadlineExceeded '", want, "' (",
                     got.status().ToString(), ")"));
  Check(took >= absl::Milliseconds(300) && took < absl::Seconds(2),
        absl::StrCat("deadline honoured: returned after ", absl::FormatDuration(took)));
  got = t.Recv(t.rank(), 0x4445, clock.Now() + absl::Milliseconds(50));
  Check(absl::IsDeadlineExceeded(got.status()), "recv from oneself times out too");
  ManualClock manual;
  std::unique_ptr<MpiTransport> m = *MpiTransport::Create(&manual);
  got = m->Recv(peer, 0x4446, manual.Now() + absl::Seconds(10));
  Check(absl::IsDeadlineExceeded(got.status()), "deadlines read the injected clock");
  Check(absl::IsInvalidArgument(t.Send(t.world_size(), 1, {}, clock.Now())) &&
            absl::IsInvalidArgument(t.Recv(-1, 1, clock.Now()).status()),
        "ranks outside the cluster are InvalidArgument");
}

// Rank 2 stays silent; rank 1 gives up on it first, then rank 0 gives up on
// rank 1 and names rank 2 through rank 1's report. (3 ranks or more.)
void CheckBlame(Transport& t, RealClock& clock) {
  Check(Barrier(t, 0x5302, clock.Now() + absl::Seconds(20)).ok(), "barrier before the silence");
  const absl::Time start = clock.Now();
  if (t.rank() == 1) {
    const absl::Status s = t.Recv(2, 0x4447, start + absl::Milliseconds(300)).status();
    Check(absl::IsDeadlineExceeded(s), "rank 1 gives up on silent rank 2");
  } else if (t.rank() == 0) {
    const absl::Status s = t.Recv(1, 0x4447, start + absl::Milliseconds(1500)).status();
    const std::string want =
        "rank 1 did not answer within 1.5s (rank 1 reported: mpi recv from rank 2 tag 0x4447: "
        "rank 2 did not answer within 300ms)";
    Check(absl::IsDeadlineExceeded(s) && s.message().find(want) != std::string::npos,
          absl::StrCat("rank 0's deadline error names rank 2 through rank 1: ", s.message()));
  }
  clock.SleepFor(start + absl::Milliseconds(2200) - clock.Now());
  Check(Barrier(t, 0x5301, clock.Now() + absl::Seconds(20)).ok(), "barrier after the silence");
}

void CheckCollectives(Transport& t, Clock& clock, uint32_t tag) {
  const int n = t.world_size();
  for (AllReduceAlgorithm algo : {AllReduceAlgorithm::kRing, AllReduceAlgorithm::kDirect}) {
    for (int64_t length : {1, 7, 1000, 100000}) {
      std::vector<int64_t> want(length, 0), mine(length);
      for (int r = 0; r < n; ++r) {
        std::mt19937_64 rng(r * 977 + length);
        for (int64_t i = 0; i < length; ++i) {
          const int64_t v = static_cast<int64_t>(rng() >> 4) - (int64_t{1} << 59);
          want[i] += v;
          if (r == t.rank()) mine[i] = v;
        }
      }
      const absl::Status s =
          AllReduceSum(t, absl::MakeSpan(mine), algo, tag, clock.Now() + absl::Seconds(20));
      Check(s.ok() && mine == want,
            absl::StrCat("AllReduceSum int64 ", AllReduceAlgorithmName(algo), " of ", length,
                         " over ", n, " ranks ", s.ToString()));
    }
  }
  std::vector<uint8_t> data;
  if (t.rank() == 1) data = Payload(1, 0, tag, 0, 10000);
  absl::Status s = Broadcast(t, 1, &data, tag, clock.Now() + absl::Seconds(20));
  Check(s.ok() && data == Payload(1, 0, tag, 0, 10000), "Broadcast from rank 1");
  std::vector<std::vector<uint8_t>> all;
  const std::vector<uint8_t> mine = Payload(t.rank(), 0, tag, 1, 10 + t.rank());
  s = AllGather(t, mine, &all, tag, clock.Now() + absl::Seconds(20));
  bool same = s.ok() && static_cast<int>(all.size()) == n;
  for (int r = 0; same && r < n; ++r) same = all[r] == Payload(r, 0, tag, 1, 10 + r);
  Check(same, "AllGather");
  Check(Barrier(t, tag, clock.Now() + absl::Seconds(20)).ok(), "Barrier");
}

int Main() {
  absl::StatusOr<std::unique_ptr<MpiSession>> session = MpiSession::Start();
  if (!session.ok()) {
    std::fprintf(stderr, "MpiSession::Start: %s\n", session.status().ToString().c_str());
    return 1;
  }
  my_rank = (*session)->rank();
  Check((*session)->thread_level() != "single",
        absl::StrCat("thread level ", (*session)->thread_level()));
  RealClock clock;
  TransportOptions opts;
  opts.rank = (*session)->rank();
  opts.world_size = (*session)->world_size();
  opts.clock = &clock;
  absl::StatusOr<std::unique_ptr<Transport>> t = CreateTransport("mpi", opts);
  Check(t.ok(), absl::StrCat("CreateTransport(\"mpi\") ", t.status().ToString()));
  if (!t.ok() || (*t)->world_size() < 2) {
    Check(false, "needs 2 or more ranks");
    return 1;
  }
  opts.rank = (opts.rank + 1) % opts.world_size;
  Check(absl::IsInvalidArgument(CreateTransport("mpi", opts).status()),
        "CreateTransport with another rank than MPI's is InvalidArgument");
  auto* m = static_cast<MpiTransport*>(t->get());
  Check(m->MpiTag(0x5353) == 0x5353 && m->MpiTag(0xFFFFFFF0u) != static_cast<int>(0xFFFFFFF0u),
        absl::StrCat("tags: 0x5353 travels as itself, 0xFFFFFFF0 as MPI tag ",
                     m->MpiTag(0xFFFFFFF0u)));
  CheckOrdering(**t, clock);
  CheckDeadlines(**t, clock);
  if ((*t)->world_size() >= 3) CheckBlame(**t, clock);
  CheckCollectives(**t, clock, 0x5348);
  CheckCollectives(**t, clock, 0xABCDEF01u);  // an overflow tag
  // Nobody leaves while another rank may still be talking to it.
  Check(Barrier(**t, 0x5300, clock.Now() + absl::Seconds(20)).ok(), "final barrier");
  t->reset();
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace shardlm::mpi

// `--available`: exit 0 without starting MPI (the stand-in built without MPI
// exits 77).
int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--available") return 0;
  return shardlm::mpi::Main();
}
