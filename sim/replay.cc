#include "sim/replay.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/run_recorder.h"
#include "core/status_macros.h"

namespace shardlm::sim {
namespace {

using record::RecordedOp;

std::string Describe(const RecordedOp& op) {
  return absl::StrFormat("%s %s rank %d tag 0x%x, %u bytes, hash %016x%s",
                         op.kind() == RecordedOp::SEND ? "send" : "recv",
                         op.kind() == RecordedOp::SEND ? "to" : "from", op.peer(), op.tag(),
                         op.bytes(), op.hash(),
                         op.code() == 0 ? "" : absl::StrCat(", failed: ", op.error()));
}

// What the recording says of each session.
struct RecordedSessions {
  std::map<int, std::vector<int>> workers;          // number -> nodes of ranks > 0
  std::map<int, int64_t> failed_at;                 // number -> index of the failed call
  std::map<std::pair<int, int64_t>, RecordedOp> ops;
  int count = 0;

  explicit RecordedSessions(const record::Recording& r) {
    for (const auto& s : r.sessions()) {
      workers[s.number()].assign(s.workers().begin(), s.workers().end());
      count = std::max(count, s.number());
    }
    for (const RecordedOp& op : r.ops()) {
      ops[{op.session(), op.index()}] = op;
      if (op.code() != 0 && !failed_at.count(op.session())) failed_at[op.session()] = op.index();
    }
  }
  // Nodes of session `n` that are not in the next one: lost with it.
  std::vector<int> Lost(int n) const {
    std::vector<int> out;
    const auto next = workers.find(n + 1);
    for (int w : workers.at(n)) {
      if (next == workers.end() ||
          std::find(next->second.begin(), next->second.end(), w) == next->second.end()) {
        out.push_back(w);
      }
    }
    return out;
  }
  // Nodes of session `n` that were not in the one before: back again.
  std::vector<int> Joined(int n) const {
    std::vector<int> out;
    const auto prev = workers.find(n - 1);
    if (prev == workers.end()) return out;
    for (int w : workers.at(n)) {
      if (std::find(prev->second.begin(), prev->second.end(), w) == prev->second.end()) {
        out.push_back(w);
      }
    }
    return out;
  }
};

// The replay's view while it runs (all on the simulator's one running
// process at a time).
struct ReplayState {
  const RecordedSessions* recorded = nullptr;
  int sessions = 0;              // numbered so far
  int64_t compared = 0;
  std::string divergence;
  void Diverge(std::string why) {
    if (divergence.empty()) divergence = std::move(why);
  }
};

std::unique_ptr<Transport> WrapSession(ReplayState* st, const std::vector<int>& nodes,
                                       Transport* inner, const RunControl& control) {
  auto number = std::make_shared<int>(0);
  const std::vector<int> workers(nodes.begin() + 1, nodes.end());
  ObservedTransport::Hooks hooks;
  hooks.before = [st, number, workers, control](int64_t index, RecordedOp::Kind, int,
                                                uint32_t) -> absl::Status {
    if (*number == 0) {
      *number = ++st->sessions;
      const auto want = st->recorded->workers.find(*number);
      if (want == st->recorded->workers.end()) {
        st->Diverge(absl::StrCat("session ", *number, " ran, the recording has ",
                                 st->recorded->count));
      } else if (want->second != workers) {
        st->Diverge(absl::StrCat("session ", *number, " has other workers than recorded"));
      }
      // Workers the next session takes back were restarted while this one
      // ran (before its end, whether a failure or a request boundary).
      if (st->recorded->workers.count(*number + 1)) {
        for (int node : st->recorded->Joined(*number + 1)) control.restart(node);
      }
    }
    // The recorded failure: the lost workers die, and the call fails as the
    // real one did (which of the root's calls notices a death first depends
    // on timing, which a replay does not reproduce).
    const auto failed = st->recorded->failed_at.find(*number);
    if (failed == st->recorded->failed_at.end() || failed->second != index) {
      return absl::OkStatus();
    }
    for (int node : st->recorded->Lost(*number)) control.crash(node);
    const RecordedOp& op = st->recorded->ops.at({*number, index});
    return absl::Status(static_cast<absl::StatusCode>(op.code()), op.error());
  };
  hooks.after = [st, number](const RecordedOp& got) {
    const auto it = st->recorded->ops.find({*number, got.index()});
    if (it == st->recorded->ops.end()) {
      st->Diverge(absl::StrCat("session ", *number, " call ", got.index(), ": replayed ",
                               Describe(got), ", the recording has no such call"));
      return;
    }
    const RecordedOp& want = it->second;
    const bool same = want.kind() == got.kind() && want.peer() == got.peer() &&
                      want.tag() == got.tag() && (want.code() == 0) == (got.code() == 0) &&
                      (want.code() != 0 || (want.bytes() == got.bytes() && want.hash() == got.hash()));
    if (!same) {
      st->Diverge(absl::StrCat("session ", *number, " call ", got.index(), ": recorded ",
                               Describe(want), "; replayed ", Describe(got)));
    }
    ++st->compared;
  };
  return std::make_unique<ObservedTransport>(inner, std::move(hooks));
}

}  // namespace

absl::StatusOr<Scenario> ReplayScenario(const record::Recording& r) {
  if (r.numerics() != "exact" || r.wire() != "exact") {
    return absl::FailedPreconditionError(
        "only --numerics exact runs replay (their messages do not depend on timing)");
  }
  Scenario s;
  s.set_name("replay");
  s.set_description(absl::StrCat("replay of a ", r.transport(), " run of ", r.model_path(),
                                 " on ", r.nodes(), " nodes"));
  s.mutable_cluster()->set_nodes(r.nodes());
  for (int share : r.shares()) s.mutable_cluster()->add_shares(share);
  s.mutable_cluster()->set_timeout_ms(2000);
  s.mutable_model()->set_path(r.model_path());
  for (const auto& q : r.requests()) {
    Request* req = s.add_requests();
    *req->mutable_prompt_tokens() = q.prompt_tokens();
    req->set_steps(static_cast<int32_t>(q.steps()));
    req->set_temperature(q.temperature());
    req->set_top_p(q.top_p());
    req->set_top_k(q.top_k());
    req->set_seed(q.seed());
  }
  if (s.requests().empty()) return absl::InvalidArgumentError("the recording has no requests");
  s.set_recover(true);
  s.set_stream_weights(r.streamed());
  return s;
}

absl::StatusOr<ReplayReport> Replay(const record::Recording& recording, uint64_t seed,
                                    const std::function<void(const NetEvent&)>& observer) {
  ASSIGN_OR_RETURN(const Scenario scenario, ReplayScenario(recording));
  ASSIGN_OR_RETURN(std::unique_ptr<ScenarioRunner> runner, ScenarioRunner::Create(scenario, "."));
  if (runner->model_sha256() != recording.model_sha256()) {
    return absl::FailedPreconditionError(absl::StrCat(
        recording.model_path(), " is not the file the run recorded (SHA-256 differs)"));
  }
  const RecordedSessions recorded(recording);
  ReplayState st;
  st.recorded = &recorded;
  SimRunOptions options;
  options.seed = seed;
  options.observer = observer;
  options.wrap_root_session = [&st](int32_t, const std::vector<int>& nodes, Transport* inner,
                                    const RunControl& control) {
    return WrapSession(&st, nodes, inner, control);
  };
  ReplayReport report;
  ASSIGN_OR_RETURN(report.run, runner->Run(options));
  report.ops_compared = st.compared;
  report.ops_recorded = recording.ops_size();
  report.sessions_recorded = recorded.count;
  report.sessions_replayed = st.sessions;
  report.divergence = st.divergence;
  if (report.divergence.empty() && st.compared != recording.ops_size()) {
    report.divergence = absl::StrCat("the replay made ", st.compared, " calls, the recording ",
                                     recording.ops_size());
  }
  for (int i = 0; i < recording.requests_size() && report.divergence.empty(); ++i) {
    const auto& want = recording.requests(i);
    const RequestOutcome& got = report.run.requests[i];
    const std::vector<int32_t> recorded_tokens(want.output().begin(), want.output().end());
    if (want.error().empty() != got.completed || got.tokens != recorded_tokens) {
      report.divergence = absl::StrCat("request ", i, ": the replay's tokens differ from the "
                                       "recorded ones");
    }
  }
  return report;
}

}  // namespace shardlm::sim
