#!/usr/bin/env bash
# Speed of `wb transcribe` against whisper.cpp (the prebuilt in @fugood/whisper.node) on one ggml file and one
# audio file, same threads, runs interleaved so that machine load hits both alike (docs/BENCHMARKS.md):
#   tools/whisper-cpp-parity/bench.sh WB_BINARY MODEL.bin AUDIO.wav [THREADS] [RUNS]
# Both decode greedily without timestamps, at most 220 tokens (whisper.cpp's per-window limit), in English; the
# script checks that the texts are equal and prints each run's milliseconds (transcription only: model loading
# and file decoding excluded on both sides).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wb="$1" model="$2" audio="$3" threads="${4:-2}" runs="${5:-3}"
bash "$here/setup.sh"
for i in $(seq "$runs"); do
    ours=$("$wb" transcribe "$audio" -m "$model" -l en --no-timestamps -n 220 -t "$threads" --json)
    theirs=$(node "$here/run.mjs" transcribe "$model" "$audio" --threads "$threads" 2>/dev/null)
    python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = o["text"] == t["text"].strip()
print(f"wb {o['transcribe_ms']:.0f} ms   whisper.cpp {t['ms'][0]:.0f} ms   same text: {same}")
PY
done
