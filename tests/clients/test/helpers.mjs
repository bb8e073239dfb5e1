// Shared by the client tests: start `wb serve` on a free loopback port, make screenshots, shim tiktoken.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');

// WB_BIN from CTest; else the most recently built wb under build*/ (developers run `npm test` by hand).
export function wbBinary() {
    if (process.env.WB_BIN) return process.env.WB_BIN;
    const candidates = fs.readdirSync(repoRoot)
        .filter((d) => d.startsWith('build'))
        .map((d) => path.join(repoRoot, d, 'engine', 'wb'))
        .filter((p) => fs.existsSync(p))
        .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
    if (!candidates.length) throw new Error('no wb binary: set WB_BIN or build one under build*/');
    return candidates[0];
}

export function fixtureModel() {
    const dir = process.env.WB_FIXTURES_DIR || path.join(repoRoot, '..', 'shared', 'fixtures');
    return path.join(dir, 'models', 'stories260K', 'stories260K.gguf');
}

export const MODEL = 'stories260K';

/// A tiny random-weight GLM-4.1V folder written by wb-make-model (built next to wb) into a temporary folder.
export function makeTinyGlm41v() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-glm41v-'));
    const maker = path.join(path.dirname(wbBinary()), 'wb-make-model');
    const r = spawnSync(maker, ['--arch', 'glm4v', '--out', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wb-make-model failed: ${r.stderr || r.error}`);
    return dir;
}

/// Starts the server with --port 0 and reads the bound port from its stdout line.
export async function startServer(extraArgs = [], model = fixtureModel()) {
    const args = ['serve', '-m', model, '--port', '0', '--threads', '1', ...extraArgs];
    const proc = spawn(wbBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    const port = await new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('wb serve did not start:\n' + stderr)), 30000);
        proc.stdout.on('data', (d) => {
            out += d;
            const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
            if (m) { clearTimeout(timer); resolve(Number(m[1])); }
        });
        proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`wb serve exited (${code}):\n${stderr}`)); });
    });
    const baseURL = `http://127.0.0.1:${port}/v1`;
    return {
        port,
        baseURL,
        proc,
        stderr: () => stderr,
        async stop() {
            if (proc.exitCode !== null) return proc.exitCode;
            const exited = new Promise((r) => proc.on('exit', (code, sig) => r(code ?? sig)));
            proc.kill('SIGTERM');
            return exited;
        },
    };
}

export async function metrics(port) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (name) => {
        const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
        return m ? Number(m[1]) : undefined;
    };
    return { text, value };
}

/// Polls until no KV block is in use (streams end asynchronously after a client goes away).
export async function waitKvFree(port, ms = 10000) {
    const end = Date.now() + ms;
    for (;;) {
        const m = await metrics(port);
        if (m.value('wb_kv_cache_blocks_used') === 0 && m.value('wb_num_requests_running') === 0) return m;
        if (Date.now() > end) return m;
        await new Promise((r) => setTimeout(r, 100));
    }
}

// A truecolor PNG: gradient plus noise, so it compresses like a real screenshot's photos (several MB).
export function makePng(width = 1080, height = 2400, seed = 1) {
    const row = 1 + width * 3;
    const raw = Buffer.alloc(row * height);
    let s = seed >>> 0;
    for (let y = 0; y < height; ++y) {
        raw[y * row] = 0;  // filter: none
        for (let x = 0; x < width * 3; ++x) {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            raw[y * row + 1 + x] = ((x >> 2) + (y >> 3) + (s >>> 26)) & 0xff;
        }
    }
    const crcTable = new Int32Array(256).map((_, n) => {
        let c = n;
        for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        return c;
    });
    const crc32 = (buf) => {
        let c = -1;
        for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
        return (c ^ -1) >>> 0;
    };
    const chunk = (type, data) => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(data.length);
        const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
        const crc = Buffer.alloc(4);
        crc.writeUInt32BE(crc32(td));
        return Buffer.concat([len, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8;  // bit depth
    ihdr[9] = 2;  // truecolor
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk('IHDR', ihdr),
        chunk('IDAT', zlib.deflateSync(raw, { level: 1 })),
        chunk('IEND', Buffer.alloc(0)),
    ]);
}

export const pngDataUrl = (png) => 'data:image/png;base64,' + png.toString('base64');

/// LangChain fetches tiktoken encodings from tiktoken.pages.dev; js-tiktoken ships the same ranks. Serving them
/// from a fetch shim makes an offline machine behave exactly like an online one (no minutes of retries).
export async function installTiktokenShim() {
    const realFetch = globalThis.fetch;
    const served = [];
    globalThis.fetch = async (input, init) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        const m = url.match(/^https:\/\/tiktoken\.pages\.dev\/js\/([a-z0-9_]+)\.json$/);
        if (!m) return realFetch(input, init);
        const ranks = (await import(`js-tiktoken/ranks/${m[1]}`)).default;
        served.push(m[1]);
        return new Response(JSON.stringify(ranks), { status: 200, headers: { 'Content-Type': 'application/json' } });
    };
    return { served, restore() { globalThis.fetch = realFetch; } };
}
