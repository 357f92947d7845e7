#include "core/synthetic_model.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace shardlm {
namespace {

// ---------------------------------------------------------------------------
// Random numbers: SplitMix64 seeding xoshiro256**, Box-Muller normals. Written
// out here (rather than <random> distributions) so a seed gives the same
// model with every standard library.

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr double kTwoPi = 6.283185307179586476925286766559;

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(&seed);
  }

  // xoshiro256**.
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Standard normal (Box-Muller; both values of each pair are used).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - Uniform();  // (0, 1]: log stays finite
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = kTwoPi * u2;
    spare_ = r * std::sin(angle);
    has_spare_ = true;
    return r * std::cos(angle);
  }

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// Seed of one tensor's stream: the model seed mixed with the tensor name
// (FNV-1a), so every tensor is independent of the order they are written in.
uint64_t TensorSeed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ull;
  uint64_t state = seed ^ h;
  return SplitMix64(&state);
}

// Rows of N(mean, stddev^2) values, generated and encoded as `type` one row of
// `cols` at a time.
GgufWriter::DataSource RandomRows(DType type, int64_t cols, int64_t rows, uint64_t seed,
                                  double mean, double stddev) {
  return [=](const std::function<void(const void*, size_t)>& sink) -> absl::Status {
    ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes(type, cols));
    Rng rng(seed);
    std::vector<float> row(cols);
    std::string encoded(row_bytes, '\0');
    for (int64_t r = 0; r < rows; ++r) {
      for (float& x : row) x = static_cast<float>(mean + stddev * rng.Normal());
      RETURN_IF_ERROR(QuantizeRow(type, row.data(), cols, encoded.data()));
      sink(encoded.data(), encoded.size());
    }
    return absl::OkStatus();
  };
}

// ---------------------------------------------------------------------------
// Vocabulary.

// Normal pieces in the order they get added (after "▁" and the letters).
// Prefixes a piece needs are added just before it.
constexpr const char* kCommonPieces[] = {
    "th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of",
    "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le",
    "ve", "co", "me", "de", "hi", "ri", "ro", "ic", "ne", "ea", "ra", "ce", "li", "ch", "ll",
    "be", "ma", "si", "om", "ur", "ing", "ion", "ent", "ter", "and", "the", "ers", "ly",
    "ment", "tion", "ous", "ness", "able", "▁the", "▁and", "▁to", "▁of", "▁in", "▁is",
    "▁it", "▁that", "▁was", "▁he", "▁for", "▁on", "▁are", "▁with", "▁as", "▁his", "▁they",
    "▁be", "▁at", "▁one", "▁have", "▁this", "▁from", "▁or", "▁had", "▁by", "▁but", "▁not",
    "▁what", "▁all", "▁were", "▁we", "▁when", "▁your", "▁can", "▁said", "▁there", "▁use",
    "▁an", "▁each", "▁which", "▁she", "▁do", "▁how", "▁their", "▁if", "▁will", "▁up",
    "▁other", "▁about", "▁out", "▁many", "▁then", "▁them", "▁so", "▁some", "▁her",
    "▁would", "▁make", "▁like", "▁him", "▁into", "▁time", "▁has", "▁look", "▁two", "▁more",
    "▁go", "▁see", "▁no", "▁way", "▁could", "▁my", "▁than", "▁first", "▁been", "▁who",
    "▁its", "▁now", "▁day", "▁did", "▁get", "▁come", "▁made", "▁may", "▁part", "▁once",
    "▁upon", "▁little", "▁girl", "▁boy", "▁named", "▁play", "▁happy", "▁big", "▁saw"};

constexpr char kSpace[] = "\xE2\x96\x81";  // "▁" (U+2581)

// Unique normal pieces, each added after its one-character-shorter prefix.
class PieceTable {
 public:
  explicit PieceTable(int64_t capacity) : capacity_(capacity) {}
  bool full() const { return static_cast<int64_t>(pieces_.size()) >= capacity_; }
  std::vector<std::string>& pieces() { return pieces_; }

