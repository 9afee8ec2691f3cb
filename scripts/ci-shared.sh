#!/usr/bin/env bash
# The shared library end to end (scripts/ci-extra.sh shared): builds libvkattn.so and the CLI alone with
# -DBUILD_SHARED_LIBS=ON (not the tests), checks that the library exports only the public API (no vkattn
# internals, no nlohmann or other third-party symbols), installs it into a temporary prefix and moves that
# prefix (the package must be relocatable), then runs the installed CLI, builds and runs tests/consumer with
# CMake (its configure must print no dependency noise) and a one-file consumer with pkg-config.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${VKATTN_SHARED_BUILD_DIR:-build-shared}"
echo "== shared library ($dir): exports, installed CLI, CMake and pkg-config consumers =="
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# VKATTN_CMAKE_ARGS first, so that the options here win over test.sh's (-DVKATTN_PYTHON=ON).
cmake -S . -B "$dir" ${VKATTN_CMAKE_ARGS:-} -DCMAKE_BUILD_TYPE=Release -DVKATTN_WERROR=ON -DBUILD_SHARED_LIBS=ON \
    -DVKATTN_BUILD_TESTS=OFF -DVKATTN_PYTHON=OFF -DCMAKE_INSTALL_PREFIX="$tmp/staged" >/dev/null
cmake --build "$dir" -j "$(nproc)" --target vkattn vkattn_cli >/dev/null

lib=$(readlink -f "$dir"/src/libvkattn.so)
echo "library: $(basename "$lib"), soname $(objdump -p "$lib" | awk '/SONAME/ { print $2 }')"
# Every exported definition must be vkattn's public API: vkattn:: but not one of its internal namespaces
# (the public headers declare only vkattn, vkattn::model, vkattn::reference, vkattn::ring and vkattn::viz), its
# typeinfo and vtables. The std:: template instances the public API's signatures use are allowed.
nm -DC --defined-only "$lib" | cut -d' ' -f3- > "$tmp/exports.txt"
internal='vkattn::(ops|vk|cpu)::|vkattn::model::(detail|llama_detail)::|nlohmann|::Impl::|\(anonymous namespace\)'
public='^((typeinfo|typeinfo name|vtable|VTT) for )?(vkattn::|std::|__gnu_cxx::|_init$|_fini$|_edata$|_end$|__bss_start$)'
bad=$( { grep -E "$internal" "$tmp/exports.txt" || true; grep -v -E "$public" "$tmp/exports.txt" || true; } | sort -u)
echo "exported: $(wc -l < "$tmp/exports.txt") symbols, $(grep -c -E '^((typeinfo|typeinfo name|vtable) for )?vkattn::' "$tmp/exports.txt") of them vkattn's"
if [[ -n "$bad" ]]; then
    echo "libvkattn.so exports symbols outside the public API:" >&2
    echo "$bad" | head -n 40 >&2
    exit 1
fi

cmake --install "$dir" >/dev/null
mv "$tmp/staged" "$tmp/prefix"  # installed in one place, used from another
prefix="$tmp/prefix"
"$prefix/bin/vkattn" --version
"$prefix/bin/vkattn" attention --heads 2 --lq 33 --dim 64 --causal --check >/dev/null && echo "installed vkattn attention --check: ok"

cmake -S tests/consumer -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/consumer.log" 2>&1
if grep -i -E "missing components|warning|error|not found|could not" "$tmp/consumer.log"; then
    echo "configuring tests/consumer against the shared install is not quiet (above)" >&2
    exit 1
fi
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer"
# ldd's output in a file first: under pipefail, `ldd | grep -q` fails whenever grep stops reading before ldd ends.
ldd "$tmp/consumer/consumer" > "$tmp/ldd.txt"
grep -q "$prefix/lib/libvkattn.so" "$tmp/ldd.txt" || { echo "consumer does not load $prefix/lib" >&2; exit 1; }

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config's flags are meant to split
c++ -std=c++20 -o "$tmp/pc_consumer" tests/consumer/main.cpp $(pkg-config --cflags --libs vkattn) -Wl,-rpath,"$prefix/lib"
"$tmp/pc_consumer" | sed 's/^consumer/pkg-config consumer/'
