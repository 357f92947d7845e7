#include "serve/chat_template.h"

#include <memory>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "core/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardlm::serve {
namespace {

// Excerpts of the templates real GGUF files carry.
constexpr char kLlama2Jinja[] =
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
    "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in "
    "messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + "
    "' [/INST]' }}{% endif %}{% endfor %}";
constexpr char kLlama3Jinja[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr char kChatMLJinja[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

const std::vector<ChatMessage> kChat = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Tell a story"}};

TEST(ChatTemplateTest, RecognisesTheTemplatesModelsCarry) {
  EXPECT_EQ(DetectChatTemplate(kLlama2Jinja), ChatTemplateKind::kLlama2);
  EXPECT_EQ(DetectChatTemplate(kLlama3Jinja), ChatTemplateKind::kLlama3);
  EXPECT_EQ(DetectChatTemplate(kChatMLJinja), ChatTemplateKind::kChatML);
  EXPECT_EQ(DetectChatTemplate(""), ChatTemplateKind::kPlain);
  EXPECT_EQ(DetectChatTemplate("{{ messages[0]['content'] }}"), ChatTemplateKind::kPlain);
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (const char* name : {"llama2", "llama3", "chatml", "plain"}) {
    absl::StatusOr<ChatTemplateKind> kind = ParseChatTemplateName(name);
    ASSERT_TRUE(kind.ok()) << name;
    EXPECT_STREQ(ChatTemplateName(*kind), name);
  }
  EXPECT_FALSE(ParseChatTemplateName("vicuna").ok());
}

TEST(ChatTemplateTest, Llama2) {
  EXPECT_EQ(ApplyChatTemplate(ChatTemplateKind::kLlama2, kChat),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
            "<s>[INST] Tell a story [/INST]");
}

TEST(ChatTemplateTest, Llama3) {
  EXPECT_EQ(ApplyChatTemplate(ChatTemplateKind::kLlama3, {{"user", "Hi"}}),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, ChatML) {
  EXPECT_EQ(ApplyChatTemplate(ChatTemplateKind::kChatML, {{"system", "S"}, {"user", "Hi"}}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Plain) {
  EXPECT_EQ(ApplyChatTemplate(ChatTemplateKind::kPlain, {{"system", "S"}, {"user", " Hi "}}),
            "System: S\nUser: Hi\nAssistant:");
  EXPECT_EQ(ChatStopStrings(ChatTemplateKind::kPlain), std::vector<std::string>{"\nUser:"});
}

TEST(ChatTemplateTest, EncodeWithSpecialsTurnsControlSpellingsIntoTokens) {
  const std::string path = testing::ModelPath("stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "stories260K.gguf not found under ../shared/models";
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const Tokenizer& t = **tok;
  std::vector<int32_t> want = {t.bos_id()};
  for (int32_t id : t.Encode("Hi", false)) want.push_back(id);
  want.push_back(t.eos_id());
  want.push_back(t.bos_id());
  for (int32_t id : t.Encode("Bye", false)) want.push_back(id);
  EXPECT_EQ(EncodeWithSpecials(t, "<s>Hi</s><s>Bye"), want);
  // Without a leading BOS spelling one is added; plain text is plain Encode.
  EXPECT_EQ(EncodeWithSpecials(t, "Once upon a time"), t.Encode("Once upon a time", true));
}

}  // namespace
}  // namespace shardlm::serve
