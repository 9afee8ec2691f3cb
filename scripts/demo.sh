#!/usr/bin/env bash
# One command for a fresh Debian or Ubuntu machine: install what is missing, build, run `vkattn demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec "${VKATTN_BUILD_DIR:-build}/bin/vkattn" demo "$@"
