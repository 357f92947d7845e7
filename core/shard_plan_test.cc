#include "core/shard_plan.h"

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "core/model_config.h"
#include "core/synthetic_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

LlamaConfig Shape(int64_t dim, int64_t ffn, int64_t layers, int64_t heads, int64_t kv,
                  int64_t vocab) {
  LlamaConfig c;
  c.architecture = "llama";
  c.context_length = 512;
  c.dim = dim;
  c.ffn_dim = ffn;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv;
  c.head_dim = dim / heads;
  c.rope_dim = c.head_dim;
  c.vocab_size = vocab;
  return c;
}

LlamaConfig Stories260K() { return Shape(64, 172, 5, 8, 4, 512); }
LlamaConfig Llama3_8B() { return Shape(4096, 14336, 32, 32, 8, 128256); }

// Node i's size is its exact quota within the rounding of `unit`-element
// units, plus the units moved to give every node at least one.
void ExpectProportional(const std::vector<int64_t>& sizes, int64_t total, int64_t unit,
                        const std::vector<int>& shares, const std::string& what) {
  const double sum = std::accumulate(shares.begin(), shares.end(), 0.0);
  const double units = std::ceil(static_cast<double>(total) / unit);
  int raised = 0;
  for (int s : shares) raised += units * s / sum < 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const double quota = total * shares[i] / sum;
    EXPECT_LE(std::abs(sizes[i] - quota), unit * (1.0 + raised))
        << what << " of node " << i << ": " << sizes[i] << " vs quota " << quota;
  }
}

// Contiguous, disjoint, complete ranges, each non-empty; every KV range is
// exactly what the node's query heads need; sizes follow the shares.
void CheckPlan(const ShardPlan& plan, const LlamaConfig& c, const std::vector<int>& shares,
               int64_t ffn_unit) {
  const auto& nodes = plan.nodes();
  ASSERT_EQ(nodes.size(), shares.size());
  const int64_t group = c.n_heads / c.n_kv_heads;
  const bool by_group = shares.size() <= static_cast<size_t>(c.n_kv_heads);
  std::vector<int64_t> q, ffn, vocab;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeShard& s = nodes[i];
    SCOPED_TRACE(::testing::Message() << "node " << i << " of " << nodes.size());
    EXPECT_EQ(s.node, static_cast<int>(i));
    EXPECT_EQ(s.q_head_begin, i == 0 ? 0 : nodes[i - 1].q_head_end);
    EXPECT_EQ(s.ffn_begin, i == 0 ? 0 : nodes[i - 1].ffn_end);
    EXPECT_EQ(s.vocab_begin, i == 0 ? 0 : nodes[i - 1].vocab_end);
    EXPECT_GE(s.q_heads(), 1);
    EXPECT_GE(s.ffn_rows(), 1);
    EXPECT_GE(s.vocab_rows(), 1);
    EXPECT_EQ(s.kv_head_begin, s.q_head_begin / group);
    EXPECT_EQ(s.kv_head_end, (s.q_head_end + group - 1) / group);
    if (by_group) {
      EXPECT_EQ(s.q_head_begin % group, 0);
    }
    EXPECT_EQ(s.ffn_begin % ffn_unit, 0);
    EXPECT_EQ(s.kv_bytes_per_token,
              static_cast<uint64_t>(2 * c.n_layers * s.kv_heads() * c.head_dim * 4));
    q.push_back(s.q_heads());
    ffn.push_back(s.ffn_rows());
    vocab.push_back(s.vocab_rows());
  }
  EXPECT_EQ(nodes.back().q_head_end, c.n_heads);
  EXPECT_EQ(nodes.back().ffn_end, c.ffn_dim);
  EXPECT_EQ(nodes.back().vocab_end, c.vocab_size);
  bool replicated = false;
  for (int64_t h = 0; h < c.n_kv_heads; ++h) {
    EXPECT_GE(plan.KvHeadHolders(h), 1) << "kv head " << h;
    if (by_group) {
      EXPECT_EQ(plan.KvHeadHolders(h), 1) << "kv head " << h;
    }
    replicated |= plan.KvHeadHolders(h) > 1;
  }
  EXPECT_EQ(plan.kv_replicated(), replicated);
  ExpectProportional(q, c.n_heads, by_group ? group : 1, shares, "q heads");
  ExpectProportional(ffn, c.ffn_dim, ffn_unit, shares, "ffn rows");
  ExpectProportional(vocab, c.vocab_size, 1, shares, "vocab rows");
}

