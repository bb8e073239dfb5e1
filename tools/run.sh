#!/usr/bin/env bash
# One command from a fresh clone: install dependencies, build, and open the workbench with a model in its library.
#   tools/run.sh [MODEL]   MODEL: a .gguf file or a Hugging Face folder (default: the stories260K fixture)
# With no display ($DISPLAY and $WAYLAND_DISPLAY unset) it chats in the terminal instead (wb chat).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake --preset ci >/dev/null
FIX="${WB_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}"
MODEL="${1:-$FIX/models/stories260K/stories260K.gguf}"
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
    cmake --build --preset ci -j "$(nproc)" --target workbench
    args=()
    # The model goes into the library (remembered) and is loaded at start: type in the Chat view.
    if [ -e "$MODEL" ]; then
        args+=(--add-model "$MODEL" --load)
    elif [ $# -gt 0 ]; then
        echo "run: no model at $MODEL; pass a .gguf file or a Hugging Face folder: tools/run.sh PATH" >&2
        exit 1
    fi
    exec ./build-ci/gui/workbench "${args[@]}"
fi
cmake --build --preset ci -j "$(nproc)" --target wb
if [ ! -e "$MODEL" ]; then
    echo "run: no model at $MODEL; pass a .gguf file or a Hugging Face folder: tools/run.sh PATH" >&2
    exit 1
fi
if [ -t 0 ]; then
    exec ./build-ci/engine/wb chat -m "$MODEL"
else
    exec ./build-ci/engine/wb generate -m "$MODEL" -p "Once upon a time" -n 64
fi