  void Add(const std::string& piece) {
    if (full() || seen_.contains(piece)) return;
    size_t cut = piece.size() - 1;  // start of the last UTF-8 character
    while (cut > 0 && (static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) --cut;
    if (cut > 0) {
      Add(piece.substr(0, cut));
      if (full()) return;
    }
    seen_.insert(piece);
    pieces_.push_back(piece);
  }

 private:
  int64_t capacity_;
  std::vector<std::string> pieces_;
  absl::flat_hash_set<std::string> seen_;
};

// Fills `table`: single characters, the common pieces, then every lower-case
// word of 2, 3, ... letters, bare and with a leading "▁".
absl::Status FillPieces(PieceTable* table) {
  table->Add(kSpace);
  for (char c = 'a'; c <= 'z'; ++c) table->Add(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) table->Add(kSpace + std::string(1, c));
  for (char c = 'A'; c <= 'Z'; ++c) table->Add(std::string(1, c));
  for (char c = 'A'; c <= 'Z'; ++c) table->Add(kSpace + std::string(1, c));
  for (char c = '0'; c <= '9'; ++c) table->Add(std::string(1, c));
  for (char c : std::string(".,!?'\"-:;()")) table->Add(std::string(1, c));
  for (const char* piece : kCommonPieces) table->Add(piece);
  for (int len = 2; len <= 6 && !table->full(); ++len) {
    std::string word(len, 'a');
    while (!table->full()) {
      table->Add(word);
      table->Add(kSpace + word);
      int i = len - 1;  // next word in lexicographic order
      while (i >= 0 && word[i] == 'z') word[i--] = 'a';
      if (i < 0) break;
      ++word[i];
    }
  }
  if (!table->full()) return absl::InternalError("synthetic vocabulary generator ran dry");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Spec validation.

absl::Status CheckRange(const char* field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("synthetic model: ", field, " is ", value, ", must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("synthetic model: ", what));
}

int64_t EffectiveRopeDim(const SyntheticModelSpec& spec) {
  return spec.rope_dim == 0 ? spec.dim / spec.n_heads : spec.rope_dim;
}

// llama.cpp's general.file_type (llama_ftype) for a model mostly of `type`.
uint32_t FileType(DType type) {
  switch (type) {
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 7;
    case DType::kBF16: return 32;
    default: return 0;  // all f32
  }
}

// ---------------------------------------------------------------------------
// Writer contents.

void AddMetadata(const SyntheticModelSpec& spec, const SyntheticVocab& vocab, GgufWriter* w) {
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w->AddString("general.architecture", "llama");
  w->AddString("general.name", spec.name);
  w->AddUint32("llama.context_length", u32(spec.context_length));
  w->AddUint32("llama.embedding_length", u32(spec.dim));
  w->AddUint32("llama.block_count", u32(spec.n_layers));
  w->AddUint32("llama.feed_forward_length", u32(spec.ffn_dim));
  w->AddUint32("llama.rope.dimension_count", u32(EffectiveRopeDim(spec)));
  w->AddUint32("llama.attention.head_count", u32(spec.n_heads));
  w->AddUint32("llama.attention.head_count_kv", u32(spec.n_kv_heads));
  w->AddFloat32("llama.attention.layer_norm_rms_epsilon", spec.rms_eps);
  w->AddFloat32("llama.rope.freq_base", spec.rope_theta);
  w->AddUint32("general.file_type", FileType(spec.type));
  w->AddUint32("llama.vocab_size", u32(spec.vocab_size));
  w->AddString("tokenizer.ggml.model", "llama");
  w->AddStringArray("tokenizer.ggml.tokens", vocab.tokens);
  w->AddFloat32Array("tokenizer.ggml.scores", vocab.scores);
  w->AddInt32Array("tokenizer.ggml.token_type", vocab.token_types);
  w->AddUint32("tokenizer.ggml.bos_token_id", 1);
  w->AddUint32("tokenizer.ggml.eos_token_id", 2);
  w->AddUint32("tokenizer.ggml.unknown_token_id", 0);
  if (spec.type == DType::kQ8_0 || spec.type == DType::kQ4_0) {
    w->AddUint32("general.quantization_version", 2);
  }
}

// `bytes` zero bytes, 1 MiB at a time.
GgufWriter::DataSource ZeroBytes(uint64_t bytes) {
  return [=](const std::function<void(const void*, size_t)>& sink) -> absl::Status {
    static const std::vector<uint8_t>* const kZeros = new std::vector<uint8_t>(1 << 20);
    for (uint64_t done = 0; done < bytes;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes - done, kZeros->size()));
      sink(kZeros->data(), n);
      done += n;
    }
    return absl::OkStatus();
  };
}

// A {cols, rows} matrix with N(0, stddev^2) entries (zeros with zero_weights).
absl::Status AddMatrix(const SyntheticModelSpec& spec, const std::string& name, int64_t cols,
                       int64_t rows, double stddev, GgufWriter* w) {
  const DType type = SyntheticMatrixType(spec, cols);
  if (spec.zero_weights) {
    ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes(type, cols));
    return w->AddTensor(name, {cols, rows}, type, ZeroBytes(row_bytes * rows));
  }
  return w->AddTensor(name, {cols, rows}, type,
                      RandomRows(type, cols, rows, TensorSeed(spec.seed, name), 0.0, stddev));
}

