// ShardByteRanges (core/shard_weights.h) against LoadShardWeights: the ranges
// are well formed, add up to the plan's bytes, cover the model across a
// plan's nodes, and a sparse image holding only them (core/gguf_image.h)
// loads weights byte-identical to the real file's.
#include "core/shard_weights.h"

#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/cpu_backend.h"
#include "core/gguf_image.h"
#include "core/gguf_writer.h"
#include "core/model_config.h"
#include "core/shard_plan.h"
#include "core/synthetic_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm {
namespace {

// The CPU backend, also keeping a copy of the host bytes of every weight it
// was given, so that quantized weights can be compared byte for byte.
class RecordingBackend : public Backend {
 public:
  RecordingBackend() : cpu_(CpuBackend::Create(BackendOptions{1}).value()) {}
  const std::string& bytes(const Buffer& b) const { return bytes_.at(&b); }

  std::string name() const override { return cpu_->name(); }
  bool SupportsWeightType(DType t) const override { return cpu_->SupportsWeightType(t); }
  int parallelism() const override { return cpu_->parallelism(); }
  std::string Describe() const override { return cpu_->Describe(); }
  Numerics numerics() const override { return cpu_->numerics(); }
  absl::StatusOr<std::unique_ptr<Buffer>> CreateWeight(DType type, int64_t rows, int64_t cols,
                                                       const void* host) override {
    auto b = cpu_->CreateWeight(type, rows, cols, host);
    if (b.ok()) {
      bytes_[b->get()] = std::string(static_cast<const char*>(host),
                                     rows * RowBytes(type, cols).value());
    }
    return b;
  }
  absl::StatusOr<std::unique_ptr<Buffer>> CreateActivation(int64_t rows, int64_t cols) override {
    return cpu_->CreateActivation(rows, cols);
  }
  absl::Status Write(absl::Span<const float> src, int64_t row, Buffer* dst) override {
    return cpu_->Write(src, row, dst);
  }
  absl::Status Read(const Buffer& src, int64_t row, absl::Span<float> dst) override {
    return cpu_->Read(src, row, dst);
  }
  absl::Status MatMul(const Buffer& w, const Buffer& x, int64_t n, Buffer* out) override {
    return cpu_->MatMul(w, x, n, out);
  }
  absl::Status MatMulFixed(const Buffer& w, const Buffer& x, int64_t n,
                           absl::Span<int64_t> out) override {
    return cpu_->MatMulFixed(w, x, n, out);
  }
  absl::Status Embed(const Buffer& t, absl::Span<const int32_t> tokens, Buffer* out) override {
    return cpu_->Embed(t, tokens, out);
  }
  absl::Status RmsNorm(const Buffer& x, const Buffer& w, float eps, int64_t n,
                       Buffer* out) override {
    return cpu_->RmsNorm(x, w, eps, n, out);
  }
  absl::Status Rope(const RopeParams& p, absl::Span<const int32_t> pos, Buffer* x) override {
    return cpu_->Rope(p, pos, x);
  }
  absl::Status StoreRows(const Buffer& src, absl::Span<const int32_t> rows,
                         Buffer* dst) override {
    return cpu_->StoreRows(src, rows, dst);
  }
  absl::Status Attention(const AttentionShape& shape, const Buffer& q, const Buffer& k,
                         const Buffer& v, absl::Span<const int32_t> pos, Buffer* out) override {
    return cpu_->Attention(shape, q, k, v, pos, out);
  }
  absl::Status SiluMul(const Buffer& g, const Buffer& u, int64_t n, Buffer* out) override {
    return cpu_->SiluMul(g, u, n, out);
  }
  absl::Status Add(const Buffer& x, int64_t n, Buffer* acc) override {
    return cpu_->Add(x, n, acc);
  }

 private:
  std::unique_ptr<CpuBackend> cpu_;
  std::map<const Buffer*, std::string> bytes_;
};

// Every buffer of `w` with a name, in a fixed order (null ones included).
std::vector<std::pair<std::string, const Buffer*>> Buffers(const ShardWeights& w) {
  std::vector<std::pair<std::string, const Buffer*>> out = {
      {"token_embd", w.token_embd.get()},
      {"output_norm", w.output_norm.get()},
      {"output", w.output.get()}};
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    const std::pair<const char*, const Buffer*> named[] = {
        {"attn_norm", L.attn_norm.get()}, {"wq", L.wq.get()},
        {"wk", L.wk.get()},               {"wv", L.wv.get()},
        {"wo", L.wo.get()},               {"ffn_norm", L.ffn_norm.get()},
        {"w_gate", L.w_gate.get()},       {"w_up", L.w_up.get()},
        {"w_down", L.w_down.get()}};
    for (const auto& [name, b] : named) out.emplace_back(absl::StrCat(l, ".", name), b);
  }
  return out;
}