// Equal shares for 1..max_nodes nodes, then uneven ones; `extreme` adds
// one where a node's quota is far below the one-unit minimum.
std::vector<std::vector<int>> ShareVectors(int max_nodes, bool extreme) {
  std::vector<std::vector<int>> out;
  for (int n = 1; n <= max_nodes; ++n) out.push_back(std::vector<int>(n, 1));
  out.push_back({1, 1, 2});
  out.push_back({3, 1});
  out.push_back({1, 2, 3, 4, 5});
  if (extreme) out.push_back({1, 1, 1, 1, 1, 1, 1, 100});
  return out;
}

TEST(ShardPlanTest, Stories260KEveryNodeCountAndShares) {
  const LlamaConfig c = Stories260K();
  for (const std::vector<int>& shares : ShareVectors(8, true)) {
    SCOPED_TRACE("shares " + FormatShares(shares));
    auto plan = ShardPlan::Create(c, shares, PlanWeightInfo());
    ASSERT_TRUE(plan.ok()) << plan.status();
    CheckPlan(*plan, c, shares, 1);
  }
}

TEST(ShardPlanTest, Stories260KThreeNodes) {
  auto plan = ShardPlan::Create(Stories260K(), {1, 1, 1}, PlanWeightInfo());
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto& n = plan->nodes();
  EXPECT_EQ(n[0].q_heads(), 4);  // 4 groups of 2 heads: 2, 1, 1 groups
  EXPECT_EQ(n[1].q_heads(), 2);
  EXPECT_EQ(n[2].q_heads(), 2);
  EXPECT_EQ(n[0].ffn_rows(), 58);  // 172 = 58 + 57 + 57
  EXPECT_EQ(n[1].ffn_rows(), 57);
  EXPECT_EQ(n[0].vocab_rows(), 171);
  EXPECT_FALSE(plan->kv_replicated());
  const std::string table = plan->ToString();
  EXPECT_NE(table.find("[0,4)"), std::string::npos) << table;
  EXPECT_NE(table.find("total"), std::string::npos) << table;
  std::printf("stories260K --plan 3:\n%s\n", table.c_str());
}

TEST(ShardPlanTest, Stories260KUnevenShares) {
  auto plan = ShardPlan::Create(Stories260K(), {1, 1, 2}, PlanWeightInfo());
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto& n = plan->nodes();
  EXPECT_EQ(n[2].q_heads(), 4);
  EXPECT_EQ(n[2].ffn_rows(), 86);
  EXPECT_EQ(n[2].vocab_rows(), 256);
  std::printf("stories260K --plan 1,1,2:\n%s\n", plan->ToString().c_str());
}

TEST(ShardPlanTest, MoreNodesThanKvHeadsReplicates) {
  auto plan = ShardPlan::Create(Stories260K(), std::vector<int>(5, 1), PlanWeightInfo());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->kv_replicated());
  EXPECT_NE(plan->ToString().find("*"), std::string::npos);
  auto llama =
      ShardPlan::Create(Llama3_8B(), std::vector<int>(16, 1), PlanWeightInfo(DType::kQ4_0));
  ASSERT_TRUE(llama.ok()) << llama.status();
  for (int64_t h = 0; h < 8; ++h) EXPECT_EQ(llama->KvHeadHolders(h), 2) << "kv head " << h;
  for (const NodeShard& s : llama->nodes()) EXPECT_EQ(s.kv_heads(), 1);
}

TEST(ShardPlanTest, ImpossiblePlans) {
  const LlamaConfig c = Stories260K();
  auto many = ShardPlan::Create(c, std::vector<int>(200, 1), PlanWeightInfo());
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.status().message(), "cannot split 172 ffn rows over 200 nodes");
  LlamaConfig small_vocab = c;
  small_vocab.vocab_size = 100;
  auto vocab = ShardPlan::Create(small_vocab, std::vector<int>(150, 1), PlanWeightInfo());
  ASSERT_FALSE(vocab.ok());
  EXPECT_EQ(vocab.status().message(), "cannot split 100 vocabulary rows over 150 nodes");
  EXPECT_FALSE(ShardPlan::Create(c, {0, 1}, PlanWeightInfo()).ok());
  EXPECT_FALSE(ShardPlan::Create(c, {-1, 1}, PlanWeightInfo()).ok());
  EXPECT_FALSE(ShardPlan::Create(c, {}, PlanWeightInfo()).ok());
  EXPECT_FALSE(ShardPlan::Create(c, std::vector<int>(257, 1), PlanWeightInfo()).ok());
}

