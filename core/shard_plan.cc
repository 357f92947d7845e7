#include "core/shard_plan.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// Parses one positive share ("2"); `what` names it in errors.
absl::StatusOr<int> ParseShare(absl::string_view text, absl::string_view what) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return Invalid(absl::StrCat("empty ", what, " in share spec"));
  int64_t v = 0;
  const bool digits = text.find_first_not_of("+-0123456789") == absl::string_view::npos;
  if (!digits || !absl::SimpleAtoi(text, &v)) {
    return Invalid(absl::StrCat(what, " '", text, "' is not an integer"));
  }
  if (v <= 0) return Invalid(absl::StrCat(what, " ", v, " must be positive"));
  if (v > kMaxShare)
    return Invalid(absl::StrCat(what, " ", v, " is too large (at most ", kMaxShare, ")"));
  return static_cast<int>(v);
}

absl::Status CheckShares(const std::vector<int>& shares) {
  if (shares.empty()) return Invalid("a plan needs at least one node");
  if (shares.size() > static_cast<size_t>(kMaxPlanNodes)) {
    return Invalid(absl::StrCat(shares.size(), " nodes is too many (at most ", kMaxPlanNodes, ")"));
  }
  for (int s : shares) {
    if (s <= 0 || s > kMaxShare) {
      return Invalid(absl::StrCat("share ", s, " must be between 1 and ", kMaxShare));
    }
  }
  return absl::OkStatus();
}

// Splits `units` (>= shares.size()) in proportion to `shares`, every node
// getting at least 1: floors of the exact quotas, raised to 1, then the
// largest-remainder method (ties to the lower node) to fix the sum.
std::vector<int64_t> Apportion(int64_t units, const std::vector<int>& shares) {
  const int n = static_cast<int>(shares.size());
  const int64_t total = std::accumulate(shares.begin(), shares.end(), int64_t{0});
  std::vector<int64_t> alloc(n);
  int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    alloc[i] = std::max<int64_t>(1, units * shares[i] / total);
    sum += alloc[i];
  }
  // Remainder of node i, scaled by `total`: quota minus allocation.
  auto rem = [&](int i) { return units * shares[i] - alloc[i] * total; };
  for (; sum < units; ++sum) {
    int best = 0;
    for (int i = 1; i < n; ++i) {
      if (rem(i) > rem(best)) best = i;
    }
    ++alloc[best];
  }
  for (; sum > units; --sum) {
    int best = -1;
    for (int i = 0; i < n; ++i) {
      if (alloc[i] > 1 && (best < 0 || rem(i) < rem(best))) best = i;
    }
    --alloc[best];
  }
  return alloc;
}

// Boundaries [0, b1, ..., total] of `counts` units of `unit` elements
// (the last unit may be partial).
std::vector<int64_t> Boundaries(const std::vector<int64_t>& counts, int64_t unit, int64_t total) {
  std::vector<int64_t> b = {0};
  int64_t units = 0;
  for (int64_t c : counts) {
    units += c;
    b.push_back(std::min(units * unit, total));
  }
  return b;
}

