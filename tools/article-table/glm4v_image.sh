#!/usr/bin/env bash
# The article's comparison with an image workload (issue #18, second table): a tiny random GLM-4.1V folder
# (wb-make-model --arch glm4v), this engine in process against Transformers' Glm4vForConditionalGeneration behind
# tools/hf-serve, each request one chat message of one image (new pixels each request) + 32 prompt tokens, 16 out,
# concurrency 1 and 4, into one comparison file.
# Usage: tools/article-table/glm4v_image.sh GLM_DIR IMAGE OUT.json [OPENBLAS_DIR]
# The Transformers side goes through the generic OpenAI path (no --target): it sends decode(prompt ids) as the chat
# text, the closest a remote tokenizer gets to the same prompt (the plugin ABI hands a plugin ids only, which it
# sends as a word salad); the prompt tokens each side counted are printed per level. Its memory is the server's own
# hf_serve_peak_rss_bytes, read from /metrics after the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
G=$1 IMG=$2 O=$3 BLAS=${4:-}
export PYTHONPATH=${PYTHONPATH:-$HOME/.cache/hf-reference/site}
WB=${WB:-build-ci/engine/wb}
rm -f "$O"
W=(--image "$IMG" --concurrency 1,4 --input 32 --output 16 --requests 8 --append-to "$O")
"$WB" bench -m "$G" --precision fp32 --threads 2 --label "workbench (fp32)" "${W[@]}"
log=$(mktemp)
LD_LIBRARY_PATH=$BLAS /usr/bin/python3 tools/hf-serve/hf_serve.py --model "$G" --dtype float32 --threads 2 --port 18933 \
    > "$log" 2>&1 &
pid=$!
for _ in $(seq 120); do grep -q "listening on" "$log" && break; sleep 1; done
"$WB" bench --url http://127.0.0.1:18933/v1 -m "$G" --precision fp32 --label "HF Transformers (fp32)" "${W[@]}"
echo "HF server /metrics after the run: $(curl -s http://127.0.0.1:18933/metrics | grep '^hf_serve_peak_rss_bytes')"
kill "$pid"; wait "$pid" || true
"$WB" bench --report "$O"
