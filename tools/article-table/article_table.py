#!/usr/bin/env python3
"""The article's table on this machine (issue #18): this engine at FP32 / BF16 / INT8, HF Transformers at FP32 /
BF16 (tools/hf-serve) and llama.cpp at F16 / Q8_0 (tools/llamacpp-yardstick/serve.mjs) on the same weights, one
workload (128 in / 64 out, concurrency 1, 4, 8), one comparison file, the article's Markdown table, and the greedy
outputs of every target on one prompt compared.

Every figure comes from `wb bench` (`wb bench --preset article` prints these steps): this engine in process, the
servers through their comparison-target plugins (`--target transformers`, `--target llamacpp`), each appended to
one comparison file (`--append-to`), printed by `wb bench --report FILE` with the source of each memory figure.
This script only starts and stops the servers in turn (one at a time: they would share the same cores) and asks
each target for the same greedy continuation.

Inputs: the same model as an HF folder and as GGUF files of the same weights, e.g. (seed 18, TinyLlama shape):
    T=../shared/fixtures/tokenizers/llama2/tokenizer.model
    wb-make-model --preset 1b --seed 18 --format hf   --dtype f32  --tokenizer-from $T --out /tmp/art/hf
    wb-make-model --preset 1b --seed 18 --format gguf --dtype f32  --tokenizer-from $T --out /tmp/art/f32.gguf
    wb-make-model --preset 1b --seed 18 --format gguf --dtype f16  --tokenizer-from $T --out /tmp/art/f16.gguf
    wb-make-model --preset 1b --seed 18 --format gguf --dtype q8_0 --tokenizer-from $T --out /tmp/art/q8_0.gguf
    python3 tools/article-table/article_table.py --dir /tmp/art --out /tmp/art/article.json

Writes FILE (the comparison, with "greedy_agreement" added) and FILE with .md (the table, the agreement table and
the commands that were run). Needs torch + transformers for the Transformers rows (PYTHONPATH of the kit, see
tools/hf-serve) and `tools/llamacpp-yardstick/setup.sh` for the llama.cpp rows; a target that cannot start is
recorded as an error row, never left out silently.
"""
import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
URL_RE = re.compile(r"(http://[0-9A-Za-z.\-:\[\]]+/v1)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """A child process that prints its OpenAI base URL when ready; stopped with SIGTERM."""

    def __init__(self, name, argv, env=None, timeout=600):
        self.name, self.argv, self.log = name, argv, []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, cwd=ROOT)
        self.url = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                m = URL_RE.search(line)
                if m and not self.url and ("listening" in line or " on http" in line):
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(timeout)
        if not self.url:
            self.stop()
            raise RuntimeError(f"{name} did not start: " + " | ".join(self.log[-5:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def peak_rss(pid):
    """VmHWM of a process (its peak resident set), from /proc: what a server that reports no memory of its own is
    charged with, named as such."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def greedy(url, prompt_ids, n):
    body = json.dumps({"prompt": prompt_ids, "max_tokens": n, "temperature": 0, "ignore_eos": True,
                       "stream": False}).encode()
    req = urllib.request.Request(url + "/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        j = json.load(r)
    return j["choices"][0]["text"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="holds hf/, f32.gguf, f16.gguf, q8_0.gguf")
    ap.add_argument("--out", required=True, help="the comparison file (JSON); the table goes beside it as .md")
    ap.add_argument("--wb", default=os.path.join(ROOT, "build-ci/engine/wb"))
    ap.add_argument("--deadline", default="", help="HH:MM UTC: rows not started by then are left out (and listed "
                                                    "as not run), so a shared machine's run ends with its table")
    ap.add_argument("--load-log", default="", help="also write the load-average samples (every 10 s: time, 1/5/15-"
                                                    "minute load) to this file; their summary goes into the .md and "
                                                    "the comparison file either way")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--concurrency", default="1,4,8")
    ap.add_argument("--input", type=int, default=128)
    ap.add_argument("--output", type=int, default=64)
    ap.add_argument("--requests", type=int, default=0, help="per level (0: wb bench's default, max(4c, 8))")
    ap.add_argument("--greedy-tokens", type=int, default=24)
    ap.add_argument("--warmup", type=int, default=1, help="warm-up requests before each level (wb bench --warmup)")
    ap.add_argument("--greedy-first", action="store_true",
                    help="ask each server for its greedy continuation before its benchmark and count that request "
                         "as its warm-up (its rows then run with --warmup 0): saves one full request per server "
                         "row where a request takes minutes")
    ap.add_argument("--hf-blas-dir", default="",
                    help="a folder with an OpenBLAS libblas.so.3 for the Transformers server (LD_LIBRARY_PATH): "
                         "Debian's torch does FP32 matmuls through the libblas.so.3 alternative, by default the "
                         "reference BLAS (tools/hf-serve/README.md)")
    ap.add_argument("--only", default="", help="comma list of row keys to run (wb-fp32,wb-bf16,wb-int8,hf-fp32,"
                                                "hf-bf16,llama-f16,llama-q8_0); default all")
    args = ap.parse_args()
    d = args.dir
    hf, f32, f16, q8 = (os.path.join(d, x) for x in ("hf", "f32.gguf", "f16.gguf", "q8_0.gguf"))
    if os.path.exists(args.out):
        os.remove(args.out)
    common = ["--concurrency", args.concurrency, "--input", str(args.input), "--output", str(args.output),
              "--append-to", args.out]
    if args.requests:
        common += ["--requests", str(args.requests)]
    env = dict(os.environ)
    kit = os.path.expanduser("~/.cache/hf-reference/site")
    if os.path.isdir(kit) and kit not in env.get("PYTHONPATH", ""):
        env["PYTHONPATH"] = kit + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = str(args.threads)
    node_mjs = os.path.join(ROOT, "tools/llamacpp-yardstick/serve.mjs")
    conc_max = max(int(c) for c in args.concurrency.split(","))
    ctx = max(4096, conc_max * (args.input + args.output) * 2)

    # (key, label, precision, how to serve it for the greedy probe, how wb bench reaches it)
    rows = [
        ("wb-fp32", "workbench (fp32)", "fp32", None), ("wb-bf16", "workbench (bf16)", "bf16", None),
        ("wb-int8", "workbench (int8)", "int8", None),
        ("hf-fp32", "HF Transformers (fp32)", "float32", "hf"), ("hf-bf16", "HF Transformers (bf16)", "bfloat16", "hf"),
        ("llama-f16", "llama.cpp via node-llama-cpp (F16)", f16, "llama"),
        ("llama-q8_0", "llama.cpp via node-llama-cpp (Q8_0)", q8, "llama"),
    ]
    only = [k for k in args.only.split(",") if k]
    if only:  # the order given is the order run
        unknown = [k for k in only if k not in [r[0] for r in rows]]
        if unknown:
            ap.error("unknown --only keys: " + ",".join(unknown))
        rows = sorted((r for r in rows if r[0] in only), key=lambda r: only.index(r[0]))
    rng = 1234567
    prompt = []
    for _ in range(32):  # one fixed token-id prompt for every target's greedy continuation
        rng = (rng * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        prompt.append(3 + (rng >> 33) % 31990)
    commands, agreement, hwm = [], [], {}

    def run(argv):
        commands.append(" ".join(shlex.quote(a) for a in argv))
        print("$ " + commands[-1], flush=True)
        r = subprocess.run(argv, cwd=ROOT, env=env)
        return r.returncode

    # The machine is shared: the 1-minute load average every 10 s, from the first row to the last.
    load_samples, load_stop = [], threading.Event()

    def sample_load():
        while True:
            try:
                one, five, fifteen = open("/proc/loadavg").read().split()[:3]
                load_samples.append((time.strftime("%H:%M:%S", time.gmtime()), float(one), float(five),
                                     float(fifteen)))
                if args.load_log:
                    with open(args.load_log, "a") as f:
                        f.write("%s %s %s %s\n" % load_samples[-1])
            except OSError:
                pass
            if load_stop.wait(10):
                return

    threading.Thread(target=sample_load, daemon=True).start()

    def bench_args(server_row):
        w = 0 if (server_row and args.greedy_first) else args.warmup
        return common + ["--warmup", str(w)]

    def ask_greedy(url, label):
        t0 = time.time()
        text = greedy(url, prompt, args.greedy_tokens)
        agreement.append({"label": label, "text": text, "seconds": round(time.time() - t0, 2)})

    not_run = []
    for key, label, prec, kind in rows:
        if args.deadline and time.strftime("%H:%M", time.gmtime()) >= args.deadline:
            not_run.append(label)
            print(f"article_table: {label}: not run (past the --deadline {args.deadline} UTC)", flush=True)
            continue
        server = None
        try:
            if kind is None:
                run([args.wb, "bench", "-m", f32, "--precision", prec, "--threads", str(args.threads), "--label",
                     label] + bench_args(False))
                server = Server(label, [args.wb, "serve", "-m", f32, "--precision", prec, "--port", "0", "-t",
                                        str(args.threads)], env)
            elif kind == "hf":
                hf_env = dict(env)
                if args.hf_blas_dir:
                    hf_env["LD_LIBRARY_PATH"] = args.hf_blas_dir + (":" + env["LD_LIBRARY_PATH"]
                                                                    if env.get("LD_LIBRARY_PATH") else "")
                argv = [args.python, "tools/hf-serve/hf_serve.py", "--model", hf, "--dtype", prec, "--threads",
                        str(args.threads), "--max-batch", str(conc_max), "--port", "0"]
                commands.append("PYTHONPATH=~/.cache/hf-reference/site " +
                                (f"LD_LIBRARY_PATH={args.hf_blas_dir} " if args.hf_blas_dir else "") +
                                " ".join(map(shlex.quote, argv)) + " &")
                server = Server(label, argv, hf_env)
                if args.greedy_first:
                    ask_greedy(server.url, label)
                run([args.wb, "bench", "--url", server.url, "--target", "transformers", "-m", f32, "--precision",
                     "fp32" if prec == "float32" else "bf16", "--label", label] + bench_args(True))
            else:
                port = free_port()
                argv = ["node", node_mjs, "--model", prec, "--threads", str(args.threads), "--parallel",
                        str(conc_max), "--ctx", str(ctx), "--port", str(port)]
                commands.append(" ".join(map(shlex.quote, argv)) + " &")
                server = Server(label, argv, env)
                if args.greedy_first:
                    ask_greedy(server.url, label)
                run([args.wb, "bench", "--url", server.url, "--target", "llamacpp", "-m", f32, "--precision",
                     "f16" if prec == f16 else "q8_0", "--label", label] + bench_args(True))
            if kind is not None:
                hwm[label] = peak_rss(server.proc.pid)
            if not (kind is not None and args.greedy_first):
                ask_greedy(server.url, label)
        except Exception as e:  # noqa: BLE001 (recorded, the other rows still run)
            print(f"article_table: {label}: {e}", file=sys.stderr)
            agreement.append({"label": label, "error": str(e)})
        finally:
            if server:
                server.stop()

    # Compared without whitespace: the three detokenizers place SentencePiece's spaces differently (a leading space
    # kept or dropped; serve.mjs joins pieces without them), which says nothing about the tokens chosen.
    # The reference framework's FP32 output is the reference, as in the article; else this engine's FP32; else the first
    # target that answered.
    ref = next((a for a in agreement if "text" in a and a["label"] == "HF Transformers (fp32)"),
               next((a for a in agreement if "text" in a and a["label"] == "workbench (fp32)"),
                    next((a for a in agreement if "text" in a), None)))
    squash = lambda t: "".join(t.split())  # noqa: E731
    for a in agreement:
        if "text" in a and ref:
            common_len = 0
            for x, y in zip(squash(a["text"]), squash(ref["text"])):
                if x != y:
                    break
                common_len += 1
            a["same_as_reference"] = squash(a["text"]) == squash(ref["text"])
            a["common_prefix_chars"] = common_len
    doc = json.load(open(args.out)) if os.path.exists(args.out) else {"format": "wb-bench-comparison", "version": 1,
                                                                         "runs": []}
    # A server's process peak RSS (VmHWM) beside what it reports itself; used for the table only where the server
    # reports nothing, with the source saying so.
    for run_ in doc["runs"]:
        label = run_.get("label")
        if label in hwm and hwm[label]:
            mem = run_.setdefault("memory", {})
            mem["process_peak_rss_bytes"] = hwm[label]
            if mem.get("peak_bytes") is None:
                mem["peak_bytes"] = hwm[label]
                mem["source"] = ("process peak RSS (VmHWM of the server process, read from /proc by "
                                 "article_table.py; the server reports none)")
    load_stop.set()
    ones = [x[1] for x in load_samples]
    load = ({"samples": len(ones), "every_s": 10, "from_utc": load_samples[0][0], "to_utc": load_samples[-1][0],
             "min_1m": min(ones), "max_1m": max(ones), "mean_1m": round(sum(ones) / len(ones), 2),
             "cpus": os.cpu_count()} if ones else None)
    doc["load_average"] = load
    if not_run:
        doc["not_run"] = not_run
    doc["greedy_agreement"] = {"prompt_ids": prompt, "max_tokens": args.greedy_tokens,
                               "reference": ref["label"] if ref else None, "targets": agreement}
    json.dump(doc, open(args.out, "w"), indent=1)
    table = subprocess.run([args.wb, "bench", "--report", args.out], cwd=ROOT, capture_output=True, text=True).stdout
    md = [table.rstrip(), "", f"Greedy continuation of one {len(prompt)}-token id prompt, {args.greedy_tokens} tokens "
          f"(temperature 0), compared with {ref['label'] if ref else 'nothing'}:", "",
          "| target | same text (whitespace ignored) | common prefix (non-space chars of reference) | text |", "| --- | --- | --- | --- |"]
    for a in agreement:
        if "text" in a:
            md.append(f"| {a['label']} | {'yes' if a['same_as_reference'] else 'no'} | {a['common_prefix_chars']} / "
                      f"{len(squash(ref['text']))} | `{a['text'][:60].replace('|', '/').replace('`', chr(39))}...` |")
        else:
            md.append(f"| {a['label']} | error: {a['error'][:80]} | | |")
    if not_run:
        doc_note = "Not run (past the --deadline): " + ", ".join(not_run) + "."
        md += ["", doc_note]
    if load:
        md += ["", f"1-minute load average on this {load['cpus']}-CPU machine, sampled every 10 s from "
                   f"{load['from_utc']} to {load['to_utc']} UTC ({load['samples']} samples): {load['min_1m']:.2f}-"
                   f"{load['max_1m']:.2f}, mean {load['mean_1m']:.2f}."]
    md += ["", "Commands:", "", "```sh"] + commands + ["```", ""]
    open(os.path.splitext(args.out)[0] + ".md", "w").write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
