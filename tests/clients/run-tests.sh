#!/usr/bin/env bash
# CTest entry for the real-client tests: run-tests.sh <wb binary> <default fixtures dir>.
# Exits 77 (CTest's SKIP_RETURN_CODE for this test) when node or npm is missing, so machines without them
# skip cleanly; a failed install or a failed test is a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export WB_BIN="${1:?usage: run-tests.sh WB_BINARY [FIXTURES_DIR]}"
export WB_FIXTURES_DIR="${WB_FIXTURES_DIR:-${2:-$here/../../../shared/fixtures}}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "client tests: node/npm not found, skipping (tools/setup.sh installs them)"
    exit 77
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
    echo "client tests: node $major is too old (need >= 18 for node:test and fetch), skipping"
    exit 77
fi
cd "$here" || exit 1
# The lock file pins every package; --offline reuses npm's cache when there is no network.
if ! npm ci --offline --no-audit --no-fund --loglevel=error; then
    npm ci --no-audit --no-fund --loglevel=error || { echo "client tests: npm ci failed"; exit 1; }
fi
exec node --test --test-concurrency=1 test/*.test.mjs
