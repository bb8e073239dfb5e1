#!/usr/bin/env node
// llama.cpp CPU yardstick: prompt-processing (pp) and generation (tg) tokens/s, llama-bench style.
//
//   node bench.mjs --model F.gguf --threads 2 --pp 128 --tg 64 --reps 3 [--json]
//                  [--backend auto|llama-bench|api] [--no-warmup] [--seed N]
//
// Backends (see README.md):
//   llama-bench : llama.cpp's own llama-bench tool, built by setup.sh from the llama.cpp source that
//                 ships inside node-llama-cpp and linked against the prebuilt CPU libraries. Default.
//   api         : node-llama-cpp's API over the same prebuilt libraries (fallback when no C++ compiler).
// --pp / --tg accept comma lists (e.g. --pp 128,512); 0 disables that test.
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PLAT = `${process.platform === "darwin" ? "mac" : process.platform}-${process.arch}`;
const BINS = path.join(HERE, "node_modules", "@node-llama-cpp", PLAT, "bins", PLAT);
const LLAMA_BENCH = path.join(HERE, "node_modules", ".yardstick", "llama-bench");

function usage(msg) {
    if (msg) console.error(`error: ${msg}`);
    console.error("usage: node bench.mjs --model F.gguf [--threads N] [--pp 128[,512]] [--tg 64] [--reps 3] [--json]\n" +
        "                      [--backend auto|llama-bench|api] [--no-warmup] [--seed N] [--depth N]");
    process.exit(2);
}

function parseArgs(argv) {
    const o = {model: null, threads: 2, pp: [128], tg: [64], reps: 3, json: false, backend: "auto", warmup: true, seed: 42, depth: 0};
    const list = (v) => String(v).split(",").map((x) => parseInt(x, 10)).filter((x) => Number.isFinite(x) && x >= 0);
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const next = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
        switch (a) {
            case "--model": case "-m": o.model = next(); break;
            case "--threads": case "-t": o.threads = parseInt(next(), 10); break;
            case "--pp": case "-p": o.pp = list(next()).filter((x) => x > 0); break;
            case "--tg": case "-n": o.tg = list(next()).filter((x) => x > 0); break;
            case "--reps": case "-r": o.reps = parseInt(next(), 10); break;
            case "--json": o.json = true; break;
            case "--backend": o.backend = next(); break;
            case "--no-warmup": o.warmup = false; break;
            case "--seed": o.seed = parseInt(next(), 10); break;
            case "--depth": case "-d": o.depth = parseInt(next(), 10); break;
            case "--help": case "-h": usage();
            default: usage(`unknown argument ${a}`);
        }
    }
    if (!o.model) usage("--model is required");
    if (!fs.existsSync(o.model)) usage(`model not found: ${o.model}`);
    o.model = path.resolve(o.model);
    if (!(o.threads >= 1)) usage("--threads must be >= 1");
    if (!(o.reps >= 1)) usage("--reps must be >= 1");
    if (!(o.depth >= 0)) usage("--depth must be >= 0");
    if (o.depth > 0 && o.backend === "api") usage("--depth needs the llama-bench backend");
    if (!["auto", "llama-bench", "api"].includes(o.backend)) usage("--backend must be auto, llama-bench or api");
    if (o.pp.length === 0 && o.tg.length === 0) usage("nothing to do (--pp and --tg both empty)");
    return o;
}

function stats(samplesNs, nTokens) {
    const ts = samplesNs.map((ns) => (1e9 * nTokens) / ns);
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // sample stddev (n-1), as llama-bench does
    const sd = (xs) => { if (xs.length < 2) return 0; const m = mean(xs); return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)); };
    return {avg_ns: Math.round(mean(samplesNs)), stddev_ns: Math.round(sd(samplesNs)), avg_ts: mean(ts), stddev_ts: sd(ts),
        samples_ns: samplesNs.map(Math.round), samples_ts: ts};
}

function releaseInfo() {
    const r = {};
    try { r.node_llama_cpp = JSON.parse(fs.readFileSync(path.join(HERE, "node_modules/node-llama-cpp/package.json"))).version; } catch {}
    try { r.release = JSON.parse(fs.readFileSync(path.join(HERE, "node_modules/node-llama-cpp/llama/binariesGithubRelease.json"))).release; } catch {}
    try { r.prebuilt_build_metadata = JSON.parse(fs.readFileSync(path.join(BINS, "_nlcBuildMetadata.json"))).buildOptions?.platformInfo; } catch {}
    return r;
}

