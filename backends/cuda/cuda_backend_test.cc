// GPU runtime test (tag "gpu"; skips without a usable device): every op of
// the cuda backend against the cpu backend, bit for bit in exact numerics
// and to float tolerance in fast numerics, over odd shapes.
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/backend.h"
#include "core/dtype.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// The same computation on the cpu and cuda backends.
class Pair {
 public:
  explicit Pair(Numerics numerics) {
    BackendOptions o;
    o.numerics = numerics;
    o.threads = 2;
    cpu_ = CreateBackend("cpu", o).value();
    auto gpu = CreateBackend("cuda", o);
    if (gpu.ok()) gpu_ = std::move(*gpu);
    else skip_reason_ = std::string(gpu.status().message());
  }
  bool ok() const { return gpu_ != nullptr; }
  const std::string& skip_reason() const { return skip_reason_; }
  Backend& cpu() { return *cpu_; }
  Backend& gpu() { return *gpu_; }

  struct Buf {
    std::unique_ptr<Buffer> c, g;
  };
  Buf Act(int64_t rows, int64_t cols, const std::vector<float>& v) {
    Buf b{cpu_->CreateActivation(rows, cols).value(), gpu_->CreateActivation(rows, cols).value()};
    if (!v.empty()) {
      EXPECT_TRUE(cpu_->Write(v, 0, b.c.get()).ok());
      EXPECT_TRUE(gpu_->Write(v, 0, b.g.get()).ok());
    }
    return b;
  }
  Buf Weight(DType t, int64_t rows, int64_t cols, const void* host) {
    return {cpu_->CreateWeight(t, rows, cols, host).value(),
            gpu_->CreateWeight(t, rows, cols, host).value()};
  }
  // Reads both and compares: bit for bit (exact) or within rel tolerance.
  void Expect(const Buf& b, bool exact, const char* what) {
    const size_t n = b.c->rows() * b.c->cols();
    std::vector<float> c(n), g(n);
    ASSERT_TRUE(cpu_->Read(*b.c, 0, absl::MakeSpan(c)).ok());
    ASSERT_TRUE(gpu_->Read(*b.g, 0, absl::MakeSpan(g)).ok()) << what;
    for (size_t i = 0; i < n; ++i) {
      if (exact) {
        ASSERT_EQ(std::memcmp(&c[i], &g[i], 4), 0) << what << " [" << i << "] cpu " << c[i]
                                                    << " cuda " << g[i];
      } else {
        ASSERT_NEAR(c[i], g[i], 1e-3f * (1.0f + std::fabs(c[i]))) << what << " [" << i << "]";
      }
    }
  }

 private:
  std::unique_ptr<Backend> cpu_, gpu_;
  std::string skip_reason_;
};

std::vector<uint8_t> Quantized(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> w = Random(rows * cols, seed, 0.5f);
  const uint64_t rb = RowBytes(t, cols).value();
  std::vector<uint8_t> out(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(QuantizeRow(t, &w[r * cols], cols, &out[r * rb]).ok());
  }
  return out;
}

class CudaBackendTest : public ::testing::TestWithParam<Numerics> {};

TEST_P(CudaBackendTest, MatMulEveryTypeAndBatch) {
  Pair p(GetParam());
  if (!p.ok()) GTEST_SKIP() << p.skip_reason();
  const bool exact = GetParam() == Numerics::kExact;
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kF32, DType::kF16, DType::kBF16}) {
    const int64_t rows = 77, cols = 32 * 45;
    const std::vector<uint8_t> w = Quantized(t, rows, cols, 11);
    auto wb = p.Weight(t, rows, cols, w.data());
    for (int64_t n : {1, 2, 3, 5, 8, 13}) {
      auto x = p.Act(n + 1, cols, Random((n + 1) * cols, n, 2.0f));
      auto out = p.Act(n, rows, {});
      ASSERT_TRUE(p.cpu().MatMul(*wb.c, *x.c, n, out.c.get()).ok());
      ASSERT_TRUE(p.gpu().MatMul(*wb.g, *x.g, n, out.g.get()).ok());
      p.Expect(out, exact, DTypeName(t).c_str());
      std::vector<int64_t> fc(n * rows), fg(n * rows);
      ASSERT_TRUE(p.cpu().MatMulFixed(*wb.c, *x.c, n, absl::MakeSpan(fc)).ok());
      ASSERT_TRUE(p.gpu().MatMulFixed(*wb.g, *x.g, n, absl::MakeSpan(fg)).ok());
      EXPECT_EQ(fc, fg) << DTypeName(t) << " n=" << n;
    }
  }
}