// An f32 RMSNorm weight of `dim` values near 1.
absl::Status AddNorm(const SyntheticModelSpec& spec, const std::string& name, GgufWriter* w) {
  return w->AddTensor(name, {spec.dim}, DType::kF32,
                      RandomRows(DType::kF32, spec.dim, 1, TensorSeed(spec.seed, name), 1.0, 0.1));
}

// A matrix of `cols`-long rows scaled so each output has about unit variance.
double MatrixScale(int64_t cols) { return 1.0 / std::sqrt(static_cast<double>(cols)); }

absl::Status AddLayer(const SyntheticModelSpec& spec, int64_t layer, GgufWriter* w) {
  const int64_t d = spec.dim, f = spec.ffn_dim;
  const int64_t hd = spec.dim / spec.n_heads;
  const int64_t q = spec.n_heads * hd, kv = spec.n_kv_heads * hd;
  const std::string p = absl::StrCat("blk.", layer, ".");
  RETURN_IF_ERROR(AddNorm(spec, p + "attn_norm.weight", w));
  RETURN_IF_ERROR(AddMatrix(spec, p + "attn_q.weight", d, q, MatrixScale(d), w));
  RETURN_IF_ERROR(AddMatrix(spec, p + "attn_k.weight", d, kv, MatrixScale(d), w));
  RETURN_IF_ERROR(AddMatrix(spec, p + "attn_v.weight", d, kv, MatrixScale(d), w));
  RETURN_IF_ERROR(AddMatrix(spec, p + "attn_output.weight", q, d, MatrixScale(q), w));
  RETURN_IF_ERROR(AddNorm(spec, p + "ffn_norm.weight", w));
  RETURN_IF_ERROR(AddMatrix(spec, p + "ffn_gate.weight", d, f, MatrixScale(d), w));
  RETURN_IF_ERROR(AddMatrix(spec, p + "ffn_up.weight", d, f, MatrixScale(d), w));
  return AddMatrix(spec, p + "ffn_down.weight", f, d, MatrixScale(f), w);
}

}  // namespace

