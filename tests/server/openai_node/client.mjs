// Drives a Tandem server with the official `openai` npm package (v4): completions and chat,
// streamed and not, an unknown model, and /v1/models. Asserts the SDK sees OpenAI-shaped
// responses and prints one JSON summary line for the C++ test to compare with the server.
// usage: node client.mjs BASE_URL API_KEY MODEL
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
const prompt = 'Once upon a time';
const greedy = { model, temperature: 0, max_tokens: 12 };

const completion = await client.completions.create({ ...greedy, prompt });
assert.equal(completion.object, 'text_completion');
assert.ok(completion.id.startsWith('cmpl-'));
assert.equal(completion.choices.length, 1);
assert.equal(completion.choices[0].finish_reason, 'length');
assert.equal(completion.usage.completion_tokens, 12);

let streamed = '';
let chunks = 0;
const stream = await client.completions.create({ ...greedy, prompt, stream: true });
for await (const chunk of stream) {
  chunks += 1;
  streamed += chunk.choices[0]?.text ?? '';
}
assert.equal(streamed, completion.choices[0].text);
assert.equal(chunks, 12);

const messages = [{ role: 'user', content: 'Tell me a story' }];
const chat = await client.chat.completions.create({ ...greedy, messages });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');

let chatText = '';
let role = null;
let usage = null;
const chatStream = await client.chat.completions.create({
  ...greedy, messages, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of chatStream) {
  if (chunk.usage) usage = chunk.usage;
  const delta = chunk.choices[0]?.delta;
  if (delta?.role) role = delta.role;
  chatText += delta?.content ?? '';
}
assert.equal(role, 'assistant');
assert.equal(chatText, chat.choices[0].message.content);
assert.equal(usage.completion_tokens, 12);
assert.equal(usage.prompt_tokens, chat.usage.prompt_tokens);

let notFound = null;
try {
  await client.completions.create({ ...greedy, model: 'no-such-model', prompt });
} catch (e) {
  notFound = e;
}
assert.ok(notFound instanceof OpenAI.NotFoundError, String(notFound));
assert.equal(notFound.status, 404);

let badRequest = null;
try {
  await client.completions.create({ ...greedy, prompt, max_tokens: 0 });
} catch (e) {
  badRequest = e;
}
assert.ok(badRequest instanceof OpenAI.BadRequestError, String(badRequest));

const models = [];
for await (const m of client.models.list()) models.push(m.id);
assert.deepEqual(models, [model]);

console.log(JSON.stringify({
  completion: completion.choices[0].text,
  chat: chat.choices[0].message.content,
  chat_prompt_tokens: chat.usage.prompt_tokens,
}));
