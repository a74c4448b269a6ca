#!/usr/bin/env bash
# Builds and tests both configurations: CUDA-enabled (when nvcc exists: kernels compile and link,
# GPU tests skip without a device) and CPU-only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
configs=(cpu-only)
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  configs=(cuda cpu-only)
fi
for config in "${configs[@]}"; do
  build="$root/build-test-$config"
  echo "=== $config: build"
  if [ "$config" = cuda ]; then
    PATH="$PATH:/usr/local/cuda/bin" "$root/scripts/build.sh" "$build" -DDRIFTGUARD_CUDA=ON
  else
    "$root/scripts/build.sh" "$build" -DDRIFTGUARD_CUDA=OFF
  fi
  echo "=== $config: test"
  (cd "$build" && ctest --output-on-failure -j "$(nproc)")
done
