// Synthetic llama-architecture GGUF models: real tensor names, shapes and
// metadata (as llama.cpp writes them), a real SentencePiece-style tokenizer
// table, and seeded random weights scaled so activations stay finite. Used by
// `shardlm make-model`, benchmarks and tests. Weights are generated and
// encoded one row at a time while the file is written, so models of any size
// (8B shapes included) never need a whole tensor in memory.
#ifndef SHARDLM_CORE_SYNTHETIC_MODEL_H_
#define SHARDLM_CORE_SYNTHETIC_MODEL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/gguf_writer.h"

namespace shardlm {

// Shape and contents of a synthetic llama model.
struct SyntheticModelSpec {
  int64_t dim = 0;         // llama.embedding_length
  int64_t ffn_dim = 0;     // llama.feed_forward_length
  int64_t n_layers = 0;    // llama.block_count
  int64_t n_heads = 0;     // llama.attention.head_count
  int64_t n_kv_heads = 0;  // llama.attention.head_count_kv (divides n_heads)
  int64_t vocab_size = 0;  // >= kMinSyntheticVocabSize
  int64_t context_length = 512;
  int64_t rope_dim = 0;  // rotated dims per head; 0: the head size
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  // Type of the 2-D matrices (f32, f16, bf16, q8_0, q4_0). A matrix whose
  // row length is not a multiple of the type's block size stays f32; norm
  // vectors are always f32.
  DType type = DType::kF32;
  bool tied_output = false;  // no output.weight: logits use token_embd
  uint64_t seed = 1;         // same spec and seed: byte-identical file
  // Every matrix all zeros (norms stay random): a model of the right shapes
  // for planning and inspection, which WriteSyntheticModel writes as a
  // sparse file.
  bool zero_weights = false;
  std::string name = "synthetic";  // general.name
};

// Smallest vocabulary: <unk>, <s>, </s>, the 256 byte tokens, "▁" and the
// 26 lower-case letters.
inline constexpr int64_t kMinSyntheticVocabSize = 3 + 256 + 1 + 26;
// Largest vocabulary (token ids stay well inside int32 and float scores).
inline constexpr int64_t kMaxSyntheticVocabSize = int64_t{1} << 21;

// InvalidArgument naming the offending field when `spec` does not describe a
// loadable llama model (non-positive sizes, dim not divisible by n_heads,
// n_heads not a multiple of n_kv_heads, odd or oversized rope_dim, vocab out
// of range, a type that cannot be encoded, ...).
absl::Status ValidateSyntheticModelSpec(const SyntheticModelSpec& spec);

// A tokenizer table in tokenizer.ggml.* form.
struct SyntheticVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> token_types;  // TokenType values (1 normal, 2 unk, 3 control, 6 byte)
};

// The deterministic vocabulary of `vocab_size` unique pieces: id 0 "<unk>",
// 1 "<s>", 2 "</s>", then "<0x00>".."<0xFF>", then normal pieces ("▁", the
// letters, "▁the", "er", ...) with strictly decreasing scores. Every normal
// piece longer than one character is its prefix (one character shorter)
// plus one character, both in the table, so BPE merges can build it.
absl::StatusOr<SyntheticVocab> MakeSyntheticVocab(int64_t vocab_size);

// The GGUF type a matrix of row length `row_len` gets under `spec.type`.
DType SyntheticMatrixType(const SyntheticModelSpec& spec, int64_t row_len);

// Adds the model's metadata and tensors (with lazily generated data) to an
// empty `writer`. Validates `spec` first.
absl::Status AddSyntheticModel(const SyntheticModelSpec& spec, GgufWriter* writer);

// Called with (bytes of tensor data written, total) after each tensor.
using SyntheticProgress = std::function<void(uint64_t done, uint64_t total)>;

// Validates `spec` and writes the model to `path` (through `path`.partial,
// renamed on success, so a failed write never leaves a truncated model).
absl::Status WriteSyntheticModel(const SyntheticModelSpec& spec, const std::string& path,
                                 const SyntheticProgress& progress = nullptr);

}  // namespace shardlm

#endif  // SHARDLM_CORE_SYNTHETIC_MODEL_H_
