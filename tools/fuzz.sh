#!/usr/bin/env bash
# libFuzzer targets of the input parsers (tests/fuzz, docs/FUZZING.md): builds the `fuzz` preset (clang, ASan +
# UBSan) and runs each target for --time seconds on one core, with a corpus that grows between runs
# (build-fuzz/corpus/<target>), seeds from the fixtures and tests/fuzz/seeds, a dictionary where one helps, and
# findings saved to build-fuzz/fuzz-findings/<target>/. Prints per target: executions, exec/s, coverage, new
# findings; exits 1 when any target crashed, leaked, hung or ran out of memory.
#
#   tools/fuzz.sh [--time SECONDS | --runs N [--seed S]] [--build-only] [--no-build] [--rss-limit-mb MB]
#                 [--timeout SECONDS] [targets...]
#
# --runs N --seed S: exactly N inputs from mutation seed S (default 1) per target, whatever the machine's speed,
# so a run is the same run everywhere: what CI uses (a timed run finds new things, and belongs to a person).
#
# WB_FIXTURES_DIR (default ../shared/fixtures) gives the fixture seeds; without them the committed seeds alone
# are used, and a target with no seed at all is an error when CI=true or WB_REQUIRE_FIXTURES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

time_s=60
runs=0
seed=1
build=1
run=1
rss_mb=2048
timeout_s=25
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --time) time_s="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --build-only) run=0; shift ;;
        --no-build) build=0; shift ;;
        --rss-limit-mb) rss_mb="$2"; shift 2 ;;
        --timeout) timeout_s="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

all=(fuzz_gguf fuzz_safetensors fuzz_safetensors_index fuzz_config_json fuzz_tokenizer_json fuzz_tokenizer_model
     fuzz_chat_template fuzz_image fuzz_http_request fuzz_openai_request fuzz_audio fuzz_ggml_audio fuzz_multipart)
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz: unknown target $t (known: ${all[*]})" >&2; exit 2; }
done

fixtures="${WB_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}"
required="${WB_REQUIRE_FIXTURES:-${CI:-}}"
case "${required,,}" in ""|0|false|no|off) required="" ;; esac
bdir="$root/build-fuzz"

if [ "$build" = 1 ]; then
    bash tools/setup.sh --fuzz
    launcher=()
    if command -v ccache >/dev/null; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    fi
    cmake --preset fuzz "${launcher[@]}" >/dev/null
    start=$(date +%s)
    if ! cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}" > "$bdir/build.log" 2>&1; then
        tail -n 60 "$bdir/build.log"
        echo "fuzz: build failed ($bdir/build.log)" >&2
        exit 1
    fi
    echo "fuzz: built ${#targets[@]} target(s) in $(( $(date +%s) - start )) s"
fi
[ "$run" = 1 ] || exit 0

# Seeds made from the fixtures at run time (never copied into the repository): file name → folder per target.
seed_files() {
    case "$1" in
        # Not the goldens' vocab-only GGUFs: building a 32,000- or 50,000-token vocabulary takes 1-4 s per input
        # under the sanitizers; tests/fuzz/seeds/fuzz_gguf has a tiny SPM and a tiny BPE file instead.
        fuzz_gguf) echo models/stories260K/stories260K.gguf ;;
        fuzz_safetensors) echo models/stories260K/hf/model.safetensors ;;
        fuzz_config_json) echo models/stories260K/hf/config.json ;;
        fuzz_tokenizer_model) echo models/stories260K/tok512.model tokenizers/llama2/tokenizer.model ;;
        fuzz_image) echo images/llama_cute.jpg ;;
        fuzz_audio) ;;  # tests/fuzz/seeds/fuzz_audio: jfk.wav's 352 KB made each input ~0.1 s under ASan
        fuzz_ggml_audio) echo audio/for-tests-ggml-tiny.bin audio/silero-v6.2.0-ggml.bin ;;
        fuzz_chat_template) ;;  # the GLM templates of tests/goldens, below
    esac
}
max_len() {
    case "$1" in
        fuzz_gguf) echo 1300000 ;;
        fuzz_safetensors) echo 1300000 ;;
        fuzz_tokenizer_model) echo 600000 ;;
        fuzz_image) echo 200000 ;;
        fuzz_ggml_audio) echo 900000 ;;
        *) echo 65536 ;;
    esac
}
dict() {
    case "$1" in
        fuzz_http_request) echo "$root/tests/fuzz/dict/http.dict" ;;
        fuzz_chat_template) echo "$root/tests/fuzz/dict/jinja.dict" ;;
        fuzz_config_json|fuzz_tokenizer_json|fuzz_safetensors_index|fuzz_openai_request)
            echo "$root/tests/fuzz/dict/json.dict" ;;
    esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
