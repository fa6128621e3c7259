// OpenAI's official client against `assistant serve`: one picture and one question, asked plainly and streamed.
// Usage: node openai_vision.mjs BASE_URL IMAGE_PATH QUESTION MAX_TOKENS
// Prints one JSON object: each way's text, finish reason and the engine's token ids (its extra "assistant" field).
import { readFileSync } from "node:fs";
import OpenAI from "openai";

const [baseURL, imagePath, question, maxTokens] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.ASSISTANT_API_KEY || "none", maxRetries: 0 });
const url = "data:image/png;base64," + readFileSync(imagePath).toString("base64");
const messages = [{ role: "user", content: [{ type: "text", text: question }, { type: "image_url", image_url: { url } }] }];

const models = await client.models.list();
const model = models.data[0].id;
const plain = await client.chat.completions.create({ model, messages, max_tokens: Number(maxTokens) });

const stream = await client.chat.completions.create({ model, messages, max_tokens: Number(maxTokens), stream: true, stream_options: { include_usage: true } });
let text = "", finish = null, ids = null, chunks = 0, usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  text += choice.delta?.content ?? "";
  if (choice.finish_reason) { finish = choice.finish_reason; ids = chunk.assistant?.token_ids ?? null; }
}
console.log(JSON.stringify({
  model,
  plain: { text: plain.choices[0].message.content, finish: plain.choices[0].finish_reason, ids: plain.assistant.token_ids, usage: plain.usage },
  streamed: { text, finish, ids, chunks, usage },
}));