// F32 contents of `b` read back through the backend.
std::vector<float> ReadF32(RecordingBackend* backend, const Buffer& b) {
  std::vector<float> v(b.rows() * b.cols());
  EXPECT_TRUE(backend->Read(b, 0, absl::MakeSpan(v)).ok());
  return v;
}

// Same buffers, shapes, types and bytes.
void ExpectSameWeights(const ShardWeights& a, RecordingBackend* ba, const ShardWeights& b,
                       RecordingBackend* bb) {
  EXPECT_EQ(a.tied_output, b.tied_output);
  const auto xs = Buffers(a), ys = Buffers(b);
  ASSERT_EQ(xs.size(), ys.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    SCOPED_TRACE(xs[k].first);
    const Buffer* x = xs[k].second;
    const Buffer* y = ys[k].second;
    ASSERT_EQ(x == nullptr, y == nullptr);
    if (x == nullptr) continue;
    EXPECT_EQ(x->dtype(), y->dtype());
    EXPECT_EQ(x->rows(), y->rows());
    EXPECT_EQ(x->cols(), y->cols());
    EXPECT_TRUE(ba->bytes(*x) == bb->bytes(*y));
    if (x->dtype() == DType::kF32) {
      EXPECT_EQ(ReadF32(ba, *x), ReadF32(bb, *y));
    }
  }
}

std::string ModelBytes(DType type, bool tied) {
  SyntheticModelSpec s;
  s.dim = 128;
  s.ffn_dim = 256;
  s.n_layers = 2;
  s.n_heads = 4;  // head_dim 32: one q8_0/q4_0 block of wo's columns per head
  s.n_kv_heads = 2;
  s.vocab_size = 320;
  s.context_length = 64;
  s.type = type;
  s.tied_output = tied;
  s.seed = 9;
  GgufWriter writer;
  EXPECT_TRUE(AddSyntheticModel(s, &writer).ok());
  return writer.Serialize().value();
}

absl::Span<const uint8_t> Span(const std::string& s, uint64_t offset, uint64_t n) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()) + offset, n);
}

// For every node: the ranges are well formed and add up to weight_bytes, and
// weights loaded from a sparse image of only them equal the real ones. Over
// all nodes the ranges cover every tensor (for one node, exactly them).
void CheckModel(const std::string& bytes, const std::vector<int>& shares) {
  SCOPED_TRACE(absl::StrCat("shares ", absl::StrJoin(shares, ",")));
  auto file = GgufFile::FromBytes(bytes, "model.gguf").value();
  const LlamaConfig config = LlamaConfigFromGguf(*file).value();
  auto plan = ShardPlan::Create(config, shares, PlanWeightInfo::FromGguf(*file).value());
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<bool> covered(bytes.size(), false);
  for (const NodeShard& node : plan->nodes()) {
    SCOPED_TRACE(absl::StrCat("node ", node.node));
    auto ranges = ShardByteRanges(*file, config, node);
    ASSERT_TRUE(ranges.ok()) << ranges.status();
    uint64_t total = 0, prev_end = 0;
    for (const ByteRange& r : *ranges) {
      ASSERT_GT(r.size, 0u);
      ASSERT_GE(r.offset, file->data_offset());
      ASSERT_LE(r.offset + r.size, bytes.size());
      ASSERT_GT(r.offset, prev_end) << "ranges must be sorted, disjoint and not adjacent";
      prev_end = r.offset + r.size;
      total += r.size;
      for (uint64_t i = r.offset; i < prev_end; ++i) covered[i] = true;
    }
    EXPECT_EQ(total, node.weight_bytes);
    const GgufTensorInfo* embd = file->FindTensor("token_embd.weight");
    const uint64_t embd_at = file->data_offset() + embd->offset;
    bool has_embd = false;
    for (const ByteRange& r : *ranges) {
      has_embd |= r.offset <= embd_at && embd_at + embd->size_bytes <= r.offset + r.size;
    }
    EXPECT_EQ(has_embd, node.node == 0);

    auto builder = GgufImageBuilder::Create(Span(bytes, 0, file->data_offset()), bytes.size(),
                                            "sparse.gguf");
    ASSERT_TRUE(builder.ok()) << builder.status();
    for (const ByteRange& r : *ranges) {
      ASSERT_TRUE((*builder)->Write(r.offset, Span(bytes, r.offset, r.size)).ok());
    }
    auto image = (*builder)->Finish();
    ASSERT_TRUE(image.ok()) << image.status();
    RecordingBackend real_backend, sparse_backend;
    auto real = LoadShardWeights(*file, config, node, &real_backend);
    auto sparse = LoadShardWeights(**image, config, node, &sparse_backend);
    ASSERT_TRUE(real.ok()) << real.status();
    ASSERT_TRUE(sparse.ok()) << sparse.status();
    ExpectSameWeights(*real, &real_backend, *sparse, &sparse_backend);
  }
  for (const GgufTensorInfo& t : file->tensors()) {
    const uint64_t at = file->data_offset() + t.offset;
    for (uint64_t i = at; i < at + t.size_bytes; ++i) {
      ASSERT_TRUE(covered[i]) << t.name << " byte " << i - at << " is on no node";
      if (shares.size() == 1) covered[i] = false;
    }
  }
  if (shares.size() == 1) {  // nothing but tensor bytes
    for (uint64_t i = 0; i < bytes.size(); ++i) ASSERT_FALSE(covered[i]) << "byte " << i;
  }
}

