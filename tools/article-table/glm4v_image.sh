#!/usr/bin/env bash
# The article's comparison with an image workload (issue #18, second table): a tiny random GLM-4.1V folder
# (wb-make-model --arch glm4v), this engine in process against Transformers' Glm4vForConditionalGeneration behind
# tools/hf-serve, each request one chat message of one image (new pixels each request) + 32 prompt tokens, 16 out,
# concurrency 1 and 4, into one comparison file; then the greedy answer of each side to one image chat, compared.
# Usage: tools/article-table/glm4v_image.sh GLM_DIR IMAGE OUT.json [OPENBLAS_DIR]
# Both sides go through the comparison path: the engine in process, Transformers through the "transformers" plugin
# (--target transformers) with -m GLM_DIR, so the plugin's startChat (API version 2) sends the chat the engine gets:
# one user message, the image, then the prompt ids decoded by the model's own tokenizer (not ids or filler words),
# drawn so that their text round-trips through it (wb::RoundTripPrompts), so both sides count the same tokens.
# The prompt tokens each side counted (its own usage) are printed per level and kept in the file; the file warns
# (prompt_token_warnings) when they differ by more than 2 a request. Transformers' memory is its server's own
# hf_serve_peak_rss_bytes (/metrics, sampled by the plugin during the run).
# Greedy: `wb serve` and hf_serve.py each get one chat (the image + a fixed text, temperature 0, 16 tokens); both
# texts and whether they match go into OUT.json's "greedy_agreement".
set -euo pipefail
cd "$(dirname "$0")/../.."
G=$1 IMG=$2 O=$3 BLAS=${4:-}
export PYTHONPATH=${PYTHONPATH:-$HOME/.cache/hf-reference/site}
WB=${WB:-build-ci/engine/wb}
PY=${PY:-/usr/bin/python3}
rm -f "$O"
W=(--image "$IMG" --concurrency 1,4 --input 32 --output 16 --requests 8 --append-to "$O")
"$WB" bench -m "$G" --precision fp32 --threads 2 --label "workbench (fp32)" "${W[@]}"

wait_url() {  # LOG: prints the base URL a server announced ("listening on http://HOST:PORT/v1")
    for _ in $(seq 300); do
        u=$(grep -o 'listening on http://[^ ]*/v1' "$1" | head -1 | sed 's/listening on //') || true
        [ -n "$u" ] && { echo "$u"; return 0; }
        sleep 1
    done
    echo "server did not start: $(tail -5 "$1")" >&2; return 1
}
hlog=$(mktemp) wlog=$(mktemp)
LD_LIBRARY_PATH=$BLAS OMP_NUM_THREADS=2 "$PY" tools/hf-serve/hf_serve.py --model "$G" --dtype float32 --threads 2 \
    --port 0 > "$hlog" 2>&1 &
hpid=$!
trap 'kill $hpid ${wpid:-} 2>/dev/null || true' EXIT
HURL=$(wait_url "$hlog")
"$WB" bench --url "$HURL" --target transformers -m "$G" --precision fp32 --label "HF Transformers (fp32)" "${W[@]}"

# Greedy agreement on one image chat.
"$WB" serve -m "$G" --precision fp32 --port 0 -t 2 > "$wlog" 2>&1 &
wpid=$!
WURL=$(wait_url "$wlog")
"$PY" - "$O" "$IMG" "$WURL" "$HURL" <<'EOF'
import base64, json, sys, urllib.request
out, img, wurl, hurl = sys.argv[1:5]
mime = "image/jpeg" if img.lower().endswith((".jpg", ".jpeg")) else "image/png"
url = "data:%s;base64,%s" % (mime, base64.b64encode(open(img, "rb").read()).decode())
msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                     {"type": "text", "text": "What is in this picture?"}]}]
def ask(base, label):
    with urllib.request.urlopen(base + "/models", timeout=60) as r:
        model = json.load(r)["data"][0]["id"]  # each server's own id (wb serve refuses another)
    body = {"model": model, "messages": msgs, "max_tokens": 16, "temperature": 0, "ignore_eos": True, "stream": False}
    req = urllib.request.Request(base + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        j = json.load(r)
    return {"label": label, "text": j["choices"][0]["message"]["content"], "usage": j.get("usage")}
a = [ask(hurl, "HF Transformers (fp32)"), ask(wurl, "workbench (fp32)")]
squash = lambda t: "".join(t.split())
ref = squash(a[0]["text"])
for x in a:
    s = squash(x["text"])
    n = 0
    while n < min(len(s), len(ref)) and s[n] == ref[n]:
        n += 1
    x["same_as_reference"] = s == ref
    x["common_prefix_chars"] = n
doc = json.load(open(out))
doc["greedy_agreement"] = {"prompt": "one user message: the image, then 'What is in this picture?'",
                           "max_tokens": 16, "reference": a[0]["label"], "targets": a}
json.dump(doc, open(out, "w"), indent=1)
for x in a:
    print("greedy %-24s same=%s prefix=%d/%d prompt_tokens=%s text=%r" % (x["label"], x["same_as_reference"],
          x["common_prefix_chars"], len(ref), (x["usage"] or {}).get("prompt_tokens"), x["text"]))
EOF
kill "$hpid" "$wpid" 2>/dev/null || true
wait "$hpid" "$wpid" 2>/dev/null || true
trap - EXIT
"$WB" bench --report "$O"
