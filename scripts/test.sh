#!/usr/bin/env bash
# Builds and tests every configuration CI runs: CUDA-enabled (when nvcc exists: kernels compile
# and link, GPU tests skip without a device), CPU-only, and the suites that parse untrusted input
# (models, HDF5 files, schemas, profiles) under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
configs=(cpu-only sanitize)
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  configs=(cuda cpu-only sanitize)
fi
untrusted_input_tests=(test_score test_hdf5_io test_schema test_profile test_pipeline)
for config in "${configs[@]}"; do
  build="$root/build-test-$config"
  echo "=== $config: build"
  case "$config" in
    cuda) PATH="$PATH:/usr/local/cuda/bin" "$root/scripts/build.sh" "$build" -DDRIFTGUARD_CUDA=ON ;;
    cpu-only) "$root/scripts/build.sh" "$build" -DDRIFTGUARD_CUDA=OFF ;;
    sanitize)
      cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDRIFTGUARD_CUDA=OFF \
        -DDRIFTGUARD_SANITIZE=ON -DDRIFTGUARD_BUILD_BENCHMARKS=OFF >/dev/null
      cmake --build "$build" -j "$(nproc)" --target "${untrusted_input_tests[@]}" ;;
  esac
  echo "=== $config: test"
  if [ "$config" = sanitize ]; then
    regex=$(IFS='|'; echo "^(${untrusted_input_tests[*]})\.")
    (cd "$build" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ctest --output-on-failure -j "$(nproc)" -R "$regex")
  else
    (cd "$build" && ctest --output-on-failure -j "$(nproc)")
  fi
done
