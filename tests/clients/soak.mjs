// Soak of `wb serve` on loopback (issue 13): thousands of requests of every kind at once (short answers,
// streams and non-streaming requests cancelled at random, clients that vanish, malformed and hostile requests),
// then checks that the server still answers, every KV block is back in the pool and RSS is back within 10% of
// where it was after a warm-up. Not part of CTest (it runs for minutes); docs/SECURITY.md has its figures.
//
//   node tests/clients/soak.mjs [--requests N] [--concurrency C]      (WB_BIN, WB_FIXTURES_DIR as for the tests)
import fs from 'node:fs';
import net from 'node:net';
import { startServer, MODEL, waitKvFree, metrics } from './test/helpers.mjs';

const arg = (name, def) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : def;
};
const total = arg('requests', 3000);
const concurrency = arg('concurrency', 16);

let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const rssMb = (pid) => {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(s.match(/VmRSS:\s+(\d+)/)[1]) / 1024;
};

// One raw exchange: writes `bytes`, reads until the peer closes, `ms` passes, or `until` is seen.
const raw = (port, bytes, ms = 3000, until = null, closeAfter = null) => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const done = () => { clearTimeout(t); s.destroy(); resolve(out); };
    const t = setTimeout(done, ms);
    s.on('connect', () => {
        s.write(bytes);
        if (closeAfter !== null) setTimeout(done, closeAfter);
    });
    s.on('data', (d) => { out += d.toString('latin1'); if (until && out.includes(until)) done(); });
    s.on('error', done);
    s.on('close', done);
});

const post = (path, body, extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;

async function one(port, base, counts) {
    const kind = rand();
    const chat = (n, stream, extra = {}) => JSON.stringify({ model: MODEL, max_tokens: n, stream, ignore_eos: true,
        temperature: 0.8, seed: Math.floor(rand() * 1e6), messages: [{ role: 'user', content: 'Tell a story' }], ...extra });
    let k;
    if (kind < 0.30) {  // a short answer, read in full
        k = 'ok';
        const r = await fetch(`${base}/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: chat(1 + Math.floor(rand() * 16), rand() < 0.5) });
        await r.text();
        if (r.status !== 200) throw new Error(`status ${r.status}`);
    } else if (kind < 0.45) {  // a stream the client abandons after a few chunks
        k = 'stream_cancel';
        const ac = new AbortController();
        try {
            const r = await fetch(`${base}/chat/completions`, { method: 'POST', signal: ac.signal,
                headers: { 'Content-Type': 'application/json' }, body: chat(1000, true) });
            let n = 0;
            for await (const _ of r.body) if (++n >= 1 + Math.floor(rand() * 6)) { ac.abort(); break; }
        } catch (e) { if (e.name !== 'AbortError') throw e; }
    } else if (kind < 0.60) {  // a non-streaming request whose client goes away
        k = 'plain_cancel';
        await raw(port, post('/v1/chat/completions', chat(1000, false)), 5000, null, Math.floor(rand() * 200));
    } else if (kind < 0.70) {  // malformed JSON, invalid UTF-8, wrong types
        k = 'malformed';
        const bodies = ['{', '{"messages":[{"role":"user","content":"\xff\xfe"}]}', '{"messages":"x"}',
                        '{"prompt":[1,4294967301]}', 'null', '{"messages":[{"role":"user","content":"x"}],"tools":[1]}'];
        const r = await raw(port, Buffer.from(post('/v1/chat/completions', bodies[Math.floor(rand() * bodies.length)]), 'latin1'),
                            3000, '}}');
        if (!/^HTTP\/1\.1 4\d\d/.test(r)) throw new Error(`malformed: ${r.slice(0, 80)}`);
    } else if (kind < 0.78) {  // hostile framing and paths
        k = 'hostile';
        const reqs = ['GET /%FF HTTP/1.1\r\nHost: x\r\n\r\n', 'GARBAGE\r\n\r\n',
                      'POST /v1/completions HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
                      'POST /v1/completions HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}',
                      'GET /health HTTP/1.1\r\n' + 'X-a: b\r\n'.repeat(500) + '\r\n',
                      'GET /health HTTP/1.1\r\nX-big: ' + 'a'.repeat(40000) + '\r\n\r\n'];
        const r = await raw(port, reqs[Math.floor(rand() * reqs.length)], 3000, '}}');
        if (r && !/^HTTP\/1\.1 4\d\d/.test(r)) throw new Error(`hostile: ${r.slice(0, 80)}`);
    } else if (kind < 0.88) {  // pipelined small requests
        k = 'pipelined';
        const r = await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4) +
                            'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
        if ((r.match(/HTTP\/1\.1 200/g) || []).length !== 5) throw new Error(`pipelined: ${r.slice(0, 200)}`);
    } else {  // a token-id completion
        k = 'completion';
        const r = await fetch(`${base}/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ model: MODEL, prompt: [1, 450, 2], max_tokens: 4 }) });
        await r.text();
        if (r.status !== 200) throw new Error(`completion ${r.status}`);
    }
    counts[k] = (counts[k] ?? 0) + 1;
}

async function phase(port, base, n, counts, errors) {
    let next = 0;
    const worker = async () => {
        while (next < n) {
            next++;
            try { await one(port, base, counts); } catch (e) { errors.push(String(e.message ?? e)); }
        }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
}

const server = await startServer(['--max-num-seqs', '8']);
const pid = server.proc.pid;
const counts = {}, errors = [];
const t0 = Date.now();
const warm = Math.min(300, Math.floor(total / 10));
await phase(server.port, server.baseURL, warm, counts, errors);
await waitKvFree(server.port, 20000);
const rss0 = rssMb(pid);
await phase(server.port, server.baseURL, total - warm, counts, errors);
const m = await waitKvFree(server.port, 30000);
const rss1 = rssMb(pid);
const health = await fetch(`http://127.0.0.1:${server.port}/health`);
const refused = [...m.text.matchAll(/^wb_http_refused_total\{reason="([^"]+)"\} (\d+)$/gm)].map((x) => `${x[1]}=${x[2]}`);
const secs = (Date.now() - t0) / 1000;
const code = await server.stop();
const result = {
    requests: total, concurrency, seconds: secs, kinds: counts, errors: errors.length, firstErrors: errors.slice(0, 5),
    kvBlocksUsedAtEnd: m.value('wb_kv_cache_blocks_used'), healthAtEnd: health.status,
    rssAfterWarmupMb: Math.round(rss0), rssAtEndMb: Math.round(rss1), rssChangePct: Math.round((rss1 / rss0 - 1) * 1000) / 10,
    cancelled: Number((m.text.match(/finished_reason="cancelled"\} (\d+)/) ?? [0, 0])[1]), refused, exitCode: code,
};
console.log(JSON.stringify(result, null, 2));
const ok = errors.length === 0 && result.kvBlocksUsedAtEnd === 0 && health.status === 200 &&
           Math.abs(rss1 / rss0 - 1) <= 0.10 && code === 0;
process.exit(ok ? 0 : 1);
