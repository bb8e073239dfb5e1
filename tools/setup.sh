#!/usr/bin/env bash
# Installs what the build and the tests need on Debian 12 (idempotent: does nothing when all is present).
# --fuzz: clang 14 and its libFuzzer runtime instead (tools/fuzz.sh, docs/FUZZING.md) on top of the rest.
set -euo pipefail
fuzz=""
[ "${1:-}" = "--fuzz" ] && fuzz=1
PKGS=(build-essential cmake ninja-build pkg-config git
      qt6-base-dev libgl-dev libsentencepiece-dev nlohmann-json3-dev libqcustomplot-dev
      libcpp-httplib-dev libboost-dev curl libpng-dev libjpeg62-turbo-dev
      libqt6sql6-sqlite libqt6svg6 dpkg-dev
      qt6-multimedia-dev libsndfile1-dev libsoxr-dev)
if [ -n "$fuzz" ]; then
    PKGS+=(clang libclang-rt-14-dev)
fi
missing=()
# The real-client tests (tests/clients) need node >= 18 and npm; Debian's packages only where none is present,
# so a newer node installed another way is kept.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    PKGS+=(nodejs npm)
fi
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all build dependencies are installed"
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
