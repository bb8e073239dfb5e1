#!/usr/bin/env bash
# One command from a fresh clone: install dependencies, build (Release, "ci" preset) and run every test.
# The shared fixtures are found through WB_FIXTURES_DIR (default: ../shared/fixtures beside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export WB_FIXTURES_DIR="${WB_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}"
[ -d "$WB_FIXTURES_DIR" ] || echo "test: fixtures not found at $WB_FIXTURES_DIR: model tests will be skipped"
cmake --preset ci
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)" "$@"