// ---------------------------------------------------------------- llama-bench backend
function runLlamaBench(o) {
    const args = ["-m", o.model, "-t", String(o.threads), "-r", String(o.reps), "-ngl", "0", "-o", "json"];
    args.push("-p", o.pp.length ? o.pp.join(",") : "0");
    args.push("-n", o.tg.length ? o.tg.join(",") : "0");
    if (!o.warmup) args.push("--no-warmup");
    if (o.depth > 0) args.push("-d", String(o.depth));  // context in the cache before each test, not timed
    // ggml loads its CPU backend variants (libggml-cpu-<arch>.so) from the executable dir or the cwd:
    // run inside the prebuilt bins directory so the prebuilt, best-scoring variant is picked.
    const env = {...process.env, LLAMA_ARG_THREADS: String(o.threads)};
    delete env.GGML_BACKEND_PATH;
    const r = spawnSync(LLAMA_BENCH, args, {cwd: BINS, env, encoding: "utf8", maxBuffer: 64 << 20});
    if (r.status !== 0) throw new Error(`llama-bench failed (${r.status}): ${r.stderr}\n${r.stdout}`);
    const rows = JSON.parse(r.stdout);
    const ver = spawnSync(LLAMA_BENCH, ["--version"], {cwd: BINS, encoding: "utf8"});
    const loaded = /load_backend: loaded CPU backend from (\S+)/.exec(r.stderr)?.[1];
    const results = rows.map((row) => ({
        test: (row.n_prompt > 0 && row.n_gen === 0 ? `pp${row.n_prompt}` : row.n_gen > 0 && row.n_prompt === 0 ? `tg${row.n_gen}` : `pp${row.n_prompt}+tg${row.n_gen}`) +
            (row.n_depth > 0 ? ` @ d${row.n_depth}` : ""),
        n_prompt: row.n_prompt, n_gen: row.n_gen, n_threads: row.n_threads, reps: row.samples_ns.length,
        avg_ts: row.avg_ts, stddev_ts: row.stddev_ts, avg_ns: row.avg_ns, stddev_ns: row.stddev_ns,
        samples_ns: row.samples_ns, samples_ts: row.samples_ts,
    }));
    const r0 = rows[0] ?? {};
    return {
        backend: "llama-bench",
        binary: LLAMA_BENCH,
        llama_cpp: {
            ...releaseInfo(),
            build_commit: r0.build_commit, build_number: r0.build_number,
            version_line: (ver.stdout + ver.stderr).split("\n").filter((l) => /version|built with/.test(l)).join("; "),
            src_commit: fs.existsSync(path.join(HERE, "node_modules/.yardstick/src-commit.txt"))
                ? fs.readFileSync(path.join(HERE, "node_modules/.yardstick/src-commit.txt"), "utf8").trim() : undefined,
        },
        cpu_backend_lib: loaded,
        cpu_info: r0.cpu_info, backends: r0.backends,
        model: {path: o.model, type: r0.model_type, size: r0.model_size, n_params: r0.model_n_params},
        settings: {n_threads: r0.n_threads, n_batch: r0.n_batch, n_ubatch: r0.n_ubatch, type_k: r0.type_k, type_v: r0.type_v,
            flash_attn: r0.flash_attn, n_gpu_layers: 0, warmup: o.warmup},
        results,
        raw: rows,
    };
}

