#!/usr/bin/env bash
# Run here, before a device call: copies the fixtures the GPU checks read (stories260K for the CUDA vs CPU token
# test, the photo for the GLM goldens) into .device-fixtures/, which git ignores through .git/info/exclude and
# the device call carries (../shared beside the checkout does not travel). Then, with the device tool:
#   run(command="OUT=$OUT tools/gpu-check.sh", carry=[".device-fixtures"], timeout_s=570)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="${WB_FIXTURES_DIR:-$(pwd)/../shared/fixtures}"
DST=.device-fixtures
rm -rf "$DST"
mkdir -p "$DST/models" "$DST/images"
cp -r "$SRC/models/stories260K" "$DST/models/"
cp "$SRC/images/llama_cute.jpg" "$DST/images/"
mkdir -p "$DST/tokenizers/goldens"  # wb-make-model's default tokenizer for the benchmark models (bench needs one)
cp "$SRC/tokenizers/goldens/ggml-vocab-llama-spm.gguf" "$DST/tokenizers/goldens/"
grep -qx '/.device-fixtures/' .git/info/exclude 2>/dev/null || echo '/.device-fixtures/' >> .git/info/exclude
mkdir -p "$DST/include" && cp -r /usr/include/nlohmann "$DST/include/"  # header-only json for the minimal build
du -sh "$DST"
