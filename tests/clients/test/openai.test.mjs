// The official `openai` package against `wb serve`: models, chat and completions, streaming and not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL, waitKvFree } from './helpers.mjs';

let server, client;
before(async () => {
    server = await startServer();
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'EMPTY', maxRetries: 0, timeout: 60000 });
});
after(async () => { assert.equal(await server.stop(), 0, 'wb serve exits cleanly on SIGTERM'); });

test('models.list names the served model', async () => {
    const page = await client.models.list();
    assert.deepEqual(page.data.map((m) => m.id), [MODEL]);
});

test('chat, not streamed: content, finish reason and usage', async () => {
    const r = await client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 12, temperature: 0,
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 12);
    assert.ok(r.usage.prompt_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat, streamed: deltas join to the non-streamed text; usage chunk last', async () => {
    const params = { model: MODEL, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16,
        temperature: 0 };
    const plain = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({ ...params, stream: true,
        stream_options: { include_usage: true } });
    let text = '', finish = null, usage = null, chunks = 0;
    for await (const c of stream) {
        ++chunks;
        if (c.usage) usage = c.usage;
        if (!c.choices.length) continue;
        text += c.choices[0].delta.content ?? '';
        if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
    assert.ok(chunks > 3, 'streamed in several chunks');
    assert.equal(text, plain.choices[0].message.content);
    assert.equal(finish, 'length');
    // The same counts; cached_tokens differs, the second request reuses the first one's prompt blocks.
    const counts = (u) => ({ prompt: u.prompt_tokens, completion: u.completion_tokens, total: u.total_tokens });
    assert.deepEqual(counts(usage), counts(plain.usage));
    assert.equal(typeof usage.prompt_tokens_details.cached_tokens, 'number');
});

test('max_completion_tokens is honoured', async () => {
    const r = await client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_completion_tokens: 5, temperature: 0,
    });
    assert.equal(r.usage.completion_tokens, 5);
});

test('stop strings (string and list) end the text before the stop', async () => {
    const base = { model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 40,
        temperature: 0 };
    const free = (await client.chat.completions.create(base)).choices[0].message.content;
    // Stop on a word the greedy text contains past its start.
    const word = free.trim().split(/\s+/).find((w, i) => i > 0 && w.length >= 3);
    assert.ok(word, `a stop word in: ${free}`);
    for (const stop of [word, ['zzzz-never', word]]) {
        const r = await client.chat.completions.create({ ...base, stop });
        const t = r.choices[0].message.content;
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.ok(!t.includes(word), `"${t}" excludes the stop "${word}"`);
        assert.ok(free.startsWith(t), 'the stopped text is a prefix of the free text');
    }
});

test('seed makes sampling at temperature > 0 repeatable', async () => {
    const ask = (seed) => client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 24,
        temperature: 0.9, top_p: 0.95, seed,
    }).then((r) => r.choices[0].message.content);
    const [a, b] = [await ask(1234), await ask(1234)];
    assert.equal(a, b);
    const others = await Promise.all([1, 2, 3, 4].map((s) => ask(s)));
    assert.ok(others.some((t) => t !== a), 'other seeds give other text');
});

test('sampling fields the phone agent sends are accepted', async () => {
    const r = await client.chat.completions.create({
        model: MODEL, messages: [{ role: 'system', content: 'You are a helpful agent.' },
            { role: 'user', content: [{ type: 'text', text: 'Open the settings' }] }],
        max_tokens: 8, temperature: 0, top_p: 0.85, frequency_penalty: 0.2, presence_penalty: 0.1,
    });
    assert.equal(r.usage.completion_tokens > 0, true);
});

test('penalties change what is generated', async () => {
    // Greedy over 48 tokens the tiny story model repeats words ("Lily", "the", "."): a frequency penalty must
    // steer it elsewhere, and the same penalty must give the same text again.
    const ask = (extra) => client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 48, temperature: 0,
        ...extra,
    }).then((r) => r.choices[0].message.content);
    const plain = await ask({});
    const freq = await ask({ frequency_penalty: 1.5 });
    const pres = await ask({ presence_penalty: 1.5 });
    assert.notEqual(freq, plain, 'frequency_penalty had no effect');
    assert.notEqual(pres, plain, 'presence_penalty had no effect');
    assert.equal(await ask({ frequency_penalty: 1.5 }), freq);
});

test('completions, streamed and not', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 10,
        temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.usage.completion_tokens, 10);
    const s = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 10,
        temperature: 0, stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.text ?? '';
    assert.equal(text, r.choices[0].text);
});

test('errors come back as OpenAI API errors', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user',
        content: 'x' }] }), (e) => e.status === 404 && e.code === 'model_not_found');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }),
        (e) => e.status === 400 && e.param === 'messages');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }],
        max_tokens: 1e6 }), (e) => e.status === 400 && e.code === 'context_length_exceeded');
    await waitKvFree(server.port);
});
