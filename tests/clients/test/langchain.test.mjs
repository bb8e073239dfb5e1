// LangChain's ChatOpenAI as the article uses it: streaming, extra body {enable_thinking, return_reasoning}.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, MODEL, installTiktokenShim } from './helpers.mjs';

let server, shim, ChatOpenAI;
before(async () => {
    shim = await installTiktokenShim();
    ({ ChatOpenAI } = await import('@langchain/openai'));
    server = await startServer();
});
after(async () => {
    shim.restore();
    await server.stop();
});

const llm = () => new ChatOpenAI({
    model: MODEL, temperature: 0.5, maxTokens: 24, streaming: true, maxRetries: 0,
    configuration: { baseURL: server.baseURL }, apiKey: 'EMPTY',
    modelKwargs: { enable_thinking: true, return_reasoning: true },
});

test('invoke() with streaming returns the whole message', async () => {
    const t0 = Date.now();
    const msg = await llm().invoke('你是谁？');
    assert.equal(typeof msg.content, 'string');
    assert.ok(msg.content.length > 0);
    // invoke() with streaming counts tokens with tiktoken: served from js-tiktoken, not fetched for minutes.
    assert.ok(Date.now() - t0 < 20000, 'no tiktoken download retries');
    assert.ok(shim.served.length > 0, 'LangChain asked for a tiktoken encoding and the shim served it');
});

test('stream() yields chunks whose concatenation is the text', async () => {
    // Greedy, so the same request answered whole must give the same text: a lost, doubled or reordered chunk fails.
    const greedy = (streaming) => new ChatOpenAI({
        model: MODEL, temperature: 0, maxTokens: 24, streaming, maxRetries: 0,
        configuration: { baseURL: server.baseURL }, apiKey: 'EMPTY',
    });
    let text = '', n = 0;
    for await (const chunk of await greedy(true).stream('Once upon a time')) {
        text += chunk.content;
        ++n;
    }
    assert.ok(n > 2);
    assert.ok(text.length > 0);
    const whole = await greedy(false).invoke('Once upon a time');
    assert.equal(text, whole.content);
});

test('extra body through ChatOpenAI reaches the server (chat_template_kwargs too)', async () => {
    const m = new ChatOpenAI({
        model: MODEL, temperature: 0, maxTokens: 8, streaming: false, maxRetries: 0,
        configuration: { baseURL: server.baseURL }, apiKey: 'EMPTY',
        modelKwargs: { chat_template_kwargs: { enable_thinking: false }, return_reasoning: true },
    });
    const msg = await m.invoke('Hello');
    assert.ok(msg.content.length > 0);
    // A wrongly typed extra field must be rejected, which proves the fields are read, not dropped.
    const bad = new ChatOpenAI({
        model: MODEL, maxTokens: 8, maxRetries: 0, configuration: { baseURL: server.baseURL }, apiKey: 'EMPTY',
        modelKwargs: { enable_thinking: 'yes' },
    });
    await assert.rejects(bad.invoke('Hello'), (e) => /enable_thinking/.test(e.message));
});
