#!/usr/bin/env bash
# What a session with an NVIDIA GPU runs (docs/CUDA.md, "What a GPU session must run"), in one device call:
#   1. the GLM-4 / GLM-4.1V goldens from HF Transformers (tools/hf-goldens/make_glm_goldens.py, CPU, ~1-2 min)
#   2. a WB_MINIMAL build with CUDA required, then wb-gpu-check (every CUDA op vs the CPU op, NCCL, tokens)
#   3. device-to-device copy rate; wb-bench-device on a 1B-shape random model at FP16 and INT8
#   4. HF Transformers on the same shape and precisions (tools/hf-bench/hf_throughput.py)
# The device returns at most 8 files from $OUT: logs go to $WORK and come back packed as gpu-check-logs.tgz, next
# to summary.txt and glm-goldens.tgz. Prepare first with tools/gpu-prepare.sh (fixtures into .device-fixtures).
# WB_GPU_CHECK_LARGE=1 adds the 7B shape (several more minutes); WB_GPU_CHECK_GOLDENS=1 runs step 1 (off by
# default: the committed goldens are made on the CPU, and the minutes are worth more to the GPU checks).
# Every step's timeout is cut to what is left of WB_GPU_CHECK_BUDGET seconds (default 530, inside one 570 s call),
# so the logs always come back; a step with no time left is reported as "not run".
set -uo pipefail
BUDGET="${WB_GPU_CHECK_BUDGET:-530}"
left() {  # seconds a step may take: min(its own limit, what is left of the budget)
    local rest=$((BUDGET - SECONDS)); [ "$rest" -lt 1 ] && rest=1; [ "$rest" -lt "$1" ] && echo "$rest" || echo "$1"
}
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

if [ "${WB_GPU_CHECK_GOLDENS:-0}" = 1 ]; then
    log "GLM goldens from HF Transformers (fixtures: $WB_FIXTURES_DIR)"
    timeout 300 python3 tools/hf-goldens/make_glm_goldens.py --out "$WORK/goldens/glm" --fixtures "$WB_FIXTURES_DIR" \
        --tar "$OUT/glm-goldens.tgz" > "$WORK/goldens.txt" 2>&1
    echo "make_glm_goldens exit $?" | tee -a "$OUT/summary.txt"
    tail -15 "$WORK/goldens.txt" | tee -a "$OUT/summary.txt"
fi

log "nvidia-smi"; nvidia-smi 2>&1 | tee "$WORK/nvidia-smi.txt" | head -15
# Without a GPU (a dry run here) every step that can runs (the build, the harness against the CPU); the rest say
# "not run (no GPU)".
HAVE_GPU=0; nvidia-smi -L > /dev/null 2>&1 && HAVE_GPU=1
[ "$HAVE_GPU" = 1 ] || log "no NVIDIA GPU answers nvidia-smi: a dry run"
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
log "configure + build (WB_MINIMAL, WB_CUDA=ON, architectures ${WB_CUDA_ARCHS:-89;90}): ${EXTRA[*]}"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWB_MINIMAL=ON -DWB_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${WB_CUDA_ARCHS:-89;90}" "${EXTRA[@]}" > "$WORK/configure.txt" 2>&1 \
    || { tail -30 "$WORK/configure.txt" | tee -a "$OUT/summary.txt"; exit 1; }
timeout "$(left 300)" ninja -C "$BUILD" wb_cuda wb-make-model wb-bench-device wb-gpu-check > "$WORK/build.txt" 2>&1 \
    || { grep -E "error|FAILED" "$WORK/build.txt" | head -30 | tee -a "$OUT/summary.txt"; exit 1; }

log "wb-gpu-check: every CUDA op against the CPU op, NCCL world size 1, CUDA FP16 vs CPU FP32 tokens"
log "build done at ${SECONDS}s"
timeout "$(left 300)" "$BUILD/engine/wb-gpu-check" --fixtures "$WB_FIXTURES_DIR" > "$WORK/gpu-check.txt" 2>&1
echo "wb-gpu-check exit $? at ${SECONDS}s (124: timed out, 77: no GPU)" | tee -a "$OUT/summary.txt"
if [ "$HAVE_GPU" = 0 ]; then
    log "wb-gpu-check --device cpu (the harness against itself; says nothing about CUDA)"
    timeout "$(left 300)" "$BUILD/engine/wb-gpu-check" --device cpu --fixtures "$WB_FIXTURES_DIR" > "$WORK/gpu-check-cpu.txt" 2>&1
    echo "wb-gpu-check --device cpu exit $?" | tee -a "$OUT/summary.txt"
    grep -E "^FAIL|passed, " "$WORK/gpu-check-cpu.txt" | tee -a "$OUT/summary.txt"
