// Malformed and oversized requests, then many concurrent streams and clients that vanish mid-stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL, waitKvFree, metrics } from './helpers.mjs';

let server, client, url;
before(async () => {
    server = await startServer(['--max-body-mb', '16']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'EMPTY', maxRetries: 0, timeout: 120000 });
    url = `${server.baseURL}/chat/completions`;
});
after(async () => { await server.stop(); });

const post = (body, headers = {}) => fetch(url, { method: 'POST', body,
    headers: { 'Content-Type': 'application/json', ...headers } });
const errorOf = async (res) => {
    const j = await res.json();
    assert.deepEqual(Object.keys(j), ['error']);
    for (const k of ['message', 'type', 'param', 'code']) assert.ok(k in j.error, k);
    return j.error;
};
const alive = async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 3, temperature: 0 });
    assert.equal(r.usage.completion_tokens, 3);
};

test('malformed JSON: 400 invalid_json', async () => {
    for (const body of ['{', '{"model": "stories260K", "messages": [', 'null x', '']) {
        const r = await post(body);
        assert.equal(r.status, 400, body);
        assert.equal((await errorOf(r)).code, 'invalid_json');
    }
    await alive();
});

test('wrong field types: 400 naming the field', async () => {
    const r = await post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }],
        temperature: 'hot' }));
    assert.equal(r.status, 400);
    assert.equal((await errorOf(r)).param, 'temperature');
});

test('oversized body: 413 and the server keeps serving', async () => {
    const big = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(17 << 20) }] });
    let status;
    try {
        const r = await post(big);
        status = r.status;
        if (status === 413) assert.equal((await errorOf(r)).code, 'request_too_large');
    } catch (e) {
        assert.fail(`the client saw a connection error instead of 413: ${e.cause?.code ?? e.message}`);
    }
    assert.equal(status, 413);
    await alive();
});

test('a body just under the limit is read (tens of MB are fine)', async () => {
    const r = await post(JSON.stringify({ model: MODEL, max_tokens: 2,
        messages: [{ role: 'user', content: 'x' }], padding: 'y'.repeat(15 << 20) }));
    assert.equal(r.status, 200);
});

test('unknown model 404, unknown route 404', async () => {
    const r = await post(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }));
    assert.equal(r.status, 404);
    assert.equal((await errorOf(r)).code, 'model_not_found');
    const r2 = await fetch(`${server.baseURL}/embeddings`, { method: 'POST', body: '{}' });
    assert.equal(r2.status, 404);
    await errorOf(r2);
});

test('48 concurrent streams all complete with the usage they asked for', async () => {
    const one = async (i) => {
        const s = await client.chat.completions.create({ model: MODEL, stream: true, max_tokens: 24,
            temperature: 0.7, seed: i, stream_options: { include_usage: true },
            messages: [{ role: 'user', content: `Story number ${i}` }] });
        let usage, text = '';
        for await (const c of s) {
            if (c.usage) usage = c.usage;
            text += c.choices[0]?.delta?.content ?? '';
        }
        return { usage, text };
    };
    const results = await Promise.all(Array.from({ length: 48 }, (_, i) => one(i)));
    for (const r of results) assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
    // Batched with 47 others or alone, a seeded stream is the same text: some of them again, one at a time.
    for (const i of [0, 17, 31, 47]) {
        const alone = await one(i);
        assert.equal(results[i].text, alone.text, `stream ${i}`);
        // (cached_tokens may differ: the second time the prompt's prefix is in the cache)
        assert.equal(results[i].usage.prompt_tokens, alone.usage.prompt_tokens, `stream ${i}`);
        assert.equal(results[i].usage.completion_tokens, alone.usage.completion_tokens, `stream ${i}`);
    }
    const m = await waitKvFree(server.port);
    assert.equal(m.value('wb_kv_cache_blocks_used'), 0);
});

test('clients that abort mid-stream free their KV blocks', async () => {
    const controllers = Array.from({ length: 8 }, () => new AbortController());
    const runs = controllers.map(async (ac, i) => {
        const s = await client.chat.completions.create({ model: MODEL, stream: true, max_tokens: 1500,
            ignore_eos: true, messages: [{ role: 'user', content: `Long story ${i}` }] }, { signal: ac.signal });
        let n = 0;
        try {
            for await (const c of s) if (++n === 5) ac.abort();
        } catch (e) {
            if (e.name !== 'AbortError' && !/abort/i.test(e.message)) throw e;
        }
    });
    await Promise.all(runs);
    const m = await waitKvFree(server.port, 15000);
    assert.equal(m.value('wb_kv_cache_blocks_used'), 0, 'all blocks back in the pool');
    assert.ok(m.value('wb_generation_tokens_total') > 0);
    assert.match(m.text, /wb_request_success_total\{finished_reason="cancelled"\} 8/);
    await alive();
});
