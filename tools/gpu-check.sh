#!/usr/bin/env bash
# What a session with an NVIDIA GPU runs to validate the CUDA backend (docs/CUDA.md): build with CUDA required,
# run the gpu-labelled tests, then the benchmarks on random-weight models. Writes everything under ${OUT:-gpu-check}/.
# Aimed at under ~8 minutes on one H100 (WB_GPU_CHECK_LARGE=1 adds a 7B-shape model: several more minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
BUILD="${BUILD:-build-gpu}"
export WB_FIXTURES_DIR="${WB_FIXTURES_DIR:-$(pwd)/../shared/fixtures}"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

log "nvidia-smi"; nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" | head -15
log "configure + build (WB_CUDA=ON)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWB_CUDA=ON -DWB_BUILD_GUI=OFF \
    -DWB_FIXTURES_DIR="$WB_FIXTURES_DIR" > "$OUT/configure.txt" 2>&1 || { tail -30 "$OUT/configure.txt"; exit 1; }
ninja -C "$BUILD" wb wb_cuda wb-make-model wb-bench-device tst_gpu_ops tst_model_parallel > "$OUT/build.txt" 2>&1 \
    || { tail -40 "$OUT/build.txt"; exit 1; }

log "wb devices"; "$BUILD/engine/wb" devices | tee "$OUT/devices.txt"
log "tests (gpu label, then tensor parallel on CPU)"
(cd "$BUILD" && ctest -L gpu --output-on-failure -V) > "$OUT/ctest-gpu.txt" 2>&1; echo "ctest gpu exit $?" | tee -a "$OUT/summary.txt"
grep -E "PASS|FAIL|SKIP|QINFO|Totals" "$OUT/ctest-gpu.txt" | tee -a "$OUT/summary.txt" | tail -40
(cd "$BUILD" && ctest -R tst_model_parallel --output-on-failure) > "$OUT/ctest-parallel.txt" 2>&1; tail -3 "$OUT/ctest-parallel.txt"

# Device-to-device copy rate, the yardstick for decode bandwidth (nvbandwidth is not assumed; a cudaMemcpy loop).
BW=$(python3 - <<'PY' 2>/dev/null || echo 0
import ctypes, time
rt = ctypes.CDLL("libcudart.so")
n = 1 << 30; a = ctypes.c_void_p(); b = ctypes.c_void_p()
rt.cudaMalloc(ctypes.byref(a), ctypes.c_size_t(n)); rt.cudaMalloc(ctypes.byref(b), ctypes.c_size_t(n))
for _ in range(3): rt.cudaMemcpy(b, a, ctypes.c_size_t(n), 3)
rt.cudaDeviceSynchronize(); t = time.time(); reps = 20
for _ in range(reps): rt.cudaMemcpy(b, a, ctypes.c_size_t(n), 3)
rt.cudaDeviceSynchronize(); dt = time.time() - t
print(round(2 * n * reps / dt / 1e9, 1))  # read + write
PY
)
log "device-to-device copy: ${BW} GB/s (read+write)"

MODELS="$OUT/models"; mkdir -p "$MODELS"
bench() {  # name path precision
    log "bench $1 $3"
    timeout 300 "$BUILD/engine/wb-bench-device" -m "$2" --device cuda --precision "$3" --decode 128 \
        --concurrency 1,4,8,16,64 --bandwidth-gbs "$BW" --json 2>&1 | tee "$OUT/bench-$1-$3.txt" | tail -9
}
"$BUILD/engine/wb-make-model" --preset 1b --dtype f16 --out "$MODELS/1b.gguf" > /dev/null
bench 1b "$MODELS/1b.gguf" fp16
bench 1b "$MODELS/1b.gguf" int8
if [ "${WB_GPU_CHECK_LARGE:-0}" = 1 ]; then
    "$BUILD/engine/wb-make-model" --preset 7b --dtype f16 --out "$MODELS/7b.gguf" > /dev/null
    bench 7b "$MODELS/7b.gguf" fp16
    bench 7b "$MODELS/7b.gguf" int8
fi
rm -rf "$MODELS"
log "done: results in $OUT/"