TEST_P(CudaBackendTest, EmbedRmsNormRopeStoreAddSilu) {
  Pair p(GetParam());
  if (!p.ok()) GTEST_SKIP() << p.skip_reason();
  const bool exact = GetParam() == Numerics::kExact;
  const int64_t vocab = 50, dim = 192, n = 3;
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kF32, DType::kF16}) {
    const std::vector<uint8_t> table = Quantized(t, vocab, dim, 3);
    auto tb = p.Weight(t, vocab, dim, table.data());
    auto x = p.Act(n, dim, {});
    const std::vector<int32_t> tokens = {7, 0, 49};
    ASSERT_TRUE(p.cpu().Embed(*tb.c, tokens, x.c.get()).ok());
    ASSERT_TRUE(p.gpu().Embed(*tb.g, tokens, x.g.get()).ok());
    p.Expect(x, true, "Embed");
  }
  auto x = p.Act(n, dim, Random(n * dim, 4, 3.0f));
  const std::vector<float> g = Random(dim, 5);
  auto gw = p.Weight(DType::kF32, 1, dim, g.data());
  auto y = p.Act(n, dim, {});
  ASSERT_TRUE(p.cpu().RmsNorm(*x.c, *gw.c, 1e-5f, n, y.c.get()).ok());
  ASSERT_TRUE(p.gpu().RmsNorm(*x.g, *gw.g, 1e-5f, n, y.g.get()).ok());
  p.Expect(y, exact, "RmsNorm");
  for (RopeLayout layout : {RopeLayout::kInterleaved, RopeLayout::kNeox}) {
    RopeParams rp;
    rp.n_heads = 3;
    rp.head_dim = 64;
    rp.rope_dim = 48;
    rp.theta = 500000.0;
    rp.layout = layout;
    const std::vector<int32_t> pos = {0, 17, 4095};
    ASSERT_TRUE(p.cpu().Rope(rp, pos, y.c.get()).ok());
    ASSERT_TRUE(p.gpu().Rope(rp, pos, y.g.get()).ok());
    p.Expect(y, true, "Rope");
  }
  auto cache = p.Act(10, dim, {});
  const std::vector<int32_t> rows = {9, 2, 5};
  ASSERT_TRUE(p.cpu().StoreRows(*y.c, rows, cache.c.get()).ok());
  ASSERT_TRUE(p.gpu().StoreRows(*y.g, rows, cache.g.get()).ok());
  p.Expect(cache, true, "StoreRows");
  ASSERT_TRUE(p.cpu().Add(*y.c, n, x.c.get()).ok());
  ASSERT_TRUE(p.gpu().Add(*y.g, n, x.g.get()).ok());
  p.Expect(x, true, "Add");
  auto s = p.Act(n, dim, {});
  ASSERT_TRUE(p.cpu().SiluMul(*x.c, *y.c, n, s.c.get()).ok());
  ASSERT_TRUE(p.gpu().SiluMul(*x.g, *y.g, n, s.g.get()).ok());
  p.Expect(s, true, "SiluMul");
}

TEST_P(CudaBackendTest, GroupedQueryAttention) {
  Pair p(GetParam());
  if (!p.ok()) GTEST_SKIP() << p.skip_reason();
  const bool exact = GetParam() == Numerics::kExact;
  for (int64_t hd : {64, 36}) {  // 36: DotF32's tail lanes
    AttentionShape s;
    s.n_heads = 6;
    s.n_kv_heads = 2;
    s.head_dim = hd;
    const int64_t ctx = 700, kv = s.n_kv_heads * hd, qd = s.n_heads * hd;
    auto k = p.Act(ctx, kv, Random(ctx * kv, 1, 2.0f));
    auto v = p.Act(ctx, kv, Random(ctx * kv, 2));
    const std::vector<int32_t> pos = {0, 1, 299, 699};
    auto q = p.Act(pos.size(), qd, Random(pos.size() * qd, 3, 2.0f));
    auto out = p.Act(pos.size(), qd, {});
    ASSERT_TRUE(p.cpu().Attention(s, *q.c, *k.c, *v.c, pos, out.c.get()).ok());
    ASSERT_TRUE(p.gpu().Attention(s, *q.g, *k.g, *v.g, pos, out.g.get()).ok());
    p.Expect(out, exact, "Attention");
    // A tensor-parallel slice: 2 query heads starting at global head 3.
    AttentionShape slice = s;
    slice.n_heads = 2;
    slice.group = 3;
    slice.q_head_offset = 3;
    slice.kv_head_offset = 1;
    slice.n_kv_heads = 1;
    auto k1 = p.Act(ctx, hd, Random(ctx * hd, 4));
    auto v1 = p.Act(ctx, hd, Random(ctx * hd, 5));
    auto q1 = p.Act(pos.size(), 2 * hd, Random(pos.size() * 2 * hd, 6));
    auto o1 = p.Act(pos.size(), 2 * hd, {});
    ASSERT_TRUE(p.cpu().Attention(slice, *q1.c, *k1.c, *v1.c, pos, o1.c.get()).ok());
    ASSERT_TRUE(p.gpu().Attention(slice, *q1.g, *k1.g, *v1.g, pos, o1.g.get()).ok());
    p.Expect(o1, exact, "Attention slice");
  }
}

TEST_P(CudaBackendTest, ErrorsAreStatuses) {
  Pair p(GetParam());
  if (!p.ok()) GTEST_SKIP() << p.skip_reason();
  auto x = p.Act(2, 64, {});
  auto cpu_only = p.cpu().CreateActivation(2, 64).value();
  EXPECT_FALSE(p.gpu().Add(*cpu_only, 2, x.g.get()).ok());
  std::vector<float> big(3 * 64);
  EXPECT_FALSE(p.gpu().Read(*x.g, 0, absl::MakeSpan(big)).ok());
  const std::vector<int32_t> bad = {70};
  const std::vector<float> table(64 * 64, 1.0f);
  auto t = p.gpu().CreateWeight(DType::kF32, 64, 64, table.data()).value();
  EXPECT_EQ(p.gpu().Embed(*t, bad, x.g.get()).code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(p.gpu().CreateWeight(DType::kQ6_K, 2, 256, table.data()).ok());
}

INSTANTIATE_TEST_SUITE_P(Numerics, CudaBackendTest,
                         ::testing::Values(Numerics::kExact, Numerics::kFast),
                         [](const auto& info) { return std::string(NumericsName(info.param)); });

}  // namespace
}  // namespace shardlm
