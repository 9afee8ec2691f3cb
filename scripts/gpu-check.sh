#!/usr/bin/env bash
# The one prepared check for a lent NVIDIA GPU (see shared/tools/gpu.md): the build is carried, not made here.
# From the project root on the GPU machine, after gpu-prepare.sh here and with carry [".gl", "build"]:
#
#     bash .gl/on-gpu.sh bash scripts/gpu-check.sh
#
# Steps, each under its own timeout and all under one deadline (GPU_CHECK_BUDGET seconds, default 480):
# the devices; the cooperative-matrix tests, then the rest of the [gpu] tests, with the validation layer;
# the benches `vkattn bench` offers (matmul 4096³ f16 with and without cooperative matrices, attention
# L=4096 H=32 D=128 f16 causal and not, GPT-2 synthetic); PyTorch's SDPA on the same attention shapes.
# Everything lands in $OUT: results.txt (all output, then a summary), *.json (one object per line) and the
# test logs. The exit status is the tests'.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: >"$results"
deadline=$((SECONDS + ${GPU_CHECK_BUDGET:-480}))
summary=()
tests_rc=0
build="${VKATTN_BUILD_DIR:-build}"
bin="$build/bin"

log() { printf '%s\n' "$*" | tee -a "$results"; }

# step NAME TIMEOUT STDOUT_FILE COMMAND...: runs COMMAND under min(TIMEOUT, time left), its stdout into
# STDOUT_FILE (and results.txt), its stderr into results.txt; records "NAME: rc N, S s".
step() {
    local name=$1 limit=$2 out=$3
    shift 3
    local left=$((deadline - SECONDS))
    if ((left < 15)); then
        log "== $name: skipped, the ${GPU_CHECK_BUDGET:-480} s budget is spent"
        summary+=("$name: skipped (budget)")
        return 0
    fi
    ((limit > left)) && limit=$left
    log "== $name (timeout ${limit}s): $*"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>>"$results" | tee -a "$out" >>"$results"
    local rc=${PIPESTATUS[0]}
    summary+=("$name: rc $rc, $((SECONDS - t0)) s$([ "$rc" = 124 ] && echo ' (timed out)')")
    return "$rc"
}

# The test binary reads fixtures from the source path it was built in; where that path does not exist here,
# point it at this checkout.
src_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)
if [ -n "$src_dir" ] && [ ! -e "$src_dir" ]; then
    mkdir -p "$(dirname "$src_dir")" && ln -s "$PWD" "$src_dir" && log "linked $src_dir -> $PWD (test fixtures)"
fi
for d in "${VKATTN_GPT2_VOCAB_DIR:-}" "$build/fixtures/gpt2-vocab" .gl/gpt2-vocab; do
    if [ -n "$d" ] && [ -f "$d/vocab.json" ]; then
        VKATTN_GPT2_VOCAB_DIR=$(cd "$d" && pwd)
        export VKATTN_GPT2_VOCAB_DIR
        break
    fi
done
[ -n "${VKATTN_GPT2_VOCAB_DIR:-}" ] && [ ! -f "$VKATTN_GPT2_VOCAB_DIR/vocab.json" ] && unset VKATTN_GPT2_VOCAB_DIR

log "== machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 || true; } |
    tee -a "$results"
log "VK_DRIVER_FILES=${VK_DRIVER_FILES:-<loader default>} VKATTN_GPT2_VOCAB_DIR=${VKATTN_GPT2_VOCAB_DIR:-<unset>}"

step "devices" 30 "$OUT/devices.txt" "$bin/vkattn" devices
VKATTN_COOPMAT=1 step "devices, VKATTN_COOPMAT=1" 30 "$OUT/devices-coopmat.txt" "$bin/vkattn" devices

# Tests: the validation layer on (any message fails the run). spirv-val is not on this machine: the [spirv]
# test ran where the build was made.
not_here=""
command -v spirv-val >/dev/null || not_here="~[spirv]"
export VKATTN_VALIDATION=1
VKATTN_COOPMAT=1 step "tests [coopmat], VKATTN_COOPMAT=1" 120 "$OUT/tests-coopmat.txt" \
    "$bin/vkattn_tests" "[coopmat]" --reporter console --durations yes --order decl || tests_rc=1
step "tests [gpu] (the rest)" 240 "$OUT/tests-gpu.txt" \
    "$bin/vkattn_tests" "[gpu]~[coopmat]$not_here" --reporter compact --durations yes --order decl || tests_rc=1
unset VKATTN_VALIDATION

if ! "$bin/vkattn" bench --help >/dev/null 2>&1; then
    log "== benches: skipped: '$bin/vkattn bench --help' fails in this build (no bench subcommand)"
    summary+=("benches: skipped (no vkattn bench)")
else
    has() { grep -q -- "$2" <<< "$("$bin/vkattn" bench "$1" --help 2>/dev/null)"; }  # no early close under pipefail
    mm=("$bin/vkattn" bench matmul --m 4096 --n 4096 --k 4096 --json)
    step "bench matmul 4096^3 f16" 60 "$OUT/bench-matmul.json" "${mm[@]}" --dtype f16
    VKATTN_COOPMAT=1 step "bench matmul 4096^3 f16, VKATTN_COOPMAT=1" 60 "$OUT/bench-matmul.json" "${mm[@]}" --dtype f16
    step "bench matmul 4096^3 f32" 60 "$OUT/bench-matmul.json" "${mm[@]}" --dtype f32

    att=("$bin/vkattn" bench attention --heads 32 --lq 4096 --dim 128 --dtype f16 --json)
    impls=(default)
    has attention --impl && impls=(fused naive)
    for impl in "${impls[@]}"; do
        extra=()
        [ "$impl" != default ] && extra=(--impl "$impl")
        step "bench attention L=4096 H=32 D=128 f16 $impl" 60 "$OUT/bench-attention.json" "${att[@]}" "${extra[@]}"
        step "bench attention L=4096 H=32 D=128 f16 $impl causal" 60 "$OUT/bench-attention.json" \
            "${att[@]}" "${extra[@]}" --causal
    done

    if "$bin/vkattn" bench gpt --help >/dev/null 2>&1; then
        gpt=("$bin/vkattn" bench gpt --model synthetic --prompt-tokens 128 --gen-tokens 32 --json)
        if has gpt --dtype; then
            step "bench gpt synthetic f16" 90 "$OUT/bench-gpt.json" "${gpt[@]}" --dtype f16
            VKATTN_COOPMAT=1 step "bench gpt synthetic f16, VKATTN_COOPMAT=1" 90 "$OUT/bench-gpt.json" \
                "${gpt[@]}" --dtype f16
        fi
        step "bench gpt synthetic" 90 "$OUT/bench-gpt.json" "${gpt[@]}"
    else
        log "== bench gpt: skipped: no 'vkattn bench gpt' in this build"
        summary+=("bench gpt: skipped (absent)")
    fi
fi

if command -v python3 >/dev/null; then
    step "pytorch sdpa L=4096 H=32 D=128 f16" 120 "$OUT/sdpa.json" \
        python3 scripts/sdpa_reference.py --heads 32 --len 4096 --dim 128 --dtype f16
else
    summary+=("pytorch sdpa: skipped (no python3)")
fi

log ""
log "== summary (tests exit $tests_rc)"
for s in "${summary[@]}"; do log "  $s"; done
exit $tests_rc