// With more nodes than units of heads: every query head, FFN row and
// vocabulary row is held by exactly one node, in node order; a node holds
// either `unit` heads and the KV heads they need, or nothing of attention;
// the head holders are the nodes with the largest shares (ties: lower node).
void CheckHeadlessPlan(const ShardPlan& plan, const LlamaConfig& c,
                       const std::vector<int>& shares, int64_t unit) {
  const auto& nodes = plan.nodes();
  ASSERT_EQ(nodes.size(), shares.size());
  const int64_t group = c.n_heads / c.n_kv_heads;
  std::vector<int> q_owners(c.n_heads), ffn_owners(c.ffn_dim), vocab_owners(c.vocab_size);
  std::vector<int> holders;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeShard& s = nodes[i];
    SCOPED_TRACE(::testing::Message() << "node " << i << " of " << nodes.size());
    EXPECT_EQ(s.q_head_begin, i == 0 ? 0 : nodes[i - 1].q_head_end);
    EXPECT_EQ(s.ffn_begin, i == 0 ? 0 : nodes[i - 1].ffn_end);
    EXPECT_EQ(s.vocab_begin, i == 0 ? 0 : nodes[i - 1].vocab_end);
    EXPECT_GE(s.ffn_rows(), 1);
    EXPECT_GE(s.vocab_rows(), 1);
    EXPECT_TRUE(s.q_heads() == 0 || s.q_heads() == unit) << s.q_heads();
    if (s.q_heads() == 0) {
      EXPECT_EQ(s.kv_heads(), 0);
      EXPECT_EQ(s.kv_bytes_per_token, 0u);
    } else {
      holders.push_back(static_cast<int>(i));
      EXPECT_EQ(s.kv_head_begin, s.q_head_begin / group);
      EXPECT_EQ(s.kv_head_end, (s.q_head_end + group - 1) / group);
    }
    for (int64_t h = s.q_head_begin; h < s.q_head_end; ++h) ++q_owners[h];
    for (int64_t r = s.ffn_begin; r < s.ffn_end; ++r) ++ffn_owners[r];
    for (int64_t r = s.vocab_begin; r < s.vocab_end; ++r) ++vocab_owners[r];
  }
  for (int o : q_owners) EXPECT_EQ(o, 1);
  for (int o : ffn_owners) EXPECT_EQ(o, 1);
  for (int o : vocab_owners) EXPECT_EQ(o, 1);
  for (int64_t h = 0; h < c.n_kv_heads; ++h) EXPECT_GE(plan.KvHeadHolders(h), 1);
  ASSERT_EQ(static_cast<int64_t>(holders.size()), c.n_heads / unit);
  // Every holder's share is at least every other node's, and on equal
  // shares the holder is the lower node.
  for (int h : holders) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].q_heads() > 0) continue;
      EXPECT_TRUE(shares[h] > shares[i] || (shares[h] == shares[i] && h < static_cast<int>(i)))
          << "holder " << h << " vs node " << i;
    }
  }
  std::vector<int64_t> ffn, vocab;
  for (const NodeShard& s : nodes) {
    ffn.push_back(s.ffn_rows());
    vocab.push_back(s.vocab_rows());
  }
  ExpectProportional(ffn, c.ffn_dim, Info(plan.weights().down).block_size, shares, "ffn rows");
  ExpectProportional(vocab, c.vocab_size, 1, shares, "vocab rows");
}

