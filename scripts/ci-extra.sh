#!/usr/bin/env bash
# The CI runs after the main suite (scripts/test.sh calls this): the shared library built, installed and
# consumed (scripts/ci-shared.sh), the whole Catch2 suite once under
# AddressSanitizer + UBSan (build-asan/, VKATTN_SANITIZE=ON) and once on the main build with the validation
# layer's synchronization validation, then the fuzzers (scripts/fuzz.sh), then the threading tests under
# ThreadSanitizer (build-tsan/, VKATTN_SANITIZE=thread). Prints the minutes of each part.
# Usage: scripts/ci-extra.sh [shared] [asan] [sync] [fuzz] [tsan]   (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${VKATTN_BUILD_DIR:-build}"
asan_dir="${VKATTN_ASAN_BUILD_DIR:-build-asan}"
tsan_dir="${VKATTN_TSAN_BUILD_DIR:-build-tsan}"
parts=("$@")
((${#parts[@]})) || parts=(shared asan sync fuzz tsan)
minutes() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 60 }'; }

for part in "${parts[@]}"; do
    start=$SECONDS
    case "$part" in
        shared) scripts/ci-shared.sh ;;
        asan)
            echo "== Catch2 suite under ASan + UBSan ($asan_dir) =="
            cmake -S . -B "$asan_dir" -DCMAKE_BUILD_TYPE=Release -DVKATTN_WERROR=ON -DVKATTN_SANITIZE=ON \
                -DVKATTN_BUILD_SAMPLES=OFF ${VKATTN_CMAKE_ARGS:-} >/dev/null
            cmake --build "$asan_dir" -j "$(nproc)" --target vkattn_tests >/dev/null
            echo "built in $(minutes $((SECONDS - start))) min"
            # Leaks are checked, with suppressions for third-party libraries only (scripts/lsan.supp).
            # The validation layer is off here (the main suite and the sync run have it): it only slows ASan.
            ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
            LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0" \
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" VKATTN_VALIDATION=0 \
                "$asan_dir/bin/vkattn_tests" --reporter compact --order decl 2>&1 | tail -n 30
            ;;
        sync)
            echo "== Catch2 [gpu] suite with synchronization validation ($build_dir) =="
            VKATTN_VALIDATION=1 VK_LAYER_ENABLES=VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT \
                "$build_dir/bin/vkattn_tests" "[gpu]" --reporter compact --order decl 2>&1 | tail -n 30
            ;;
        fuzz)
            VKATTN_CLI="$build_dir/bin/vkattn" VKATTN_FUZZ_CMAKE_ARGS="${VKATTN_CMAKE_ARGS:-}" scripts/fuzz.sh all
            ;;
        tsan)
            echo "== threading tests under ThreadSanitizer ($tsan_dir) =="
            cmake -S . -B "$tsan_dir" -DCMAKE_BUILD_TYPE=Release -DVKATTN_WERROR=ON -DVKATTN_SANITIZE=thread \
                -DVKATTN_BUILD_SAMPLES=OFF -DVKATTN_PYTHON=OFF -DVKATTN_WITH_MPI=OFF ${VKATTN_CMAKE_ARGS:-} >/dev/null
            cmake --build "$tsan_dir" -j "$(nproc)" --target vkattn_tests >/dev/null
            echo "built in $(minutes $((SECONDS - start))) min"
            # Every test that starts threads: one Context shared by four threads, Tensors and models outliving
            # their Context, one Tokenizer used by several threads, the CPU matmul's worker threads, the FIFO
            # test's unblocking thread. Reports inside Mesa and the Vulkan loader only are
            # suppressed (scripts/tsan.supp says why); any other report fails the run (exitcode 66).
            TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp:halt_on_error=1:exitcode=66:second_deadlock_stack=1" \
            VKATTN_VALIDATION=0 "$tsan_dir/bin/vkattn_tests" --reporter compact --order decl \
                "[threads],[context],[hostile],matmul matches the triple loop on awkward shapes,Hugging Face tokenizers: one Tokenizer encodes from several threads at once" \
                2>&1 | tail -n 30
            ;;
        *) echo "usage: $0 [shared] [asan] [sync] [fuzz] [tsan]" >&2; exit 2 ;;
    esac
    echo "$part: $(minutes $((SECONDS - start))) min"
done
