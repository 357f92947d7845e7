// Chat templates: how a list of chat messages becomes one prompt string.
// The kind is recognised from the model's `tokenizer.chat_template` (Jinja
// text in GGUF metadata) by the marker tokens it uses, or chosen by name
// with --chat-template. Rendered prompts spell special tokens ("<s>",
// "<|im_start|>") as text; EncodeWithSpecials turns the spellings that are
// control tokens of the vocabulary into their ids.
#ifndef SHARDLM_SERVE_CHAT_TEMPLATE_H_
#define SHARDLM_SERVE_CHAT_TEMPLATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tokenizer.h"

namespace shardlm::serve {

// The chat formats the server knows.
enum class ChatTemplateKind { kLlama2, kLlama3, kChatML, kPlain };

// One message of a chat: role ("system", "user", "assistant") and text.
struct ChatMessage {
  std::string role;
  std::string content;
};

// "llama2", "llama3", "chatml" or "plain".
const char* ChatTemplateName(ChatTemplateKind kind);

// The kind named `name` (as ChatTemplateName spells it); InvalidArgument
// listing the names otherwise.
absl::StatusOr<ChatTemplateKind> ParseChatTemplateName(absl::string_view name);

// The kind a model's Jinja chat template renders, from the markers it
// contains; kPlain when `jinja` is empty or has none of them.
ChatTemplateKind DetectChatTemplate(absl::string_view jinja);

// The prompt for `messages` in format `kind`, ending where the assistant's
// reply begins. Starts with the BOS spelling where the format has one.
std::string ApplyChatTemplate(ChatTemplateKind kind, const std::vector<ChatMessage>& messages);

// Strings that end an assistant turn in format `kind` (added to a chat
// request's own `stop` list); the model's EOS token ends every turn anyway.
std::vector<std::string> ChatStopStrings(ChatTemplateKind kind);

// Token ids of `text` where every spelling of a control token of
// `tokenizer` (for example "<s>") becomes that token and the text between
// them is encoded as plain text. Prepends BOS unless `text` starts with it.
std::vector<int32_t> EncodeWithSpecials(const Tokenizer& tokenizer, absl::string_view text);

}  // namespace shardlm::serve

#endif  // SHARDLM_SERVE_CHAT_TEMPLATE_H_
