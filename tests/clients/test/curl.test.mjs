// curl, the other client every deployment guide uses, through child_process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, MODEL } from './helpers.mjs';

const run = promisify(execFile);
let server, keyed;
before(async () => {
    server = await startServer();
    keyed = await startServer(['--api-key', 'sekret']);
});
after(async () => { await server.stop(); await keyed.stop(); });

const curl = (args) => run('curl', ['-sS', '--max-time', '60', ...args], { maxBuffer: 1 << 26 })
    .then((r) => r.stdout);
const chatBody = (extra = {}) => JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Once upon' }],
    max_tokens: 8, temperature: 0, ...extra });

test('curl: non-streamed chat completion', async () => {
    const out = JSON.parse(await curl(['-H', 'Content-Type: application/json', '-d', chatBody(),
        `${server.baseURL}/chat/completions`]));
    assert.equal(out.object, 'chat.completion');
    assert.equal(out.usage.completion_tokens, 8);
});

test('curl -N: SSE stream ends with [DONE]', async () => {
    const out = await curl(['-N', '-H', 'Content-Type: application/json', '-d', chatBody({ stream: true }),
        `${server.baseURL}/chat/completions`]);
    const events = out.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
});

test('curl: status codes of health, metrics, unknown route', async () => {
    const code = async (url, extra = []) =>
        (await curl(['-o', '/dev/null', '-w', '%{http_code}', ...extra, url])).trim();
    assert.equal(await code(`http://127.0.0.1:${server.port}/health`), '200');
    assert.equal(await code(`http://127.0.0.1:${server.port}/metrics`), '200');
    assert.equal(await code(`${server.baseURL}/nothing-here`), '404');
    const body = JSON.parse(await curl([`${server.baseURL}/nothing-here`]));
    assert.equal(typeof body.error.message, 'string');
    assert.ok('type' in body.error && 'param' in body.error && 'code' in body.error);
});

test('curl: API key is required when configured', async () => {
    const code = async (extra) => (await curl(['-o', '/dev/null', '-w', '%{http_code}', ...extra,
        `${keyed.baseURL}/models`])).trim();
    assert.equal(await code([]), '401');
    assert.equal(await code(['-H', 'Authorization: Bearer wrong']), '401');
    assert.equal(await code(['-H', 'Authorization: Bearer sekret']), '200');
    // Health stays open for probes.
    assert.equal((await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${keyed.port}/health`]))
        .trim(), '200');
});

test('curl: /metrics is Prometheus text with the documented series', async () => {
    const text = await curl([`http://127.0.0.1:${server.port}/metrics`]);
    for (const name of ['wb_http_requests_total', 'wb_prompt_tokens_total', 'wb_generation_tokens_total',
        'wb_time_to_first_token_seconds_bucket', 'wb_inter_token_latency_seconds_bucket',
        'wb_kv_cache_blocks_used', 'wb_kv_cache_blocks_total', 'wb_num_requests_running',
        'wb_num_requests_waiting'])
        assert.match(text, new RegExp(`^${name}`, 'm'), name);
    assert.match(text, /^# TYPE wb_time_to_first_token_seconds histogram$/m);
});