TEST(ShardPlanTest, MoreNodesThanQueryHeads) {
  const LlamaConfig c = Stories260K();
  std::vector<std::vector<int>> cases;
  for (int n = 9; n <= 40; ++n) cases.push_back(std::vector<int>(n, 1));
  cases.push_back({1, 1, 1, 1, 1, 1, 1, 1, 1, 3});
  cases.push_back({5, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 9});
  for (const std::vector<int>& shares : cases) {
    SCOPED_TRACE("shares " + FormatShares(shares));
    auto plan = ShardPlan::Create(c, shares, PlanWeightInfo());
    ASSERT_TRUE(plan.ok()) << plan.status();
    CheckHeadlessPlan(*plan, c, shares, 1);
    EXPECT_TRUE(plan->kv_replicated());
  }
  auto ten = ShardPlan::Create(c, std::vector<int>(10, 1), PlanWeightInfo());
  ASSERT_TRUE(ten.ok());
  EXPECT_EQ(ten->nodes()[7].q_head_begin, 7);
  EXPECT_EQ(ten->nodes()[9].q_heads(), 0);
  EXPECT_EQ(ten->nodes()[9].ffn_rows(), 17);  // FFN and vocabulary still by share
  EXPECT_EQ(ten->nodes()[9].vocab_rows(), 51);
  const std::string table = ten->ToString();
  EXPECT_NE(table.find("2 nodes without attention heads"), std::string::npos) << table;
  EXPECT_NE(table.find("    9  -           -               [155,172)"), std::string::npos)
      << table;
  std::printf("stories260K --plan 10:\n%s\n", table.c_str());
}

TEST(ShardPlanTest, Llama3MoreNodesThanQueryHeads) {
  const LlamaConfig c = Llama3_8B();
  const PlanWeightInfo w(DType::kQ4_0);
  std::vector<std::vector<int>> cases;
  for (int n = 33; n <= 64; ++n) cases.push_back(std::vector<int>(n, 1));
  std::vector<int> uneven(64, 1);
  uneven[40] = uneven[63] = 2;
  cases.push_back(uneven);
  for (const std::vector<int>& shares : cases) {
    SCOPED_TRACE("shares " + FormatShares(shares));
    auto plan = ShardPlan::Create(c, shares, w);
    ASSERT_TRUE(plan.ok()) << plan.status();
    CheckHeadlessPlan(*plan, c, shares, 1);
    for (int64_t h = 0; h < c.n_kv_heads; ++h) EXPECT_EQ(plan->KvHeadHolders(h), 4);
  }
  auto plan = ShardPlan::Create(c, uneven, w);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->nodes()[40].q_heads(), 1);
  EXPECT_EQ(plan->nodes()[63].q_heads(), 1);
  EXPECT_EQ(plan->nodes()[30].q_heads(), 0);  // nodes 0..29, 40 and 63 hold heads
  EXPECT_EQ(plan->nodes()[29].q_heads(), 1);
  // A headless node's bytes: its FFN and vocabulary slices and the norms.
  const NodeShard& s = plan->nodes()[50];
  const uint64_t row = *RowBytes(DType::kQ4_0, c.dim);
  EXPECT_EQ(s.weight_bytes, c.n_layers * (2 * s.ffn_rows() * row +
                                          c.dim * *RowBytes(DType::kQ4_0, s.ffn_rows()) +
                                          2 * c.dim * 4) +
                                c.dim * 4 + s.vocab_rows() * row);
}

TEST(ShardPlanTest, QuantizedWoKeepsColumnBoundariesOnBlocks) {
  // head_dim 8: a q8_0 wo needs 4 heads (32 columns) per boundary.
  const LlamaConfig c = Stories260K();
  PlanWeightInfo w;
  w.wo = DType::kQ8_0;
  auto two = ShardPlan::Create(c, {1, 1}, w);
  ASSERT_TRUE(two.ok()) << two.status();
  for (const NodeShard& s : two->nodes()) EXPECT_EQ(s.q_head_begin * c.head_dim % 32, 0);
  auto uneven = ShardPlan::Create(c, {1, 3}, w);
  ASSERT_TRUE(uneven.ok()) << uneven.status();
  EXPECT_EQ(uneven->nodes()[1].q_head_begin, 4);
  // Two units of 4 heads: a third node holds no heads.
  auto three = ShardPlan::Create(c, {1, 1, 1}, w);
  ASSERT_TRUE(three.ok()) << three.status();
  CheckHeadlessPlan(*three, c, {1, 1, 1}, 4);
  EXPECT_EQ(three->nodes()[2].q_heads(), 0);
  auto favored = ShardPlan::Create(c, {1, 2, 2}, w);
  ASSERT_TRUE(favored.ok()) << favored.status();
  CheckHeadlessPlan(*favored, c, {1, 2, 2}, 4);
  EXPECT_EQ(favored->nodes()[0].q_heads(), 0);
}

