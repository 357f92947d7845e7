// Drives `shardlm serve` with the official OpenAI Node client: one chat
// request and one streamed chat request (temperature 0), then prints one
// JSON line {chat, streamed, chunks, finish, usage} for the shell test.
// usage: node serve_openai_client.js NODE_MODULES_DIR BASE_URL MODEL
const path = require('path');
const [, , modules, baseURL, model] = process.argv;
const OpenAI = require(path.join(modules, 'openai'));

async function main() {
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
  const messages = [{ role: 'user', content: 'Tell me a story about a cat.' }];
  const chat = await client.chat.completions.create({
    model, messages, max_tokens: 40, temperature: 0,
  });
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 40, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      streamed += choice.delta.content || '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  console.log(JSON.stringify({
    chat: chat.choices[0].message.content, chat_usage: chat.usage, streamed, chunks, finish,
    usage,
  }));
}

main().catch((e) => { console.error(`openai client: ${e}`); process.exit(1); });
