// A serving yardstick for `wb bench --url`: llama.cpp (the prebuilt CPU libraries node-llama-cpp ships, the same
// ones llama-bench links) behind a minimal OpenAI-compatible /v1/completions, with N parallel sequences batched by
// llama.cpp itself (node-llama-cpp evaluates every sequence's pending tokens in one llama_decode per step, as
// llama-server's slots do). llama-server itself is not shipped in the npm package, and building it needs its web UI
// and multimodal library; this is the closest llama.cpp server this machine can run offline. Say so when you
// report figures from it.
//
//   node serve.mjs --model F.gguf --threads 2 --parallel 8 --ctx 4096 --port 18081
//   wb bench --url http://127.0.0.1:18081/v1 --concurrency 1,4,8 --input 128 --output 64 -m F.gguf
//
// Requests: {"prompt": [token ids] | "text", "max_tokens": N, "stream": true|false, "ignore_eos": bool}; greedy.
// Streaming sends one SSE chunk per token with text, then a usage chunk, then [DONE]. A request waits for a free
// sequence when all N are busy (as llama-server queues beyond its slots).
import http from "node:http";
import path from "node:path";
import fs from "node:fs";

function usage(msg) {
    if (msg) console.error(`error: ${msg}`);
    console.error("usage: node serve.mjs --model F.gguf [--threads N] [--parallel N] [--ctx N] [--port P] [--host H]");
    process.exit(2);
}

function parseArgs(argv) {
    const o = {model: null, threads: 2, parallel: 4, ctx: 4096, port: 18081, host: "127.0.0.1", batch: 512};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const next = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
        switch (a) {
            case "--model": case "-m": o.model = next(); break;
            case "--threads": case "-t": o.threads = parseInt(next(), 10); break;
            case "--parallel": case "-np": o.parallel = parseInt(next(), 10); break;
            case "--ctx": case "-c": o.ctx = parseInt(next(), 10); break;
            case "--batch": case "-b": o.batch = parseInt(next(), 10); break;
            case "--port": o.port = parseInt(next(), 10); break;
            case "--host": o.host = next(); break;
            case "--help": case "-h": usage();
            default: usage(`unknown argument ${a}`);
        }
    }
    if (!o.model || !fs.existsSync(o.model)) usage("--model must name a GGUF file");
    if (!(o.parallel >= 1) || !(o.threads >= 1) || !(o.ctx >= 64)) usage("bad --parallel, --threads or --ctx");
    return o;
}

const o = parseArgs(process.argv.slice(2));
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
    progressLogs: false, maxThreads: 0, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: path.resolve(o.model), gpuLayers: 0});
// One context of `parallel` sequences, each with ctx / parallel positions (llama-server's -np splits -c alike).
const context = await model.createContext({contextSize: o.ctx, sequences: o.parallel, batchSize: o.batch,
    threads: o.threads, flashAttention: false, ignoreMemorySafetyChecks: true});
const free = [];
for (let i = 0; i < o.parallel; i++) free.push(context.getSequence());
const waiting = [];
const acquire = () => free.length ? Promise.resolve(free.pop()) : new Promise((r) => waiting.push(r));
const release = (s) => { const w = waiting.shift(); if (w) w(s); else free.push(s); };
const modelId = path.basename(o.model).replace(/\.gguf$/i, "");
let served = 0, generated = 0;

async function complete(body, onToken) {
    const prompt = Array.isArray(body.prompt) ? body.prompt.map(Number)
        : model.tokenize(String(body.prompt ?? ""), true);
    if (prompt.length === 0) throw Object.assign(new Error("'prompt' is empty"), {status: 400});
    const maxTokens = Math.max(1, Number(body.max_tokens ?? 16));
    const perSeq = Math.floor(o.ctx / o.parallel);
    if (prompt.length + maxTokens > perSeq)
        throw Object.assign(new Error(`prompt ${prompt.length} + max_tokens ${maxTokens} exceed the ${perSeq} positions of a sequence`), {status: 400});
    const ignoreEos = body.ignore_eos === true;
    const seq = await acquire();
    try {
        await seq.clearHistory();
        let n = 0, reason = "length";
        let gen = seq.evaluate(prompt, {temperature: 0});
        while (n < maxTokens) {
            const r = await gen.next();
            if (r.done) {  // end of generation
                if (!ignoreEos) { reason = "stop"; break; }
                gen = seq.evaluate([model.tokens.bos ?? 1], {temperature: 0});
                continue;
            }
            n++;
            onToken(r.value);
        }
        await gen.return();
        served++;
        generated += n;
        return {promptTokens: prompt.length, completionTokens: n, reason};
    } finally {
        release(seq);
    }
}

function send(res, status, obj) {
    const b = JSON.stringify(obj);
    res.writeHead(status, {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(b)});
    res.end(b);
}

const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url.endsWith("/models"))
        return send(res, 200, {object: "list", data: [{id: modelId, object: "model", owned_by: "llama.cpp"}]});
    if (req.method === "GET" && (req.url === "/health" || req.url === "/v1/health")) return send(res, 200, {status: "ok"});
    if (req.method !== "POST" || !req.url.endsWith("/completions") || req.url.endsWith("/chat/completions"))
        return send(res, 404, {error: {message: `${req.method} ${req.url}: only /v1/completions is served`}});
    let data = "";
    req.on("data", (c) => { data += c; });
    req.on("end", async () => {
        let body;
        try { body = JSON.parse(data); } catch (e) { return send(res, 400, {error: {message: "the body is not JSON"}}); }
        const id = `cmpl-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
        const stream = body.stream === true;
        if (stream) res.writeHead(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"});
        let pending = [];
        let text = "";
        const chunk = (t, finish) => `data: ${JSON.stringify({id, object: "text_completion", model: modelId,
            choices: [{index: 0, text: t, finish_reason: finish}]})}\n\n`;
        try {
            const out = await complete(body, (tok) => {
                pending.push(tok);
                const t = model.detokenize(pending);
                if (t.length === 0 || t.endsWith("\ufffd")) return;  // an incomplete UTF-8 sequence: wait for more
                pending = [];
                if (stream) res.write(chunk(t, null)); else text += t;
            });
            const u = {prompt_tokens: out.promptTokens, completion_tokens: out.completionTokens,
                total_tokens: out.promptTokens + out.completionTokens};
            if (stream) {
                res.write(chunk("", out.reason));
                res.write(`data: ${JSON.stringify({id, object: "text_completion", model: modelId, choices: [], usage: u})}\n\n`);
                res.end("data: [DONE]\n\n");
            } else {
                send(res, 200, {id, object: "text_completion", model: modelId,
                    choices: [{index: 0, text, finish_reason: out.reason}], usage: u});
            }
        } catch (e) {
            if (stream) res.end(`data: ${JSON.stringify({error: {message: String(e.message)}})}\n\n`);
            else send(res, e.status ?? 500, {error: {message: String(e.message)}});
        }
    });
});
server.listen(o.port, o.host, () => {
    console.error(`serve.mjs: ${modelId} on http://${o.host}:${server.address().port}/v1 (${o.parallel} sequences, ` +
        `${o.threads} threads, context ${o.ctx}; llama.cpp from node-llama-cpp's prebuilt CPU libraries)`);
});
const stop = () => { server.close(); process.exit(0); };
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
