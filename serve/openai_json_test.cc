#include "serve/openai_json.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace shardlm::serve {
namespace {

using Json = nlohmann::json;

absl::Status ChatError(const std::string& body) {
  return ParseCompletionRequest(body, /*chat=*/true).status();
}

TEST(OpenAiJsonTest, ParsesAChatRequest) {
  absl::StatusOr<CompletionRequest> r = ParseCompletionRequest(
      R"({"model":"m","messages":[{"role":"system","content":"S"},
          {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
          "max_tokens":7,"temperature":0,"top_p":0.5,"seed":9,"stop":["x","y"],"stream":true,
          "stream_options":{"include_usage":true},"n":1,"unknown":{"ignored":1}})",
      /*chat=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1].role, "user");
  EXPECT_EQ(r->messages[1].content, "ab");
  EXPECT_EQ(r->max_tokens, 7);
  EXPECT_EQ(r->temperature, 0);
  EXPECT_EQ(r->top_p, 0.5);
  EXPECT_EQ(r->seed, 9u);
  EXPECT_EQ(r->stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(OpenAiJsonTest, CompletionDefaultsAndPromptForms) {
  absl::StatusOr<CompletionRequest> r = ParseCompletionRequest(R"({"prompt":["Once"]})", false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt, "Once");
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_FALSE(r->seed.has_value());
  EXPECT_EQ(r->temperature, 1.0);
  EXPECT_FALSE(r->stream);
  r = ParseCompletionRequest(R"({"prompt":"x","stop":"\n","max_completion_tokens":3})", false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stop, std::vector<std::string>{"\n"});
}

TEST(OpenAiJsonTest, RejectsMalformedRequestsWithTheField) {
  struct Case {
    const char* body;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"messages":)", "not valid JSON"},
           {R"([1,2])", "JSON object"},
           {R"({"model":"m"})", "'messages'"},
           {R"({"messages":[]})", "'messages'"},
           {R"({"messages":[{"content":"x"}]})", "'role'"},
           {R"({"messages":[{"role":"wizard","content":"x"}]})", "wizard"},
           {R"({"messages":[{"role":"user","content":5}]})", "content"},
           {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "'temperature'"},
           {R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", "'top_p'"},
           {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "'max_tokens'"},
           {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"9"})", "'max_tokens'"},
           {R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "'stop'"},
           {R"({"messages":[{"role":"user","content":"x"}],"n":2})", "'n'"},
           {R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "'stream'"},
           {R"({"messages":[{"role":"user","content":"x"}],"model":7})", "'model'"},
       }) {
    const absl::Status s = ChatError(c.body);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.body << ": " << s;
    EXPECT_NE(s.message().find(c.want), absl::string_view::npos) << c.body << ": " << s;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest("{}", false).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCompletionRequest(R"({"prompt":["a","b"]})", false).status()));
}

TEST(OpenAiJsonTest, ErrorsMapToHttpStatusAndEnvelope) {
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("x")), 413);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  const Json e = Json::parse(ErrorJson(absl::NotFoundError("no such \xff model")));
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["code"], "not_found");
  EXPECT_EQ(e["error"]["message"], "no such \xEF\xBF\xBD model");  // invalid UTF-8 replaced
  EXPECT_EQ(Json::parse(ErrorJson(503, "down"))["error"]["type"], "server_error");
}

TEST(OpenAiJsonTest, ResponsesHaveTheOpenAiShape) {
  const ResponseMeta chat{"chatcmpl-1", 100, "m", true};
  const Json whole = Json::parse(CompletionJson(chat, "Hi", "stop", {3, 2}));
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["content"], "Hi");
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(whole["usage"]["total_tokens"], 5);
  const Json first = Json::parse(ChunkJson(chat, "", nullptr, true));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const Json last = Json::parse(ChunkJson(chat, "", "length", false));
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const ResponseMeta text{"cmpl-2", 100, "m", false};
  EXPECT_EQ(Json::parse(ChunkJson(text, "a", nullptr, true))["choices"][0]["text"], "a");
  EXPECT_EQ(Json::parse(UsageChunkJson(text, {1, 2}))["usage"]["completion_tokens"], 2);
  EXPECT_EQ(Json::parse(ModelsJson("m", 0))["data"][0]["id"], "m");
}

}  // namespace
}  // namespace shardlm::serve
