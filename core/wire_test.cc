#include "core/wire.h"

#include <string>

#include "gtest/gtest.h"

namespace shardlm {
namespace {

LlamaConfig Stories() {
  LlamaConfig c;
  c.architecture = "llama";
  c.context_length = 2048;
  c.dim = 64;
  c.ffn_dim = 172;
  c.n_layers = 5;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 8;
  c.rope_dim = 8;
  c.rms_eps = 1e-5;
  c.vocab_size = 512;
  return c;
}

TEST(WireTest, ConfigRoundTripsThroughBytes) {
  std::string bytes;
  ASSERT_TRUE(ToWire(Stories()).SerializeToString(&bytes));
  wire::ModelConfig parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  auto back = FromWire(parsed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToString(), Stories().ToString());
}

TEST(WireTest, RejectsInconsistentPeerConfig) {
  wire::ModelConfig r = ToWire(Stories());
  r.set_n_kv_heads(3);
  EXPECT_FALSE(FromWire(r).ok());
  r = ToWire(Stories());
  r.set_dim(-1);
  EXPECT_FALSE(FromWire(r).ok());
  EXPECT_FALSE(FromWire(wire::ModelConfig()).ok());
}

TEST(WireTest, HelloCarriesVersion) {
  wire::Hello hello;
  hello.set_version(wire::PROTOCOL_VERSION_1);
  hello.set_rank(2);
  hello.set_world_size(3);
  std::string bytes;
  ASSERT_TRUE(hello.SerializeToString(&bytes));
  wire::Hello back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_EQ(back.version(), wire::PROTOCOL_VERSION_1);
  EXPECT_EQ(back.rank(), 2);
}

}  // namespace
}  // namespace shardlm
