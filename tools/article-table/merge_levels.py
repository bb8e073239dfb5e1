#!/usr/bin/env python3
"""Joins comparison files of the same targets measured at different concurrency levels into one comparison file.

The article's table wants concurrency 1, 4 and 8, but `wb bench --requests N` takes one request count for every
level; a slow target (Transformers at FP32: about a minute a request here) then needs either hours at 8 requests a
level or a first pass at concurrency 1 with 2 requests and a second at 4 and 8 with 8. This puts such passes back
together: runs with the same label become one run with every level's results (ordered by concurrency), its
max_stable_concurrency the highest level up to which every level held (no errors, within the P99 limit), its memory
the run's with the higher peak. Load-average records and greedy agreements are kept per pass ("passes").

    merge_levels.py c1.json c48.json -o article.json && wb bench --report article.json
"""
import argparse
import json
import sys


def stable(results):
    best = 0
    for r in sorted(results, key=lambda r: r["concurrency"]):
        if r.get("errors", 0) or not r.get("within_limit", True):
            break
        best = r["concurrency"]
    return best


def peak(mem):
    return (mem or {}).get("peak_bytes") or (mem or {}).get("peak_rss_bytes") or 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    merged, order, passes = {}, [], []
    for path in a.inputs:
        doc = json.load(open(path))
        if doc.get("format") != "wb-bench-comparison":
            sys.exit(f"{path}: not a wb-bench-comparison file")
        passes.append({"file": path, "load_average": doc.get("load_average"),
                       "greedy_agreement": doc.get("greedy_agreement")})
        for run in doc.get("runs", []):
            label = run["label"]
            if label not in merged:
                merged[label] = json.loads(json.dumps(run))
                order.append(label)
                continue
            m = merged[label]
            for key in ("model", "precision", "input_tokens", "output_tokens", "target"):
                if m.get(key) != run.get(key):
                    sys.exit(f"{path}: run '{label}' differs in {key} ({m.get(key)!r} vs {run.get(key)!r})")
            have = {r["concurrency"] for r in m["results"]}
            for r in run["results"]:
                if r["concurrency"] in have:
                    sys.exit(f"{path}: run '{label}' measures concurrency {r['concurrency']} twice")
                m["results"].append(r)
            if peak(run.get("memory")) > peak(m.get("memory")):
                m["memory"] = run.get("memory")
    runs = []
    for label in order:
        m = merged[label]
        m["results"].sort(key=lambda r: r["concurrency"])
        m["max_stable_concurrency"] = stable(m["results"])
        runs.append(m)
    out = {"format": "wb-bench-comparison", "version": 1, "runs": runs, "passes": passes}
    if passes and passes[0].get("greedy_agreement"):
        out["greedy_agreement"] = passes[0]["greedy_agreement"]
    json.dump(out, open(a.out, "w"), indent=1)
    print(f"{a.out}: {len(runs)} runs from {len(a.inputs)} files")


if __name__ == "__main__":
    main()
