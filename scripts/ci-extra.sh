#!/usr/bin/env bash
# The CI runs after the main suite (scripts/test.sh calls this): the shared library built, installed and
# consumed (scripts/ci-shared.sh), the whole Catch2 suite once under
# AddressSanitizer + UBSan (build-asan/, VKATTN_SANITIZE=ON) and once on the main build with the validation
# layer's synchronization validation, then the fuzzers (scripts/fuzz.sh). Prints the minutes of each part.
# Usage: scripts/ci-extra.sh [shared] [asan] [sync] [fuzz]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${VKATTN_BUILD_DIR:-build}"
asan_dir="${VKATTN_ASAN_BUILD_DIR:-build-asan}"
parts=("$@")
((${#parts[@]})) || parts=(shared asan sync fuzz)
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
        *) echo "usage: $0 [shared] [asan] [sync] [fuzz]" >&2; exit 2 ;;
    esac
    echo "$part: $(minutes $((SECONDS - start))) min"
done