absl::Status ValidateSyntheticModelSpec(const SyntheticModelSpec& spec) {
  constexpr int64_t kMaxWidth = int64_t{1} << 20;
  RETURN_IF_ERROR(CheckRange("dim", spec.dim, 1, kMaxWidth));
  RETURN_IF_ERROR(CheckRange("ffn_dim", spec.ffn_dim, 1, kMaxWidth));
  RETURN_IF_ERROR(CheckRange("n_layers", spec.n_layers, 1, 4096));
  RETURN_IF_ERROR(CheckRange("n_heads", spec.n_heads, 1, spec.dim));
  RETURN_IF_ERROR(CheckRange("n_kv_heads", spec.n_kv_heads, 1, spec.n_heads));
  RETURN_IF_ERROR(
      CheckRange("vocab_size", spec.vocab_size, kMinSyntheticVocabSize, kMaxSyntheticVocabSize));
  RETURN_IF_ERROR(CheckRange("context_length", spec.context_length, 1, int64_t{1} << 30));
  if (spec.dim % spec.n_heads != 0) {
    return Invalid(absl::StrCat("dim ", spec.dim, " is not divisible by n_heads ", spec.n_heads));
  }
  if (spec.n_heads % spec.n_kv_heads != 0) {
    return Invalid(absl::StrCat("n_heads ", spec.n_heads, " is not a multiple of n_kv_heads ",
                                spec.n_kv_heads));
  }
  const int64_t head_dim = spec.dim / spec.n_heads;
  const int64_t rope_dim = EffectiveRopeDim(spec);
  if (spec.rope_dim < 0 || rope_dim > head_dim || rope_dim % 2 != 0) {
    return Invalid(absl::StrCat("rope_dim ", rope_dim, " must be even, positive and at most the ",
                                "head size ", head_dim));
  }
  if (!std::isfinite(spec.rope_theta) || !(spec.rope_theta > 0)) {
    return Invalid(absl::StrCat("rope_theta ", spec.rope_theta, " must be positive"));
  }
  if (!(spec.rms_eps > 0) || !(spec.rms_eps < 1)) {
    return Invalid(absl::StrCat("rms_eps ", spec.rms_eps, " must be in (0, 1)"));
  }
  switch (spec.type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;
    default:
      return Invalid(absl::StrCat("type ", DTypeName(spec.type),
                                  " is not supported (f32, f16, bf16, q8_0 or q4_0)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SyntheticVocab> MakeSyntheticVocab(int64_t vocab_size) {
  RETURN_IF_ERROR(
      CheckRange("vocab_size", vocab_size, kMinSyntheticVocabSize, kMaxSyntheticVocabSize));
  SyntheticVocab v;
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.token_types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(absl::StrFormat("<0x%02X>", b));
    v.token_types.push_back(6);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  PieceTable table(vocab_size - static_cast<int64_t>(v.tokens.size()));
  RETURN_IF_ERROR(FillPieces(&table));
  for (size_t k = 0; k < table.pieces().size(); ++k) {
    v.tokens.push_back(std::move(table.pieces()[k]));
    v.scores.push_back(-static_cast<float>(k));
    v.token_types.push_back(1);
  }
  return v;
}

DType SyntheticMatrixType(const SyntheticModelSpec& spec, int64_t row_len) {
  return row_len % Info(spec.type).block_size == 0 ? spec.type : DType::kF32;
}

absl::Status AddSyntheticModel(const SyntheticModelSpec& spec, GgufWriter* writer) {
  RETURN_IF_ERROR(ValidateSyntheticModelSpec(spec));
  ASSIGN_OR_RETURN(const SyntheticVocab vocab, MakeSyntheticVocab(spec.vocab_size));
  AddMetadata(spec, vocab, writer);
  // Embeddings N(0, 0.25): the residual stream starts at a modest scale.
  RETURN_IF_ERROR(AddMatrix(spec, "token_embd.weight", spec.dim, spec.vocab_size, 0.5, writer));
  RETURN_IF_ERROR(AddNorm(spec, "output_norm.weight", writer));
  if (!spec.tied_output) {
    RETURN_IF_ERROR(AddMatrix(spec, "output.weight", spec.dim, spec.vocab_size,
                              MatrixScale(spec.dim), writer));
  }
  for (int64_t l = 0; l < spec.n_layers; ++l) RETURN_IF_ERROR(AddLayer(spec, l, writer));
  return absl::OkStatus();
}

absl::Status WriteSyntheticModel(const SyntheticModelSpec& spec, const std::string& path,
                                 const SyntheticProgress& progress) {
  GgufWriter writer;
  RETURN_IF_ERROR(AddSyntheticModel(spec, &writer));
  const std::string partial = path + ".partial";
  absl::Status status = writer.Write(partial, progress);
  if (status.ok() && std::rename(partial.c_str(), path.c_str()) != 0) {
    status = absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot rename ", partial, ": ", std::strerror(errno)));
  }
  if (!status.ok()) std::remove(partial.c_str());
  return status;
}

}  // namespace shardlm