tmp="$bdir/tmp"
failed=()
printf '%-24s %8s %12s %9s %7s %7s %9s  %s\n' target seconds executions exec/s cov ft corpus findings > "$bdir/fuzz-summary.txt"
for t in "${targets[@]}"; do
    seeds="$bdir/seeds/$t"
    corpus="$bdir/corpus/$t"
    found="$bdir/fuzz-findings/$t"
    rm -rf "$seeds" "$tmp"
    mkdir -p "$seeds" "$corpus" "$found" "$tmp"
    for f in $(seed_files "$t"); do
        if [ -f "$fixtures/$f" ]; then
            cp "$fixtures/$f" "$seeds/"
        elif [ -n "$required" ]; then
            echo "fuzz: fixture $f not found under $fixtures: CI requires it" >&2
            exit 1
        else
            echo "fuzz: fixture $f not found under $fixtures: $t runs without it"
        fi
    done
    if [ "$t" = fuzz_chat_template ]; then
        for g in tests/goldens/glm/*/chat_template.jinja; do cp "$g" "$seeds/$(basename "$(dirname "$g")").jinja"; done
    fi
    dirs=("$corpus" "$seeds")
    [ -d "tests/fuzz/seeds/$t" ] && dirs+=("$root/tests/fuzz/seeds/$t")
    # Inputs that once crashed (docs/FUZZING.md): every run replays them first.
    [ -d "tests/fuzz/regressions/$t" ] && dirs+=("$root/tests/fuzz/regressions/$t")
    if [ -z "$(find "${dirs[@]}" -type f -print -quit)" ]; then
        echo "fuzz: $t has no seed at all" >&2
        [ -n "$required" ] && exit 1
    fi
    if [ "$runs" -gt 0 ]; then
        # Deterministic: N inputs from seed S (a time cap of 10 minutes only guards against a stuck machine).
        args=(-runs="$runs" -seed="$seed" -max_total_time=600)
    else
        args=(-max_total_time="$time_s")
    fi
    args+=(-rss_limit_mb="$rss_mb" -timeout="$timeout_s" -max_len="$(max_len "$t")"
           -print_final_stats=1 -artifact_prefix="$found/")
    d=$(dict "$t")
    [ -n "$d" ] && args+=(-dict="$d")
    before=$(ls -1 "$found" | wc -l)
    log="$bdir/fuzz-$t.log"
    if [ "$runs" -gt 0 ]; then what="$runs inputs from seed $seed"; else what="${time_s} s"; fi
    echo "fuzz: $t, $what (log: $log)"
    started=$SECONDS
    set +e
    (cd "$bdir" && TMPDIR="$tmp" "$bdir/tests/fuzz/$t" "${args[@]}" "${dirs[@]}") > "$log" 2>&1
    rc=$?
    set -e
    took=$((SECONDS - started))
    rm -rf "$tmp"
    after=$(ls -1 "$found" | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9.]*[a-zA-Z]*\).*/\1/p' <<< "$last")
    findings=$(( after - before ))
    line=$(printf '%-24s %8s %12s %9s %7s %7s %9s  %s' "$t" "$took" "${execs:-?}" "${eps:-?}" "${cov:-?}" \
           "${ft:-?}" "${corp:-?}" "$findings")
    echo "$line" >> "$bdir/fuzz-summary.txt"
    if [ "$rc" -ne 0 ] || [ "$findings" -gt 0 ]; then
        failed+=("$t")
        echo "fuzz: $t FAILED (exit $rc): the last lines of its log:"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|^    #[0-9]' "$log" | head -n 40 || true
        ls -1t "$found" | head -n 3 | sed "s|^|fuzz: reproduce: $bdir/tests/fuzz/$t $found/|"
    fi
done
cat "$bdir/fuzz-summary.txt"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) found a crash, leak, timeout or OOM: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} target(s), no crash, leak, timeout or out-of-memory"
