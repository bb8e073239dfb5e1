#!/usr/bin/env bash
# CTest entry for the real-client tests: run-tests.sh <wb binary> <default fixtures dir>.
# Exits 77 (CTest's SKIP_RETURN_CODE for this test) when node or npm is missing, so machines without them
# skip cleanly; a failed install or a failed test is a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
WB_BIN="${1:?usage: run-tests.sh WB_BINARY [FIXTURES_DIR]}"
export WB_BIN="$(cd "$(dirname "$WB_BIN")" && pwd)/$(basename "$WB_BIN")"  # the suites run from here
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
# Every suite but the tiny-GLM phone agent serves the stories260K fixture (and the audio suite reads jfk.wav and
# the Whisper vocabulary). Without the fixtures those suites are skipped with a message, except in CI (CI=true),
# which has them (or WB_REQUIRE_FIXTURES=1): there a missing fixture is a failure.
needed=(models/stories260K/stories260K.gguf audio/jfk.wav audio/for-tests-ggml-tiny.bin)
missing=()
for f in "${needed[@]}"; do [ -f "$WB_FIXTURES_DIR/$f" ] || missing+=("$WB_FIXTURES_DIR/$f"); done
suites=(test/*.test.mjs)
if [ "${#missing[@]}" -gt 0 ]; then
    required="${WB_REQUIRE_FIXTURES:-${CI:-}}"  # the rule tools/test.sh and tests/common/fixtures.h follow
    case "${required,,}" in ""|0|false|no|off) required="" ;; esac
    if [ -n "$required" ]; then
        echo "client tests: fixtures missing, and CI requires them: ${missing[*]} (set WB_FIXTURES_DIR)"
        exit 1
    fi
    echo "client tests: fixtures missing (${missing[*]}); set WB_FIXTURES_DIR to run them."
    echo "client tests: SKIPPING every suite but the fixture-free test/phone_agent_glm.test.mjs"
    suites=(test/phone_agent_glm.test.mjs)
fi
exec node --test --test-concurrency=1 "${suites[@]}"