// Every matrix's rows must be whole blocks of its type.
absl::Status CheckRowBlocks(const LlamaConfig& c, const PlanWeightInfo& w) {
  const std::pair<const char*, std::pair<DType, int64_t>> rows[] = {
      {"attn_q", {w.wq, c.dim}},
      {"attn_k", {w.wk, c.dim}},
      {"attn_v", {w.wv, c.dim}},
      {"attn_output", {w.wo, c.q_dim()}},
      {"ffn_gate", {w.gate, c.dim}},
      {"ffn_up", {w.up, c.dim}},
      {"ffn_down", {w.down, c.ffn_dim}},
      {"output", {w.output, c.dim}},
      {"token_embd", {w.token_embd, c.dim}},
      {"norm", {w.norm, c.dim}}};
  for (const auto& [name, tr] : rows) {
    if (tr.second % Info(tr.first).block_size != 0) {
      return Invalid(absl::StrCat(name, " is ", DTypeName(tr.first), " but its rows of ", tr.second,
                                  " elements are not whole ", Info(tr.first).block_size,
                                  "-element blocks"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckConfig(const LlamaConfig& c) {
  if (c.dim <= 0 || c.ffn_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
      c.head_dim <= 0 || c.vocab_size <= 0) {
    return Invalid(absl::StrCat("cannot plan an incomplete model config (", c.ToString(), ")"));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Invalid(
        absl::StrCat(c.n_heads, " query heads are not a multiple of ", c.n_kv_heads, " kv heads"));
  }
  return absl::OkStatus();
}

// With fewer head units than nodes: one unit for each of the `units` nodes
// with the largest shares (ties to the lower node), none for the others.
std::vector<int64_t> HeadHolders(int64_t units, const std::vector<int>& shares) {
  std::vector<int> order(shares.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return shares[a] > shares[b]; });
  std::vector<int64_t> counts(shares.size(), 0);
  for (int64_t i = 0; i < units; ++i) counts[order[i]] = 1;
  return counts;
}

// Query-head boundaries: whole KV groups when there are at most n_kv_heads
// nodes (and wo's blocks allow it), else single heads; either way every wo
// column boundary (head * head_dim) falls on a block of wo. With more nodes
// than units of heads, some nodes get no heads (HeadHolders).
std::vector<int64_t> SplitHeads(const LlamaConfig& c, const PlanWeightInfo& w,
                                const std::vector<int>& shares) {
  const int64_t n = shares.size(), group = c.n_heads / c.n_kv_heads;
  const int64_t block = Info(w.wo).block_size;
  const int64_t align = block / std::gcd(c.head_dim, block);  // heads per aligned wo boundary
  const int64_t group_unit = std::lcm(group, align);
  const bool by_group = n <= c.n_kv_heads && c.n_heads / group_unit >= n;
  const int64_t unit = by_group ? group_unit : align;
  // CheckRowBlocks made q_dim whole wo blocks, so n_heads is a multiple of align.
  const int64_t units = c.n_heads / unit;
  if (units >= n) return Boundaries(Apportion(units, shares), unit, c.n_heads);
  return Boundaries(HeadHolders(units, shares), unit, c.n_heads);
}

// FFN boundaries: on down's blocks (it is split by input columns).
absl::StatusOr<std::vector<int64_t>> SplitFfn(const LlamaConfig& c, const PlanWeightInfo& w,
                                              const std::vector<int>& shares) {
  const int64_t block = Info(w.down).block_size;
  const int64_t units = (c.ffn_dim + block - 1) / block;
  if (units < static_cast<int64_t>(shares.size())) {
    return Invalid(absl::StrCat(
        "cannot split ", c.ffn_dim, " ffn rows over ", shares.size(), " nodes",
        block > 1
            ? absl::StrCat(" in whole ", block, "-row blocks (ffn_down is ", DTypeName(w.down), ")")
            : ""));
  }
  return Boundaries(Apportion(units, shares), block, c.ffn_dim);
}

// Bytes of every slice `s` holds (see NodeShard::weight_bytes).
absl::StatusOr<uint64_t> NodeBytes(const LlamaConfig& c, const PlanWeightInfo& w,
                                   const NodeShard& s) {
  const uint64_t dim = c.dim, hd = c.head_dim;
  ASSIGN_OR_RETURN(const uint64_t wq_row, RowBytes(w.wq, c.dim));
  ASSIGN_OR_RETURN(const uint64_t wk_row, RowBytes(w.wk, c.dim));
  ASSIGN_OR_RETURN(const uint64_t wv_row, RowBytes(w.wv, c.dim));
  ASSIGN_OR_RETURN(const uint64_t wo_row, RowBytes(w.wo, s.q_heads() * c.head_dim));
  ASSIGN_OR_RETURN(const uint64_t gate_row, RowBytes(w.gate, c.dim));
  ASSIGN_OR_RETURN(const uint64_t up_row, RowBytes(w.up, c.dim));
  ASSIGN_OR_RETURN(const uint64_t down_row, RowBytes(w.down, s.ffn_rows()));
  ASSIGN_OR_RETURN(const uint64_t out_row, RowBytes(w.output, c.dim));
  ASSIGN_OR_RETURN(const uint64_t embd_row, RowBytes(w.token_embd, c.dim));
  ASSIGN_OR_RETURN(const uint64_t norm, RowBytes(w.norm, c.dim));
  const uint64_t layer = s.q_heads() * hd * wq_row + s.kv_heads() * hd * (wk_row + wv_row) +
                         dim * wo_row + s.ffn_rows() * (gate_row + up_row) + dim * down_row +
                         2 * norm;
  uint64_t bytes = c.n_layers * layer + norm;  // + output_norm
  const bool root = s.node == 0;
  // Tied: the root's output rows are part of the token_embd it holds anyway.
  if (!(root && w.tied_output)) bytes += s.vocab_rows() * out_row;
  if (root) bytes += c.vocab_size * embd_row;
  return bytes;
}

// "[begin,end)", or "-" when empty (a node without attention heads).
std::string Range(int64_t begin, int64_t end) {
  return begin == end ? "-" : absl::StrCat("[", begin, ",", end, ")");
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseShares(absl::string_view spec) {
  if (absl::StripAsciiWhitespace(spec).empty()) return Invalid("empty share spec");
  std::vector<int> shares;
  const std::vector<absl::string_view> parts = absl::StrSplit(spec, ',');
  if (parts.size() == 1) {
    ASSIGN_OR_RETURN(const int n, ParseShare(parts[0], "node count"));
    if (n > kMaxPlanNodes) {
      return Invalid(absl::StrCat(n, " nodes is too many (at most ", kMaxPlanNodes, ")"));
    }
    return std::vector<int>(n, 1);
  }
  for (absl::string_view p : parts) {
    ASSIGN_OR_RETURN(const int s, ParseShare(p, "share"));
    shares.push_back(s);
  }
  RETURN_IF_ERROR(CheckShares(shares));
  return shares;
}

std::string FormatShares(const std::vector<int>& shares) { return absl::StrJoin(shares, ":"); }

PlanWeightInfo::PlanWeightInfo(DType matrices)
    : wq(matrices),
      wk(matrices),
      wv(matrices),
      wo(matrices),
      gate(matrices),
      up(matrices),
      down(matrices),
      output(matrices),
      token_embd(matrices) {}

absl::StatusOr<PlanWeightInfo> PlanWeightInfo::FromGguf(const GgufFile& file) {
  auto type = [&](const char* name) -> absl::StatusOr<DType> {
    const GgufTensorInfo* t = file.FindTensor(name);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat(file.source(), ": missing tensor '", name, "'"));
    }
    return t->type;
  };
  PlanWeightInfo w;
  ASSIGN_OR_RETURN(w.wq, type("blk.0.attn_q.weight"));
  ASSIGN_OR_RETURN(w.wk, type("blk.0.attn_k.weight"));
  ASSIGN_OR_RETURN(w.wv, type("blk.0.attn_v.weight"));
  ASSIGN_OR_RETURN(w.wo, type("blk.0.attn_output.weight"));
  ASSIGN_OR_RETURN(w.gate, type("blk.0.ffn_gate.weight"));
  ASSIGN_OR_RETURN(w.up, type("blk.0.ffn_up.weight"));
  ASSIGN_OR_RETURN(w.down, type("blk.0.ffn_down.weight"));
  ASSIGN_OR_RETURN(w.norm, type("blk.0.attn_norm.weight"));
  ASSIGN_OR_RETURN(w.token_embd, type("token_embd.weight"));
  w.tied_output = file.FindTensor("output.weight") == nullptr;
  w.output = w.token_embd;
  if (!w.tied_output) {
    ASSIGN_OR_RETURN(w.output, type("output.weight"));
  }
  return w;
}

absl::StatusOr<ShardPlan> ShardPlan::Create(const LlamaConfig& config,
                                            const std::vector<int>& shares,
                                            const PlanWeightInfo& weights) {
  RETURN_IF_ERROR(CheckShares(shares));
  RETURN_IF_ERROR(CheckConfig(config));
  RETURN_IF_ERROR(CheckRowBlocks(config, weights));
  const int n = shares.size();
  const std::vector<int64_t> heads = SplitHeads(config, weights, shares);
  ASSIGN_OR_RETURN(const std::vector<int64_t> ffn, SplitFfn(config, weights, shares));
  if (config.vocab_size < n) {
    return Invalid(
        absl::StrCat("cannot split ", config.vocab_size, " vocabulary rows over ", n, " nodes"));
  }
  const std::vector<int64_t> vocab =
      Boundaries(Apportion(config.vocab_size, shares), 1, config.vocab_size);
  ShardPlan plan;
  plan.config_ = config;
  plan.weights_ = weights;
  plan.shares_ = shares;
  const int64_t group = config.n_heads / config.n_kv_heads;
  int64_t kv_end_so_far = 0;  // of the nodes before, for kv_replicated_
  for (int i = 0; i < n; ++i) {
    NodeShard s;
    s.node = i;
    s.q_head_begin = heads[i];
    s.q_head_end = heads[i + 1];
    s.kv_head_begin = s.q_head_begin / group;
    // A node without query heads holds no KV heads either.
    s.kv_head_end = s.q_heads() == 0 ? s.kv_head_begin : (s.q_head_end + group - 1) / group;
    s.ffn_begin = ffn[i];
    s.ffn_end = ffn[i + 1];
    s.vocab_begin = vocab[i];
    s.vocab_end = vocab[i + 1];
    ASSIGN_OR_RETURN(s.weight_bytes, NodeBytes(config, weights, s));
    s.kv_bytes_per_token = 2 * config.n_layers * s.kv_heads() * config.head_dim * sizeof(float);
    if (s.kv_heads() > 0) {
      if (s.kv_head_begin < kv_end_so_far) plan.kv_replicated_ = true;
      kv_end_so_far = s.kv_head_end;
    }
    plan.nodes_.push_back(s);
  }
  return plan;
}

int ShardPlan::KvHeadHolders(int64_t kv_head) const {
  int holders = 0;
  for (const NodeShard& s : nodes_)
    holders += s.kv_head_begin <= kv_head && kv_head < s.kv_head_end;
  return holders;
}

std::string ShardPlan::ToString() const {
  const int64_t group = config_.n_heads / config_.n_kv_heads;
  const int64_t headless = std::count_if(nodes_.begin(), nodes_.end(),
                                         [](const NodeShard& s) { return s.q_heads() == 0; });
  std::string out = absl::StrFormat(
      "shard plan: %d node%s (shares %s); attention split %s%s\n", num_nodes(),
      num_nodes() == 1 ? "" : "s", FormatShares(shares_),
      kv_replicated_
          ? absl::StrCat("by query head (", group, " per KV head; * = KV head replicated)")
          : absl::StrCat("on KV-group boundaries (", group, " query heads per group)"),
      headless == 0 ? ""
                    : absl::StrCat("; ", headless, " node", headless == 1 ? "" : "s",
                                   " without attention heads (-)"));
  absl::StrAppendFormat(&out, "%5s  %-11s %-15s %-15s %-17s %11s %13s\n", "node", "q heads",
                        "kv heads", "ffn rows", "vocab rows", "weight MiB", "KV KiB/token");
  uint64_t bytes = 0, kv_bytes = 0;
  int64_t kv_held = 0;
  for (const NodeShard& s : nodes_) {
    const bool shared = s.kv_heads() > 0 && (KvHeadHolders(s.kv_head_begin) > 1 ||
                                             KvHeadHolders(s.kv_head_end - 1) > 1);
    absl::StrAppendFormat(&out, "%5d  %-11s %-15s %-15s %-17s %11.2f %13.2f\n", s.node,
                          Range(s.q_head_begin, s.q_head_end),
                          Range(s.kv_head_begin, s.kv_head_end) + (shared ? "*" : ""),
                          Range(s.ffn_begin, s.ffn_end), Range(s.vocab_begin, s.vocab_end),
                          s.weight_bytes / 1048576.0, s.kv_bytes_per_token / 1024.0);
    bytes += s.weight_bytes;
    kv_bytes += s.kv_bytes_per_token;
    kv_held += s.kv_heads();
  }
  absl::StrAppendFormat(
      &out, "%5s  %-11d %-15s %-15d %-17d %11.2f %13.2f\n", "total", config_.n_heads,
      kv_held == config_.n_kv_heads ? absl::StrCat(kv_held)
                                    : absl::StrCat(kv_held, " (", config_.n_kv_heads, " distinct)"),
      config_.ffn_dim, config_.vocab_size, bytes / 1048576.0, kv_bytes / 1024.0);
  return out;
}

}  // namespace shardlm