TEST(ShardPlanTest, QuantizedDownNeedsWholeBlocks) {
  PlanWeightInfo w;
  w.down = DType::kQ8_0;  // ffn 172 is not whole blocks of 32
  auto plan = ShardPlan::Create(Stories260K(), {1, 1}, w);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("ffn_down"), std::string::npos) << plan.status();
  // 192 = 6 blocks: 7 nodes cannot each get one.
  LlamaConfig c = Stories260K();
  c.ffn_dim = 192;
  ASSERT_TRUE(ShardPlan::Create(c, std::vector<int>(6, 1), w).ok());
  auto seven = ShardPlan::Create(c, std::vector<int>(7, 1), w);
  ASSERT_FALSE(seven.ok());
  EXPECT_NE(seven.status().message().find("32-row blocks"), std::string::npos) << seven.status();
}

// Bytes of one node holding the whole model (untied: matrices, norms, both
// embedding tables once).
uint64_t WholeModelBytes(const LlamaConfig& c, DType t) {
  const uint64_t row = *RowBytes(t, c.dim), d = c.dim, hd = c.head_dim;
  const uint64_t layer = (c.n_heads + 2 * c.n_kv_heads) * hd * row + d * *RowBytes(t, c.q_dim()) +
                         2 * c.ffn_dim * row + d * *RowBytes(t, c.ffn_dim) + 2 * d * 4;
  return c.n_layers * layer + d * 4 + 2 * c.vocab_size * row;
}

TEST(ShardPlanTest, Llama3Q4_0EveryNodeCount) {
  const LlamaConfig c = Llama3_8B();
  const PlanWeightInfo w(DType::kQ4_0);
  auto one = ShardPlan::Create(c, {1}, w);
  ASSERT_TRUE(one.ok()) << one.status();
  const uint64_t whole = one->nodes()[0].weight_bytes;
  EXPECT_EQ(whole, WholeModelBytes(c, DType::kQ4_0));
  const uint64_t norms = (2 * c.n_layers + 1) * c.dim * 4;
  const uint64_t kv_head_bytes = c.n_layers * c.head_dim * 2 * *RowBytes(DType::kQ4_0, c.dim);
  const uint64_t embd = c.vocab_size * *RowBytes(DType::kQ4_0, c.dim);
  const std::vector<std::vector<int>> cases = ShareVectors(32, false);
  for (const std::vector<int>& shares : cases) {
    SCOPED_TRACE("shares " + FormatShares(shares));
    auto plan = ShardPlan::Create(c, shares, w);
    ASSERT_TRUE(plan.ok()) << plan.status();
    CheckPlan(*plan, c, shares, 32);
    uint64_t sum = 0;
    int64_t kv_held = 0;
    for (const NodeShard& s : plan->nodes()) {
      EXPECT_EQ(s.q_head_begin * c.head_dim % 32, 0);
      EXPECT_EQ(s.ffn_begin % 32, 0);
      sum += s.weight_bytes;
      kv_held += s.kv_heads();
    }
    const int n = shares.size();
    EXPECT_EQ(sum, whole + (n - 1) * norms + (kv_held - c.n_kv_heads) * kv_head_bytes);
    EXPECT_GE(sum, whole);
    // Per node, apart from the root's token_embd: close to its share (whole
    // KV groups of 4 heads make attention coarse: 7 nodes share 8 groups).
    const double split = sum - embd, total = std::accumulate(shares.begin(), shares.end(), 0.0);
    for (const NodeShard& s : plan->nodes()) {
      const double bytes = s.weight_bytes - (s.node == 0 ? embd : 0);
      EXPECT_NEAR(bytes / (split * shares[s.node] / total), 1.0, 0.2) << "node " << s.node;
    }
  }
}

TEST(ShardPlanTest, Llama3Q4_0ThreeNodes) {
  auto plan = ShardPlan::Create(Llama3_8B(), {1, 1, 1}, PlanWeightInfo(DType::kQ4_0));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto& n = plan->nodes();
  EXPECT_EQ(n[0].q_heads(), 12);  // 8 groups of 4: 3, 3, 2
  EXPECT_EQ(n[2].q_heads(), 8);
  EXPECT_EQ(n[0].ffn_rows(), 4800);  // 448 blocks: 150, 149, 149
  EXPECT_EQ(n[1].ffn_rows(), 4768);
  EXPECT_EQ(n[0].vocab_rows(), 42752);
  std::printf("llama3-8b q4_0 --plan 3:\n%s\n", plan->ToString().c_str());
}

