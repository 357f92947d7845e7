// Hugging Face tokenizers -> GGUF tokenizer metadata: reads a model folder's
// tokenizer.json (and tokenizer_config.json when present) and returns the
// tokenizer.ggml.* keys that Tokenizer::FromGguf loads, as llama.cpp's
// converter writes them:
//  - BPE with a ByteLevel pre-tokenizer (alone, or after a Split regex in a
//    Sequence) -> model "gpt2", tokenizer.ggml.pre named after the regex
//    ("llama-bpe" for Llama 3's, "gpt2", "qwen2"); any other regex is kept in
//    tokenizer.shardlm.pre_regex under pre "shardlm-regex";
//  - BPE with SentencePiece-style text handling (normalizer Prepend "▁" +
//    Replace " " -> "▁", or a Metaspace pre-tokenizer) -> model "llama" with
//    merges, scores = -(rank of the merge that makes the token), <0xNN>
//    tokens typed byte.
// Added tokens override the vocabulary by id (special -> control, else
// user-defined); the unk token is typed unknown. BOS/EOS come from
// tokenizer_config.json's bos_token/eos_token, add_bos_token from it or,
// when absent, from a TemplateProcessing post-processor that starts with a
// special token.
#ifndef SHARDLM_CORE_HF_TOKENIZER_H_
#define SHARDLM_CORE_HF_TOKENIZER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf.h"

namespace shardlm {

// Metadata for the tokenizer in Hugging Face folder `dir`. Errors are one
// line naming the file and the field.
absl::StatusOr<std::vector<std::pair<std::string, GgufValue>>> TokenizerMetadataFromHfDir(
    const std::string& dir);

// The same from the files' contents; `config_json` empty when there is no
// tokenizer_config.json. `dir` only names the files in errors.
absl::StatusOr<std::vector<std::pair<std::string, GgufValue>>> TokenizerMetadataFromHfJson(
    const std::string& tokenizer_json, const std::string& config_json, const std::string& dir);

}  // namespace shardlm

#endif  // SHARDLM_CORE_HF_TOKENIZER_H_
