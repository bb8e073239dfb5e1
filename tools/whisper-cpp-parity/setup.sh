#!/usr/bin/env bash
# Installs @fugood/whisper.node (whisper.cpp prebuilt for linux-x64, from the npm registry only) into this folder.
# Idempotent. Exit 1 when npm or the registry is unreachable: the tests that use it then skip.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f node_modules/@fugood/whisper.node/package.json ] && [ -d node_modules/@fugood/node-whisper-linux-x64 ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "whisper-cpp-parity: npm not found" >&2; exit 1; }
npm install --no-audit --no-fund --loglevel=error >/dev/null
[ -d node_modules/@fugood/node-whisper-linux-x64 ] || { echo "whisper-cpp-parity: no linux-x64 prebuilt" >&2; exit 1; }
