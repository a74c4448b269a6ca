#!/usr/bin/env bash
# scripts/build.sh BUILD_DIR [cmake options...]: configure and build (Release, all cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: scripts/build.sh BUILD_DIR [cmake options...]}
shift
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
