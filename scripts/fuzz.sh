#!/usr/bin/env bash
# Fuzzes every parser of the library and the CLI's arguments for a fixed budget (CI runs this from test.sh):
#  1. libFuzzer harnesses (tests/fuzz/fuzz_*.cpp) built with clang, ASan and UBSan in build-fuzz/, each run for
#     VKATTN_FUZZ_RUNS cases (default 3000) from a fixed seed, starting from tests/fuzz/corpus/<target>/.
#  2. The vkattn CLI (VKATTN_CLI, default build/bin/vkattn) over VKATTN_FUZZ_CLI_CASES (default 150) argument
#     lists mutated from valid ones with a fixed seed: each run must exit 0, 1 or 2 (2: exactly one stderr line
#     "vkattn: ..." under 1000 bytes), never by a signal, within 60 s.
# Usage: scripts/fuzz.sh [libfuzzer|cli|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
runs="${VKATTN_FUZZ_RUNS:-3000}"
cli_cases="${VKATTN_FUZZ_CLI_CASES:-150}"
fuzz_dir="${VKATTN_FUZZ_BUILD_DIR:-build-fuzz}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0

run_libfuzzer() {
    echo "== fuzz: libFuzzer harnesses, $runs cases each (clang, ASan + UBSan, $fuzz_dir) =="
    CC=clang CXX=clang++ cmake -S . -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVKATTN_FUZZ=ON \
        -DVKATTN_BUILD_TESTS=OFF -DVKATTN_BUILD_SAMPLES=OFF ${VKATTN_FUZZ_CMAKE_ARGS:-} >/dev/null
    cmake --build "$fuzz_dir" -j "$(nproc)" --target vkattn_fuzzers >/dev/null
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    for corpus in tests/fuzz/corpus/*/; do
        target="$(basename "$corpus")"
        mkdir -p "$work/$target" "$work/tmp-$target"
        local start=$SECONDS
        # New inputs go to the scratch corpus; the repository's stays as it is. -seed fixes the mutations.
        if TMPDIR="$work/tmp-$target" "$fuzz_dir/bin/fuzz_$target" -runs="$runs" -seed=1 -max_len=8192 -timeout=20 \
               -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$work/$target-" \
               "$work/$target" "$corpus" >"$work/$target.log" 2>&1; then
            echo "fuzz_$target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" |
                  grep -o '[0-9]*$') cases, $((SECONDS - start)) s, ok"
        else
            echo "fuzz_$target: FAILED (last lines of its log follow; the input is in the artifact named there)"
            tail -n 40 "$work/$target.log"
            failed=1
        fi
    done
}

# ---- the CLI ----
# Valid, quick argument lists; each case mutates one of them a few times.
bases=(
    "attention --backend cpu --heads 2 --lq 4 --dim 32"
    "attention --heads 2 --kv-heads 1 --lq 4 --lk 6 --dim 32 --causal --window 2 --check"
    "attention --q @Q --k @K --v @K --check"
    "attention --backend cpu --heads 2 --lq 3 --dim 64 --scale 0.5 --seed 7 --out @OUT"
    "bench attention --heads 2 --lq 16 --dim 32 --reps 1 --warmup 0 --impl cpu"
    "bench attention --heads 2 --lq 16 --dim 32 --reps 1 --warmup 0 --json"
    "bench matmul --m 8 --n 8 --k 8 --reps 1 --warmup 0"
    "forward --model synthetic:1,2,64 --tokens 1,2,3 --backend cpu"
    "generate --model synthetic:1,2,64 --tokens 1,2 --max-tokens 2 --backend cpu"
    "tokenize --model @TOK --text hello"
    "devices"
)
options=(--q --k --v --out --batch --heads --kv-heads --lq --lk --dim --seed --dtype --causal --scale --window
         --backend --impl --check --device --warmup --reps --json --sweep --m --n --k --model --tokens --text
         --max-tokens --temperature --top-k --top-p --decode --attention --help)
values=(-1 0 1 -0 0x10 +4 " 4" 4abc 1e3 2.5 nan inf -inf 2147483647 2147483648 4294967297 99999999999999999999
        "" - -- = "a=b" "$(printf 'x%.0s' {1..3000})" "$(printf '\001\033[31m')" "$(printf '\377\376')" f16 f32 bf16 cpu
        vulkan naive fused synthetic: synthetic:0,0,0 synthetic:1,1,-1 synthetic:48,25,1600 @FIFO @DIR /nonexistent
        "1,,2" "1,2,-3" "50256,50257" "<|endoftext|>")

# One line per case: exit code check and stderr shape; the argument list is printed on failure.
run_cli() {
    local exe="${VKATTN_CLI:-build/bin/vkattn}"
    echo "== fuzz: CLI arguments, $cli_cases cases ($exe) =="
    [[ -x "$exe" ]] || { echo "no CLI at $exe (build vkattn_cli first)"; failed=1; return; }
    local d="$work/cli"
    mkdir -p "$d/dir" "$d/tok"
    "$exe" attention --backend cpu --heads 2 --lq 4 --dim 32 --out "$d/q.npy" >/dev/null
    "$exe" attention --backend cpu --heads 1 --lq 5 --dim 32 --seed 3 --out "$d/k.npy" >/dev/null
    cp tests/fuzz/tokenizer/vocab.json tests/fuzz/tokenizer/merges.txt "$d/tok/"
    mkfifo "$d/fifo"
    RANDOM=1  # fixed seed: the same cases on every run
    local start=$SECONDS bad=0 signals=0 timeouts=0 ok=0 refused=0
    for ((i = 0; i < cli_cases; i++)); do
        read -r -a args <<<"${bases[RANDOM % ${#bases[@]}]}"
        local m=$((1 + RANDOM % 3))
        for ((j = 0; j < m; j++)); do
            local n=${#args[@]} p=$((RANDOM % (${#args[@]} + 1)))
            case $((RANDOM % 6)) in
                0|1) ((n > 1)) && args[1 + RANDOM % (n - 1)]="${values[RANDOM % ${#values[@]}]}" ;;  # a hostile value
                2) args=("${args[@]:0:p}" "${options[RANDOM % ${#options[@]}]}" "${args[@]:p}") ;;     # an option inserted
                3) ((n > 1)) && { local q=$((1 + RANDOM % (n - 1))); args=("${args[@]:0:q}" "${args[@]:q+1}"); } ;;  # dropped
                4) args=("${args[@]:0:p}" "${values[RANDOM % ${#values[@]}]}" "${args[@]:p}") ;;       # a stray value
                5) ((n > 1)) && args+=("${args[1 + RANDOM % (n - 1)]}") ;;                            # repeated
            esac
        done
        for k in "${!args[@]}"; do
            args[k]="${args[k]//@Q/$d/q.npy}"; args[k]="${args[k]//@K/$d/k.npy}"; args[k]="${args[k]//@OUT/$d/out.npy}"
            args[k]="${args[k]//@TOK/$d/tok}"; args[k]="${args[k]//@FIFO/$d/fifo}"; args[k]="${args[k]//@DIR/$d/dir}"
        done
        local rc=0
        timeout -k 5 60 "$exe" "${args[@]}" >/dev/null 2>"$d/err" </dev/null || rc=$?
        local lines bytes
        lines=$(wc -l <"$d/err")
        bytes=$(wc -c <"$d/err")
        local verdict=""
        if ((rc == 124 || rc == 137)); then verdict="timeout"; ((timeouts += 1))
        elif ((rc > 128)); then verdict="signal $((rc - 128))"; ((signals += 1))
        elif ((rc == 2)) && { ((lines != 1)) || ((bytes > 1000)) || ! head -c 8 "$d/err" | grep -q '^vkattn: '; }; then
            verdict="exit 2 without exactly one short 'vkattn: ' line ($lines lines, $bytes bytes)"
        elif ((rc != 0 && rc != 1 && rc != 2)); then verdict="exit code $rc"
        fi
        if [[ -n "$verdict" ]]; then
            ((bad += 1))
            printf 'CLI case %d: %s: vkattn' "$i" "$verdict"; printf ' %q' "${args[@]}" | head -c 600; echo
            head -c 600 "$d/err" | cat -v; echo
        elif ((rc == 2)); then ((refused += 1)); else ((ok += 1)); fi
    done
    echo "CLI: $cli_cases cases in $((SECONDS - start)) s: $ok ran, $refused refused with one line, $bad failed ($signals signals, $timeouts timeouts)"
    ((bad == 0)) || failed=1
}

case "$what" in
    libfuzzer) run_libfuzzer ;;
    cli) run_cli ;;
    all) run_libfuzzer; run_cli ;;
    *) echo "usage: $0 [libfuzzer|cli|all]" >&2; exit 2 ;;
esac
if ((failed)); then echo "fuzz: FAILED" >&2; exit 1; fi
echo "fuzz: all passed"