// ---------------------------------------------------------------- node-llama-cpp API backend
async function runApi(o) {
    process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
    const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");
    const llama = await getLlama({
        gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
        maxThreads: 0, // no pool limit: the context's `threads` is then exactly the thread count used
        logLevel: LlamaLogLevel.error,
    });
    const model = await llama.loadModel({modelPath: o.model, gpuLayers: 0});
    const maxPp = Math.max(0, ...o.pp);
    const maxTg = Math.max(0, ...o.tg);
    const nCtx = Math.max(256, maxPp + 1, maxTg + 1);
    // llama-bench defaults: n_batch 2048, n_ubatch 512 (we use batch >= pp so a prompt is one llama_decode call)
    const context = await model.createContext({
        contextSize: nCtx, batchSize: Math.max(512, maxPp), sequences: 1, threads: o.threads,
        flashAttention: false, ignoreMemorySafetyChecks: true,
        batching: {dispatchSchedule: (dispatch) => queueMicrotask(dispatch)}, // dispatch at once (default waits a macrotask cycle)
    });
    const seq = context.getSequence();
    const vocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length || 256; // random token ids in [0, n_vocab) like llama-bench
    const bos = model.tokens.bos ?? 1;
    let s = o.seed >>> 0;
    const rand = () => { s = (s * 1664525 + 1013904223) >>> 0; return s; };
    const randTok = () => rand() % vocab;

    // pp: a fresh (cleared) KV cache, evaluate N tokens (BOS + random) as one batch; logits for the last token only.
    async function pp(n) {
        await seq.clearHistory();
        const toks = [bos, ...Array.from({length: n - 1}, randTok)];
        const t0 = process.hrtime.bigint();
        const gen = seq.evaluate(toks, {temperature: 0});
        await gen.next(); // decodes the whole prompt (one batch) + greedy-samples 1 token
        const t1 = process.hrtime.bigint();
        await gen.return();
        return Number(t1 - t0);
    }
    // tg: fresh KV cache, M single-token decodes (BOS first, then the greedy-sampled token each step).
    async function tg(m) {
        await seq.clearHistory();
        const t0 = process.hrtime.bigint();
        let gen = seq.evaluate([bos], {temperature: 0});
        let done = 0;
        while (done < m) {
            const r = await gen.next();
            if (r.done) { gen = seq.evaluate([randTok()], {temperature: 0}); continue; } // end-of-generation: keep going
            done++;
        }
        const t1 = process.hrtime.bigint();
        await gen.return();
        return Number(t1 - t0);
    }
    const results = [];
    for (const [kind, sizes, fn] of [["pp", o.pp, pp], ["tg", o.tg, tg]]) {
        for (const n of sizes) {
            if (o.warmup) await fn(kind === "pp" ? n : 1);
            const ns = [];
            for (let i = 0; i < o.reps; i++) ns.push(await fn(n));
            results.push({test: `${kind}${n}`, n_prompt: kind === "pp" ? n : 0, n_gen: kind === "tg" ? n : 0,
                n_threads: context.currentThreads, reps: o.reps, ...stats(ns, n)});
        }
    }
    const out = {
        backend: "node-llama-cpp-api",
        llama_cpp: {...releaseInfo(), build_type: llama.buildType, llamaCppRelease: llama.llamaCppRelease},
        system_info: llama.systemInfo,
        cpu_info: os.cpus()[0]?.model, backends: `gpu=${llama.gpu}`,
        model: {path: o.model, size: model.size, n_params: undefined, train_ctx: model.trainContextSize},
        settings: {n_threads: context.currentThreads, ideal_threads: context.idealThreads, n_ctx: context.contextSize,
            n_batch: context.batchSize, flash_attn: false, n_gpu_layers: 0, warmup: o.warmup},
        results,
    };
    await context.dispose(); await model.dispose(); await llama.dispose();
    return out;
}

// ---------------------------------------------------------------- main
const o = parseArgs(process.argv.slice(2));
const loadBefore = os.loadavg()[0];
let backend = o.backend;
if (backend === "auto") backend = fs.existsSync(LLAMA_BENCH) ? "llama-bench" : "api";
if (!fs.existsSync(BINS)) { console.error(`prebuilt llama.cpp binaries not found at ${BINS}; run ./setup.sh`); process.exit(1); }
if (backend === "llama-bench" && !fs.existsSync(LLAMA_BENCH)) { console.error(`${LLAMA_BENCH} missing; run ./setup.sh`); process.exit(1); }
const res = backend === "llama-bench" ? runLlamaBench(o) : await runApi(o);
// the 1-min load average before/after the run: >> 0 before means other processes were competing for the cores
res.host = {nproc: os.cpus().length, loadavg_1m_before: loadBefore, loadavg_1m_after: os.loadavg()[0]};
if (o.json) {
    console.log(JSON.stringify(res, null, 2));
} else {
    const lc = res.llama_cpp;
    console.log(`llama.cpp ${lc.release ?? "?"} commit ${lc.build_commit ?? lc.src_commit ?? "?"} (node-llama-cpp ${lc.node_llama_cpp}), backend=${res.backend}` +
        (res.cpu_backend_lib ? `, cpu lib=${path.basename(res.cpu_backend_lib)}` : ""));
    console.log(`model ${res.model.path} ${res.model.type ?? ""} threads=${res.settings.n_threads} loadavg(before/after)=${res.host.loadavg_1m_before.toFixed(2)}/${res.host.loadavg_1m_after.toFixed(2)}`);
    console.log("| test   |          t/s |");
    for (const r of res.results) console.log(`| ${r.test.padEnd(6)} | ${r.avg_ts.toFixed(2).padStart(9)} ± ${r.stddev_ts.toFixed(2)} |`);
}
