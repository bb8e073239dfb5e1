#!/usr/bin/env bash
# What a session with an NVIDIA GPU runs (docs/CUDA.md, "What a GPU session must run"), in one device call:
#   1. the GLM-4 / GLM-4.1V goldens from HF Transformers (tools/hf-goldens/make_glm_goldens.py, CPU, ~1-2 min)
#   2. a WB_MINIMAL build with CUDA required, then wb-gpu-check (every CUDA op vs the CPU op, NCCL, tokens)
#   3. device-to-device copy rate; wb-bench-device on a 1B-shape random model at FP16 and INT8
#   4. HF Transformers on the same shape and precisions (tools/hf-bench/hf_throughput.py)
# The device returns at most 8 files from $OUT: logs go to $WORK and come back packed as gpu-check-logs.tgz, next
# to summary.txt and glm-goldens.tgz. Prepare first with tools/gpu-prepare.sh (fixtures into .device-fixtures).
# WB_GPU_CHECK_LARGE=1 adds the 7B shape (several more minutes); WB_GPU_CHECK_GOLDENS=0 skips step 1.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
WORK="${WORK:-/tmp/gpu-check-work}"
mkdir -p "$OUT" "$WORK"
BUILD="${BUILD:-build-gpu}"
if [ -z "${WB_FIXTURES_DIR:-}" ]; then
    if [ -d .device-fixtures ]; then WB_FIXTURES_DIR="$(pwd)/.device-fixtures"; else WB_FIXTURES_DIR="$(pwd)/../shared/fixtures"; fi
fi
export WB_FIXTURES_DIR PYTHONUNBUFFERED=1
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
pack() { tar -czf "$OUT/gpu-check-logs.tgz" -C "$WORK" . 2>/dev/null; }
trap pack EXIT

if [ "${WB_GPU_CHECK_GOLDENS:-1}" = 1 ]; then
    log "GLM goldens from HF Transformers (fixtures: $WB_FIXTURES_DIR)"
    timeout 300 python3 tools/hf-goldens/make_glm_goldens.py --out "$WORK/goldens/glm" --fixtures "$WB_FIXTURES_DIR" \
        --tar "$OUT/glm-goldens.tgz" > "$WORK/goldens.txt" 2>&1
    echo "make_glm_goldens exit $?" | tee -a "$OUT/summary.txt"
    tail -15 "$WORK/goldens.txt" | tee -a "$OUT/summary.txt"
fi

log "nvidia-smi"; nvidia-smi 2>&1 | tee "$WORK/nvidia-smi.txt" | head -15
# The GPU machines have CUDA, cmake and ninja but no Qt and none of Debian's -dev packages: a WB_MINIMAL build
# (engine, tools, CUDA module). NCCL and maybe cuBLAS come from pip's nvidia-* packages; nlohmann/json.hpp from
# .device-fixtures/include when the system has none.
SITE="$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)"
findone() { find "$SITE/nvidia" /usr/local/cuda/ /usr/lib/x86_64-linux-gnu /usr/include -name "$1" 2>/dev/null | sort | head -1; }
EXTRA=(); LIBDIRS=""
NCCL_SO="$(findone 'libnccl.so*')"; NCCL_H="$(findone nccl.h)"
[ -n "$NCCL_SO" ] && { EXTRA+=("-DWB_NCCL_LIBRARY=$NCCL_SO"); LIBDIRS="$(dirname "$NCCL_SO")"; }
[ -n "$NCCL_H" ] && EXTRA+=("-DWB_NCCL_INCLUDE=$(dirname "$NCCL_H")")
if ! ls /usr/local/cuda/lib64/libcublas.so* > /dev/null 2>&1; then
    CUBLAS_SO="$(findone 'libcublas.so*')"; CUBLAS_H="$(findone cublas_v2.h)"
    [ -n "$CUBLAS_SO" ] && { EXTRA+=("-DWB_CUBLAS_LIBRARY=$CUBLAS_SO"); LIBDIRS="$LIBDIRS:$(dirname "$CUBLAS_SO")"; }
    [ -n "$CUBLAS_H" ] && EXTRA+=("-DWB_CUBLAS_INCLUDE=$(dirname "$CUBLAS_H")")
fi
[ -f /usr/include/nlohmann/json.hpp ] || EXTRA+=("-DWB_NLOHMANN_INCLUDE_DIR=$(pwd)/.device-fixtures/include")
export LD_LIBRARY_PATH="${LIBDIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "configure + build (WB_MINIMAL, WB_CUDA=ON, sm_90): ${EXTRA[*]}"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWB_MINIMAL=ON -DWB_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${WB_CUDA_ARCHS:-90}" "${EXTRA[@]}" > "$WORK/configure.txt" 2>&1 \
    || { tail -30 "$WORK/configure.txt" | tee -a "$OUT/summary.txt"; exit 1; }
ninja -C "$BUILD" wb_cuda wb-make-model wb-bench-device wb-gpu-check > "$WORK/build.txt" 2>&1 \
    || { grep -E "error|FAILED" "$WORK/build.txt" | head -30 | tee -a "$OUT/summary.txt"; exit 1; }

log "wb-gpu-check: every CUDA op against the CPU op, NCCL world size 1, CUDA FP16 vs CPU FP32 tokens"
"$BUILD/engine/wb-gpu-check" --fixtures "$WB_FIXTURES_DIR" > "$WORK/gpu-check.txt" 2>&1
echo "wb-gpu-check exit $?" | tee -a "$OUT/summary.txt"
grep -E "^(GPU|FAIL|SKIP|INFO)|passed, " "$WORK/gpu-check.txt" | tee -a "$OUT/summary.txt" | tail -40

# Device-to-device copy rate, the yardstick for decode bandwidth (nvbandwidth is not assumed; a torch copy loop).
BW=$(python3 - <<'PY' 2>/dev/null || echo 0
import torch
if not torch.cuda.is_available():
    print(0)
else:
    n = 1 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda"); b = torch.empty_like(a)
    for _ in range(3): b.copy_(a)
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps = 20
    s.record()
    for _ in range(reps): b.copy_(a)
    e.record(); torch.cuda.synchronize()
    print(round(2 * n * reps / (s.elapsed_time(e) / 1e3) / 1e9, 1))  # bytes read + written
PY
)
log "device-to-device copy: ${BW} GB/s (read+write)"

MODELS="$WORK/models"; mkdir -p "$MODELS"
bench() {  # name path precision
    log "bench $1 $3"
    timeout 300 "$BUILD/engine/wb-bench-device" -m "$2" --device cuda --precision "$3" --decode 128 \
        --concurrency 1,4,8,16,64 --bandwidth-gbs "$BW" --json 2>&1 | tee "$WORK/bench-$1-$3.txt" | tail -9 | tee -a "$OUT/summary.txt"
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
hf() {  # shape precision
    log "HF Transformers $1 $2"
    timeout 240 python3 tools/hf-bench/hf_throughput.py --shape "$1" --precision "$2" --concurrency 1,4,8,16,64 \
        --json "$WORK/hf-$1-$2.json" 2>&1 | tee "$WORK/hf-$1-$2.txt" | tail -9 | tee -a "$OUT/summary.txt"
}
hf 1b fp16
hf 1b int8
if [ "${WB_GPU_CHECK_LARGE:-0}" = 1 ]; then hf 7b fp16; fi
log "done: summary.txt, gpu-check-logs.tgz (every log), glm-goldens.tgz in $OUT/"
