#!/usr/bin/env bash
# Shared by demo.sh and test.sh: installs what is missing (Debian/Ubuntu packages, with apt-get when run
# as root or through sudo), then configures and builds vkattn into build/. Source it from the repo root.
set -euo pipefail

packages=(cmake g++ make pkg-config libvulkan-dev glslc spirv-tools mesa-vulkan-drivers vulkan-validationlayers
          catch2 libcli11-dev nlohmann-json3-dev libpcre2-dev libicu-dev libpng-dev pybind11-dev python3-dev
          python3-numpy
          clang libclang-rt-14-dev)  # clang and its runtimes: the libFuzzer harnesses (scripts/fuzz.sh)
packages+=(libopenmpi-dev openmpi-bin)  # ring attention over MPI ranks (VKATTN_WITH_MPI, tests/dist)
[[ "${VKATTN_NEED_NPM:-0}" == 1 ]] && ! command -v npm >/dev/null 2>&1 && packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    if [[ "$p" == npm ]]; then missing+=(npm); continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]]; then
        apt_get=(apt-get)
    elif command -v sudo >/dev/null 2>&1; then
        apt_get=(sudo apt-get)
    else
        echo "error: missing packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
        exit 2
    fi
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}" >/dev/null
fi

build_dir="${VKATTN_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${VKATTN_BUILD_TYPE:-Release}" -DVKATTN_WERROR=ON \
      -DCMAKE_INSTALL_PREFIX="$PWD/$build_dir/install" ${VKATTN_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
