#!/usr/bin/env python3
"""Workbench vs llama.cpp on the same GGUF files and thread count, measured in the same run.

For each model file and each round, runs llama.cpp's llama-bench (tools/llamacpp-yardstick) and `wb bench`
back to back, so both see the same machine load, then prints a Markdown table of mean ± stddev over rounds.

  tools/bench-vs-llamacpp.py --wb build/engine/wb --threads 2 --pp 128,512 --tg 64 --rounds 3 F16.gguf Q8_0.gguf
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--wb", default=os.path.join(HERE, "..", "build", "engine", "wb"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pp", default="128,512")
    ap.add_argument("--tg", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2, help="repetitions inside each tool run")
    ap.add_argument("--depth", type=int, default=0, help="context already in the cache before each test (-d)")
    ap.add_argument("--wb-baseline", default="", help="a second wb (an older build) run in the same rounds, "
                    "right after the first; files it cannot read show n/a")
    args = ap.parse_args()
    pps = [int(x) for x in args.pp.split(",") if x]
    yard = os.path.join(HERE, "llamacpp-yardstick", "bench.mjs")
    at = " @ d%d" % args.depth if args.depth > 0 else ""
    results = {}  # (model, test, engine) -> [tokens/s per round]
    meta = {}
    loads = []
    for rnd in range(args.rounds):
        for model in args.models:
            loads.append(loadavg())
            lj = run_json(["node", yard, "--model", model, "--threads", str(args.threads), "--pp",
                           ",".join(map(str, pps)), "--tg", str(args.tg), "--reps", str(args.reps), "--depth", str(args.depth), "--json"])
            meta["llama.cpp"] = "llama.cpp %s commit %s (%s, prebuilt from node-llama-cpp %s)" % (
                lj["llama_cpp"].get("release", "?"), lj["llama_cpp"].get("build_commit", "?"),
                os.path.basename(lj.get("cpu_backend_lib", "?") or "?"), lj["llama_cpp"].get("node_llama_cpp", "?"))
            for r in lj["results"]:
                results.setdefault((model, r["test"], "llama.cpp"), []).append(r["avg_ts"])
            engines = [("workbench", args.wb)] + ([("baseline", args.wb_baseline)] if args.wb_baseline else [])
            for (engine, exe), (i, pp) in [(e, p) for p in enumerate(pps) for e in engines]:
                tg = args.tg if i == 0 else 0
                try:
                    wj = run_json([exe, "bench", "-m", model, "-t", str(args.threads), "--pp", str(pp), "--tg",
                               str(tg), "-r", str(args.reps), "--depth", str(args.depth), "--json"])
                except subprocess.CalledProcessError:
                    if engine == "workbench":
                        raise
                    continue  # the baseline build may not read every file
                meta[engine] = "%s: %s %s (%s)" % (engine, exe, wj["version"], wj["isa"])
                results.setdefault((model, "pp%d" % pp + at, engine), []).append(wj["pp"]["tokens_per_s"])
                if tg:
                    results.setdefault((model, "tg%d" % tg + at, engine), []).append(wj["tg"]["tokens_per_s"])
            print("round %d/%d %s done" % (rnd + 1, args.rounds, os.path.basename(model)), file=sys.stderr)

    def fmt(v):
        if not v:
            return "n/a"
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        return "%.2f ± %.2f" % (statistics.mean(v), sd)

    base = bool(args.wb_baseline)
    print("| model | test | llama.cpp t/s | workbench t/s | workbench / llama.cpp |" + (" baseline t/s |" if base else ""))
    print("| --- | --- | --- | --- | --- |" + (" --- |" if base else ""))
    tests = ["pp%d" % p + at for p in pps] + ["tg%d" % args.tg + at]
    for model in args.models:
        for t in tests:
            l = results.get((model, t, "llama.cpp"), [])
            w = results.get((model, t, "workbench"), [])
            ratio = "%.2f×" % (statistics.mean(w) / statistics.mean(l)) if l and w else "n/a"
            row = "| %s | %s | %s | %s | %s |" % (os.path.basename(model), t, fmt(l), fmt(w), ratio)
            if base:
                row += " %s |" % fmt(results.get((model, t, "baseline"), []))
            print(row)
    print()
    print("%d threads, %d rounds (each round: llama-bench then wb bench, %d repetitions each); "
          "1-minute load average at the start of each run: %s" % (
              args.threads, args.rounds, args.reps, ", ".join("%.2f" % x for x in loads)))
    for k, v in meta.items():
        print("- %s" % v)


if __name__ == "__main__":
    main()