TEST(ShardPlanTest, TiedOutputIsNotCountedTwiceOnTheRoot) {
  const LlamaConfig c = Llama3_8B();
  PlanWeightInfo tied(DType::kQ4_0);
  tied.tied_output = true;
  auto plan = ShardPlan::Create(c, {1, 1}, tied);
  auto untied = ShardPlan::Create(c, {1, 1}, PlanWeightInfo(DType::kQ4_0));
  ASSERT_TRUE(plan.ok() && untied.ok());
  const uint64_t row = *RowBytes(DType::kQ4_0, c.dim);
  EXPECT_EQ(plan->nodes()[0].weight_bytes,
            untied->nodes()[0].weight_bytes - plan->nodes()[0].vocab_rows() * row);
  EXPECT_EQ(plan->nodes()[1].weight_bytes, untied->nodes()[1].weight_bytes);
}

TEST(ShardPlanTest, Deterministic) {
  for (const std::vector<int>& shares : ShareVectors(8, true)) {
    auto a = ShardPlan::Create(Stories260K(), shares, PlanWeightInfo());
    auto b = ShardPlan::Create(Stories260K(), shares, PlanWeightInfo());
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->ToString(), b->ToString());
  }
}

TEST(ParseSharesTest, Valid) {
  EXPECT_EQ(*ParseShares("3"), std::vector<int>({1, 1, 1}));
  EXPECT_EQ(*ParseShares("1"), std::vector<int>({1}));
  EXPECT_EQ(*ParseShares("1,1,2"), std::vector<int>({1, 1, 2}));
  EXPECT_EQ(*ParseShares(" 3 , 1 "), std::vector<int>({3, 1}));
  EXPECT_EQ(ParseShares("256")->size(), 256u);
}

TEST(ParseSharesTest, Invalid) {
  for (const char* spec : {"", " ", "abc", "1,x", "1.5", "0", "0,1", "-1,2", "-3", "257", "1,,2",
                           ",", "1,", "2000000,1", "3 nodes"}) {
    auto s = ParseShares(spec);
    EXPECT_FALSE(s.ok()) << "'" << spec << "'";
    EXPECT_EQ(s.status().message().find('\n'), std::string::npos);
  }
  std::string many = "1";
  for (int i = 0; i < 256; ++i) many += ",1";
  EXPECT_NE(ParseShares(many).status().message().find("at most 256"), std::string::npos);
  EXPECT_NE(ParseShares("abc").status().message().find("not an integer"), std::string::npos);
}

TEST(PlanWeightInfoTest, FromGguf) {
  const std::string path = testing::ModelPath("stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "stories260K.gguf is absent";
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto w = PlanWeightInfo::FromGguf(**file);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->wo, DType::kF32);
  EXPECT_EQ(w->down, DType::kF32);
  auto config = LlamaConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  auto plan = ShardPlan::Create(*config, {1, 1, 1}, *w);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->nodes()[2].ffn_end, 172);
}

TEST(PlanWeightInfoTest, FromSyntheticQ8_0) {
  SyntheticModelSpec spec;
  spec.dim = 64;
  spec.ffn_dim = 96;
  spec.n_layers = 2;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.vocab_size = kMinSyntheticVocabSize;
  spec.type = DType::kQ8_0;
  spec.tied_output = true;
  const std::string path = testing::TempPath("q8.gguf");
  ASSERT_TRUE(WriteSyntheticModel(spec, path).ok());
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto w = PlanWeightInfo::FromGguf(**file);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->down, DType::kQ8_0);
  EXPECT_EQ(w->norm, DType::kF32);
  EXPECT_TRUE(w->tied_output);
  EXPECT_EQ(w->output, w->token_embd);
  auto config = LlamaConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  auto plan = ShardPlan::Create(*config, {1, 1}, *w);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->nodes()[1].ffn_begin, 64);  // 3 blocks: 2, 1
  // head_dim 16: wo (q8_0) boundaries need pairs of heads, and there are 2
  // pairs: a third node holds none.
  auto three = ShardPlan::Create(*config, {1, 1, 1}, *w);
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(three->nodes()[1].q_heads(), 2);
  EXPECT_EQ(three->nodes()[2].q_heads(), 0);
  // 3 FFN blocks cannot go to 4 nodes.
  auto four = ShardPlan::Create(*config, {1, 1, 1, 1}, *w);
  ASSERT_FALSE(four.ok());
  EXPECT_NE(four.status().message().find("ffn rows over 4 nodes in whole 32-row blocks"),
            std::string::npos)
      << four.status();
}

}  // namespace
}  // namespace shardlm
