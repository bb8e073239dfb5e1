#!/usr/bin/env bash
# One command from a fresh clone: install dependencies, build, and chat with a model in the terminal.
#   tools/run.sh [MODEL]   MODEL: a .gguf file or a Hugging Face folder (default: the stories260K fixture)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)" --target wb
FIX="${WB_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}"
MODEL="${1:-$FIX/models/stories260K/stories260K.gguf}"
if [ ! -e "$MODEL" ]; then
    echo "run: no model at $MODEL; pass a .gguf file or a Hugging Face folder: tools/run.sh PATH" >&2
    exit 1
fi
if [ -t 0 ]; then
    exec ./build-ci/engine/wb chat -m "$MODEL"
else
    exec ./build-ci/engine/wb generate -m "$MODEL" -p "Once upon a time" -n 64
fi
