#!/usr/bin/env bash
# Builds the CUDA configuration for Hopper (sm_90) into build-gpu/ and packs what
# bench/device_check.sh runs into .gpu/ (binaries plus every shared library they load), so that a
# lent GPU machine without our Debian libraries can run them; adds the xgboost-cpu wheel its peer
# script times (the machine has no network) and the commit the binaries were built from, and
# compresses it into .gpu.tar.xz (about 17 MB against 50: the working tree and what it carries
# travel within 64 MiB). Then, with the device tool:
#   run(command="tar -xJf .gpu.tar.xz && source .gpu/env.sh; DEVICE_SANITIZE=1 bash
#       bench/device_check.sh", carry=[".gpu.tar.xz"], timeout_s=450)
# (On an H200 on 2026-11-27 it took 310 s with the profile and the sanitizer.)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDRIFTGUARD_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90
wanted=(test_parity_cuda test_validate_histogram test_ks test_mmd test_score test_pipeline
        bench_validate_histogram bench_ks bench_mmd bench_score bench_pipeline bench_column_sort
        driftguard_cli driftguard-data)
available=$(cmake --build build-gpu --target help)
targets=()
for t in "${wanted[@]}"; do
  if grep -qw "$t" <<<"$available"; then targets+=("$t"); else echo "skipping $t: no such target"; fi
done
cmake --build build-gpu -j"${JOBS:-2}" --target "${targets[@]}"
binaries=()
for t in "${targets[@]}"; do
  case "$t" in
    driftguard_cli) binaries+=(build-gpu/host/driftguard) ;;  # the CLI's file name
    *) binaries+=("$(find build-gpu -type f -name "$t" -perm -u+x | head -1)") ;;
  esac
done
rm -rf .gpu
../shared/device/pack.sh .gpu "${binaries[@]}"
# The device machine runs Python 3.12; xgboost-cpu is pure-Python plus one shared library and
# needs only NumPy and SciPy, which are there. The version is the one the CPU figures used.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/wheels "xgboost-cpu==${XGBOOST_VERSION:-3.2.0}"
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . ':!results' || commit="$commit+changes"
echo "$commit" >.gpu/commit
du -sh .gpu | awk '{print "with wheels: " $1}'
tar -cJf .gpu.tar.xz .gpu
du -sh .gpu.tar.xz | awk '{print "compressed: " $1 " in .gpu.tar.xz"}'