class ShardByteRangesTest : public ::testing::TestWithParam<std::tuple<DType, bool>> {};

TEST_P(ShardByteRangesTest, SparseImageLoadsTheSameWeights) {
  const auto [type, tied] = GetParam();
  const std::string bytes = ModelBytes(type, tied);
  const std::vector<std::vector<int>> share_sets = {{1},    {1, 1},    {1, 1, 1},   {1, 1, 1, 1},
                                                    {1, 3}, {3, 1, 2}, {1, 2, 3, 4}};
  for (const std::vector<int>& shares : share_sets) CheckModel(bytes, shares);
}

INSTANTIATE_TEST_SUITE_P(
    Types, ShardByteRangesTest,
    ::testing::Combine(::testing::Values(DType::kF32, DType::kQ8_0, DType::kQ4_0),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<ShardByteRangesTest::ParamType>& info) {
      return absl::StrCat(DTypeName(std::get<0>(info.param)),
                          std::get<1>(info.param) ? "_tied" : "_untied");
    });

TEST(ShardByteRangesRealModel, Stories260K) {
  const std::string path = testing::ModelPath("stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "../shared/models/stories260K.gguf is absent";
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(bytes.empty());
  for (const std::vector<int>& shares : std::vector<std::vector<int>>{{1}, {1, 1}, {1, 2, 1}}) {
    CheckModel(bytes, shares);
  }
}

// The same slices are checked the same way: the same first error.
TEST(ShardByteRangesErrors, SameAsLoadShardWeights) {
  auto file = GgufFile::FromBytes(ModelBytes(DType::kQ8_0, false), "model.gguf").value();
  const LlamaConfig config = LlamaConfigFromGguf(*file).value();
  auto plan = ShardPlan::Create(config, {1, 1}, PlanWeightInfo::FromGguf(*file).value()).value();
  LlamaConfig more_layers = config;
  more_layers.n_layers += 1;
  LlamaConfig wrong_ffn = config;
  wrong_ffn.ffn_dim += 32;
  NodeShard empty_heads = plan.nodes()[1];
  empty_heads.q_head_end = empty_heads.q_head_begin;
  NodeShard off_block = plan.nodes()[1];
  off_block.ffn_begin += 1;
  const std::vector<std::pair<LlamaConfig, NodeShard>> cases = {
      {more_layers, plan.nodes()[0]}, {wrong_ffn, plan.nodes()[1]},
      {config, empty_heads}, {config, off_block}};
  for (const auto& [c, node] : cases) {
    RecordingBackend backend;
    const absl::Status load = LoadShardWeights(*file, c, node, &backend).status();
    const absl::Status ranges = ShardByteRanges(*file, c, node).status();
    EXPECT_FALSE(load.ok());
    EXPECT_EQ(load, ranges);
  }
}

}  // namespace
}  // namespace shardlm
