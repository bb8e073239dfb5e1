#!/usr/bin/env bash
# One command from a fresh clone: install dependencies, build (Release, "ci" preset) and run every test.
# The shared fixtures are found through WB_FIXTURES_DIR (default: ../shared/fixtures beside the clone). Without them
# the model tests skip on a developer's machine; in CI (CI=true, or WB_REQUIRE_FIXTURES=1) a missing folder stops here
# and each missing fixture fails its test (tests/common/fixtures.h).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export WB_FIXTURES_DIR="${WB_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}"
required="${WB_REQUIRE_FIXTURES:-${CI:-}}"
case "${required,,}" in ""|0|false|no|off) required="" ;; esac
if [ -z "$(ls -A "$WB_FIXTURES_DIR" 2>/dev/null)" ]; then
    if [ -n "$required" ]; then
        echo "test: fixtures not found at $WB_FIXTURES_DIR (absent or empty; set WB_FIXTURES_DIR): CI requires them" >&2
        exit 1
    fi
    echo "test: fixtures not found at $WB_FIXTURES_DIR: model tests will be skipped"
fi
cmake --preset ci
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)" "$@"
