#include "serve/chat_template.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace shardlm::serve {
namespace {

const ChatMessage* SystemMessage(const std::vector<ChatMessage>& messages) {
  return !messages.empty() && messages[0].role == "system" ? &messages[0] : nullptr;
}

// <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...
std::string RenderLlama2(const std::vector<ChatMessage>& messages) {
  const ChatMessage* system = SystemMessage(messages);
  std::string out;
  bool system_pending = system != nullptr;
  for (size_t i = system != nullptr ? 1 : 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "assistant") {
      absl::StrAppend(&out, " ", absl::StripAsciiWhitespace(m.content), " </s>");
      continue;
    }
    absl::StrAppend(&out, "<s>[INST] ");
    if (system_pending) {
      absl::StrAppend(&out, "<<SYS>>\n", system->content, "\n<</SYS>>\n\n");
      system_pending = false;
    }
    absl::StrAppend(&out, absl::StripAsciiWhitespace(m.content), " [/INST]");
  }
  if (system_pending) {  // only a system message
    absl::StrAppend(&out, "<s>[INST] <<SYS>>\n", system->content, "\n<</SYS>>\n\n [/INST]");
  }
  return out;
}

std::string RenderLlama3(const std::vector<ChatMessage>& messages) {
  std::string out = "<|begin_of_text|>";
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&out, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n",
                    absl::StripAsciiWhitespace(m.content), "<|eot_id|>");
  }
  absl::StrAppend(&out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out;
}

std::string RenderChatML(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
  }
  absl::StrAppend(&out, "<|im_start|>assistant\n");
  return out;
}

// "System: ...\nUser: ...\nAssistant:" with the roles capitalised.
std::string RenderPlain(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const ChatMessage& m : messages) {
    std::string role = m.role;
    if (!role.empty()) role[0] = absl::ascii_toupper(role[0]);
    absl::StrAppend(&out, role, ": ", absl::StripAsciiWhitespace(m.content), "\n");
  }
  absl::StrAppend(&out, "Assistant:");
  return out;
}

}  // namespace

const char* ChatTemplateName(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kLlama2:
      return "llama2";
    case ChatTemplateKind::kLlama3:
      return "llama3";
    case ChatTemplateKind::kChatML:
      return "chatml";
    case ChatTemplateKind::kPlain:
      return "plain";
  }
  return "plain";
}

absl::StatusOr<ChatTemplateKind> ParseChatTemplateName(absl::string_view name) {
  for (ChatTemplateKind kind : {ChatTemplateKind::kLlama2, ChatTemplateKind::kLlama3,
                                ChatTemplateKind::kChatML, ChatTemplateKind::kPlain}) {
    if (name == ChatTemplateName(kind)) return kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown chat template '", name, "' (llama2, llama3, chatml or plain)"));
}

ChatTemplateKind DetectChatTemplate(absl::string_view jinja) {
  if (absl::StrContains(jinja, "<|start_header_id|>")) return ChatTemplateKind::kLlama3;
  if (absl::StrContains(jinja, "<|im_start|>")) return ChatTemplateKind::kChatML;
  if (absl::StrContains(jinja, "[INST]")) return ChatTemplateKind::kLlama2;
  return ChatTemplateKind::kPlain;
}

std::string ApplyChatTemplate(ChatTemplateKind kind, const std::vector<ChatMessage>& messages) {
  switch (kind) {
    case ChatTemplateKind::kLlama2:
      return RenderLlama2(messages);
    case ChatTemplateKind::kLlama3:
      return RenderLlama3(messages);
    case ChatTemplateKind::kChatML:
      return RenderChatML(messages);
    case ChatTemplateKind::kPlain:
      return RenderPlain(messages);
  }
  return RenderPlain(messages);
}

std::vector<std::string> ChatStopStrings(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kLlama2:
      return {"[INST]"};
    case ChatTemplateKind::kLlama3:
      return {"<|eot_id|>", "<|start_header_id|>"};
    case ChatTemplateKind::kChatML:
      return {"<|im_end|>", "<|im_start|>"};
    case ChatTemplateKind::kPlain:
      return {"\nUser:"};
  }
  return {};
}

std::vector<int32_t> EncodeWithSpecials(const Tokenizer& tokenizer, absl::string_view text) {
  std::vector<int32_t> ids = tokenizer.Encode(text, /*add_bos=*/false, /*parse_special=*/true);
  if (ids.empty() || ids.front() != tokenizer.bos_id()) ids.insert(ids.begin(), tokenizer.bos_id());
  return ids;
}

}  // namespace shardlm::serve