fi
grep -E "^(GPU|FAIL|SKIP|INFO)|passed, " "$WORK/gpu-check.txt" >> "$OUT/summary.txt"
grep -E "^(GPU|FAIL)|passed, " "$WORK/gpu-check.txt" | tail -40
cp "$WORK/gpu-check.txt" "$OUT/" 2>/dev/null

# compute-sanitizer (memcheck) on the op checks at small shapes: out-of-bounds and misaligned accesses, API errors.
if [ "$HAVE_GPU" = 1 ] && command -v compute-sanitizer > /dev/null && [ "$(left 90)" -gt 20 ]; then
    log "compute-sanitizer memcheck on the op checks"
    for f in normsAndElementwise rope/ "matmulAndEmbed/i8 m=5" int8EdgeRows "matmulAndEmbed/f16 m=64" \
        pagedAttention/hd128 gatherAndSample stagedCopies; do
        timeout "$(left 60)" compute-sanitizer --tool memcheck --error-exitcode 3 "$BUILD/engine/wb-gpu-check" \
            --fixtures "$WB_FIXTURES_DIR" --filter "$f" >> "$WORK/sanitizer.txt" 2>&1
        echo "compute-sanitizer '$f' exit $?" | tee -a "$OUT/summary.txt"
    done
    grep -E "ERROR SUMMARY|Invalid|FAIL" "$WORK/sanitizer.txt" | sort | uniq -c | head -20 | tee -a "$OUT/summary.txt"
else
    log "compute-sanitizer: not run (no GPU, not installed or no time left)"
fi

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
if [ "$BW" = 0 ]; then
    log "device-to-device copy: not run (no GPU, or torch sees no CUDA device)"
else
    log "device-to-device copy: ${BW} GB/s (read+write)"
fi

MODELS="$WORK/models"; mkdir -p "$MODELS"
bench() {  # name path precision
    log "bench $1 $3"
    [ "$HAVE_GPU" = 1 ] || { log "bench $1 $3: not run (no GPU)"; return; }
    [ -f "$2" ] || { log "bench $1 $3: not run (no model: wb-make-model failed)"; return; }
    [ "$(left 120)" -gt 20 ] || { log "bench $1 $3: not run (no time left)"; return; }
    timeout "$(left 120)" "$BUILD/engine/wb-bench-device" -m "$2" --device cuda --precision "$3" --decode 128 \
        --concurrency 1,4,8,16,64 --bandwidth-gbs "$BW" --json 2>&1 | tee "$WORK/bench-$1-$3.txt" | tail -9 | tee -a "$OUT/summary.txt"
}
TOK="$WB_FIXTURES_DIR/tokenizers/goldens/ggml-vocab-llama-spm.gguf"  # the bench loads a tokenizer: give it one
makeModel() {  # preset path
    "$BUILD/engine/wb-make-model" --preset "$1" --dtype f16 --tokenizer-from "$TOK" --out "$2" > "$WORK/make-$1.txt" 2>&1 \
        || { log "wb-make-model --preset $1 failed:"; tail -3 "$WORK/make-$1.txt" | tee -a "$OUT/summary.txt"; rm -f "$2"; }
}
[ "$HAVE_GPU" = 1 ] && makeModel 1b "$MODELS/1b.gguf"
bench 1b "$MODELS/1b.gguf" fp16
bench 1b "$MODELS/1b.gguf" int8
if [ "${WB_GPU_CHECK_LARGE:-0}" = 1 ]; then
    makeModel 7b "$MODELS/7b.gguf"
    bench 7b "$MODELS/7b.gguf" fp16
    bench 7b "$MODELS/7b.gguf" int8
fi
rm -rf "$MODELS"
hf() {  # shape precision
    log "HF Transformers $1 $2"
    [ "$HAVE_GPU" = 1 ] || { log "HF Transformers $1 $2: not run (no GPU)"; return; }
    [ "$(left 120)" -gt 20 ] || { log "HF Transformers $1 $2: not run (no time left)"; return; }
    timeout "$(left 120)" python3 tools/hf-bench/hf_throughput.py --shape "$1" --precision "$2" --concurrency 1,4,8,16,64 \
        --json "$WORK/hf-$1-$2.json" 2>&1 | tee "$WORK/hf-$1-$2.txt" | tail -9 | tee -a "$OUT/summary.txt"
}
hf 1b fp16
hf 1b int8
if [ "${WB_GPU_CHECK_LARGE:-0}" = 1 ]; then hf 7b fp16; fi
GOLDENS_TGZ=""; [ -f "$OUT/glm-goldens.tgz" ] && GOLDENS_TGZ=", glm-goldens.tgz"
log "done at ${SECONDS}s: summary.txt, gpu-check-logs.tgz (every log)$GOLDENS_TGZ in $OUT/"
