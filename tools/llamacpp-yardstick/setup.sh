#!/usr/bin/env bash
# Installs the llama.cpp yardstick (offline-safe: npm registry only, nothing from GitHub).
#  1. `npm ci` of the pinned node-llama-cpp + its prebuilt CPU binaries (@node-llama-cpp/linux-x64).
#     Optional GPU packages are omitted and install scripts are skipped, so node-llama-cpp never
#     tries to download or build llama.cpp.
#  2. Builds llama.cpp's own `llama-bench` tool from the llama.cpp source snapshot that ships inside
#     the node-llama-cpp package (llama/gitRelease.bundle, the same release as the prebuilt libs), and
#     links it against the *prebuilt* shared libraries (libllama/libggml/libggml-cpu-*.so). Only
#     tools/llama-bench/*.cpp is compiled (~10 s); every kernel is the prebuilt one.
#     If no C++ compiler is available this step is skipped and bench.mjs falls back to the
#     node-llama-cpp API backend.
# Idempotent: re-running is a no-op when everything is up to date. Use --force to rebuild.
set -euo pipefail
cd "$(dirname "$0")"
FORCE=0; [[ "${1:-}" == "--force" ]] && FORCE=1

export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
STAMP=node_modules/.yardstick/npm.stamp
if [[ $FORCE == 1 || ! -f $STAMP || package-lock.json -nt $STAMP ]]; then
  npm ci --omit=optional --ignore-scripts --no-audit --no-fund
  mkdir -p node_modules/.yardstick && touch "$STAMP"
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PLAT=linux-x64 ;;
  *) echo "setup.sh: llama-bench build only wired up for linux-x64; API backend only." >&2; exit 0 ;;
esac
BINS="$PWD/node_modules/@node-llama-cpp/$PLAT/bins/$PLAT"
BUNDLE="$PWD/node_modules/node-llama-cpp/llama/gitRelease.bundle"
OUT="$PWD/node_modules/.yardstick"
EXE="$OUT/llama-bench"
BATCHED="$OUT/llama-batched-bench"
if [[ $FORCE == 0 && -x $EXE && $EXE -nt $STAMP && -x $BATCHED ]]; then
  echo "setup.sh: up to date ($EXE)"; exit 0
fi
CXX="${CXX:-g++}"
if ! command -v "$CXX" >/dev/null || ! command -v git >/dev/null; then
  echo "setup.sh: no $CXX or git; skipping llama-bench build (bench.mjs will use --backend api)" >&2; exit 0
fi
rm -rf "$OUT/src"
git clone -q --no-checkout "$BUNDLE" "$OUT/src"
git -C "$OUT/src" -c advice.detachedHead=false checkout -q HEAD -- include ggml/include common vendor tools/llama-bench tools/batched-bench
git -C "$OUT/src" rev-parse HEAD > "$OUT/src-commit.txt"
LIBLLAMA=$(cd "$BINS" && ls libllama.*so* | grep -v common | head -1)
LIBGGML=$(cd "$BINS" && ls libggml.*so* | head -1)
S="$OUT/src"
"$CXX" -std=c++17 -O2 -DNDEBUG -I"$S/include" -I"$S/ggml/include" -I"$S/common" -I"$S/vendor" \
  "$S/tools/llama-bench/llama-bench.cpp" "$S/tools/llama-bench/main.cpp" -o "$EXE.tmp" \
  -L"$BINS" -l:libllama-common.so -l:"$LIBLLAMA" -l:"$LIBGGML" -l:libggml-base.so \
  -Wl,-rpath,"$BINS" -pthread
mv "$EXE.tmp" "$EXE"
# llama.cpp's batched-bench: N sequences prefilled together then decoded in lockstep (its serving throughput).
"$CXX" -std=c++17 -O2 -DNDEBUG -I"$S/include" -I"$S/ggml/include" -I"$S/common" -I"$S/vendor" \
  "$S/tools/batched-bench/batched-bench.cpp" "$S/tools/batched-bench/main.cpp" -o "$BATCHED.tmp" \
  -L"$BINS" -l:libllama-common.so -l:"$LIBLLAMA" -l:"$LIBGGML" -l:libggml-base.so \
  -Wl,-rpath,"$BINS" -pthread
mv "$BATCHED.tmp" "$BATCHED"
rm -rf "$S"
echo "setup.sh: built $EXE and $BATCHED (linked against prebuilt libs in $BINS)"
