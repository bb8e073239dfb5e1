#!/usr/bin/env node
// Greedy tokens from llama.cpp itself (node-llama-cpp's prebuilt CPU build) for a prompt given as token ids:
// the reference the GGUF tests hold the engine to.
//   node tools/llamacpp-yardstick/greedy.mjs --model F.gguf --tokens 1,2,3 --n 16 [--threads 2]
// Prints one JSON line: {"llama_cpp": {...}, "tokens": [...]} ; exit 2 on bad arguments, 1 when llama.cpp fails
// (the error on stderr).
import path from "node:path";
import fs from "node:fs";
import {fileURLToPath} from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

function parse(argv) {
    const o = {model: "", tokens: [], n: 16, threads: 2};
    for (let i = 2; i < argv.length; ++i) {
        const a = argv[i], v = argv[i + 1];
        if (a === "--model") { o.model = v; ++i; }
        else if (a === "--tokens") { o.tokens = v.split(",").filter((x) => x !== "").map(Number); ++i; }
        else if (a === "--n") { o.n = Number(v); ++i; }
        else if (a === "--threads") { o.threads = Number(v); ++i; }
        else { console.error(`greedy.mjs: unknown argument ${a}`); process.exit(2); }
    }
    if (!o.model || !o.tokens.length || o.tokens.some((t) => !Number.isInteger(t) || t < 0) ||
        !Number.isInteger(o.n) || o.n < 1) {
        console.error("usage: greedy.mjs --model F.gguf --tokens ID,ID,... [--n N] [--threads T]");
        process.exit(2);
    }
    return o;
}

async function main() {
    const o = parse(process.argv);
    process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
    const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");
    const llama = await getLlama({
        gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
        logLevel: LlamaLogLevel.error,
    });
    const model = await llama.loadModel({modelPath: o.model, gpuLayers: 0});
    const context = await model.createContext({contextSize: 256, batchSize: 256, sequences: 1, threads: o.threads,
                                               ignoreMemorySafetyChecks: true});
    const seq = context.getSequence();
    const out = [];
    // Greedy (temperature 0), no repetition penalty; end-of-generation tokens are kept, not stopped at.
    const gen = seq.evaluate(o.tokens, {temperature: 0});
    for (let r = await gen.next(); !r.done && out.length < o.n; r = await gen.next()) out.push(r.value);
    await gen.return?.();
    let pkg = {};
    try {
        pkg = JSON.parse(fs.readFileSync(path.join(HERE, "node_modules/node-llama-cpp/package.json"), "utf8"));
    } catch { /* version unknown */ }
    console.log(JSON.stringify({llama_cpp: {node_llama_cpp: pkg.version ?? null}, tokens: out}));
    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

main().catch((e) => { console.error(`greedy.mjs: ${e?.message ?? e}`); process.exit(1); });
