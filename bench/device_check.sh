#!/usr/bin/env bash
# Device check on a lent GPU machine (H100 / H200), run from the repository root after
# bench/pack_for_device.sh:  tar -xJf .gpu.tar.xz && source .gpu/env.sh; bash bench/device_check.sh
# Runs the CUDA cases of every suite (batch pass parity, KS, MMD, scoring, the scan's failover),
# the CUDA benchmarks, and the peers on the same data in the same run: xgboost-cpu's
# inplace_predict on all cores (the wheel pack_for_device.sh put in .gpu/wheels), PyTorch's KS
# (sort + searchsorted) and alibi-detect's MMD in PyTorch, both on the GPU.
# Writes under $OUT (7 files): nvidia_smi.json, tests.json (every gtest result, by binary),
# bench_<gpu>.json (every benchmark, by binary), score_vs_xgboost.json, ks_vs_torch.json,
# mmd_vs_torch.json, device_check.log; prints a short table last, and every case against the
# newest committed run on the same GPU (bench/compare_device_runs.py); then, in what is left of the
# budget, bench/device_profile.sh (per-kernel times under ncu, into the log; DEVICE_PROFILE=0
# leaves it out) and, with DEVICE_SANITIZE=1, bench/device_sanitize.sh (compute-sanitizer).
# Budget: DEVICE_CHECK_SECONDS (default 420) for the whole script. Each step runs under its own
# timeout, cut to what is left of the budget; a step reached with under 15 s left is skipped and
# reported, so the JSON files and the table are written even when the budget runs out. Order:
# tests, peers (the issues' GPU targets), the benchmark suites, the profile, then the sanitizer
# (its log is the eighth file).
set -uo pipefail
out=${OUT:?OUT must name the output folder}
bin=.gpu/bin
log=$out/device_check.log
exec > >(tee "$log") 2>&1
status=0
deadline=$((SECONDS + ${DEVICE_CHECK_SECONDS:-420}))
# step LIMIT COMMAND...: runs COMMAND under timeout min(LIMIT, what is left - 10 s).
step() {
  local limit=$1 left=$((deadline - SECONDS - 10))
  shift
  if ((left < 5)); then
    echo "SKIPPED (device-check budget spent): $*"
    status=1
    return
  fi
  ((limit > left)) && limit=$left
  timeout "$limit" "$@" || { echo "FAILED or timed out (exit $?): $1 $2"; status=1; }
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,clocks.sm,temperature.gpu,power.draw,persistence_mode,mig.mode.current \
  --format=csv,noheader >"$out/nvidia_smi.csv" || status=1
python3 - "$out/nvidia_smi.csv" "$out/nvidia_smi.json" <<'PY'
import csv, json, sys
keys = ["name", "driver_version", "memory_total", "clocks_max_sm", "clocks_max_memory", "clocks_sm",
        "temperature_gpu", "power_draw", "persistence_mode", "mig_mode"]
rows = [dict(zip(keys, (v.strip() for v in r))) for r in csv.reader(open(sys.argv[1]))]
json.dump({"gpus": rows}, open(sys.argv[2], "w"), indent=2)
PY
rm -f "$out/nvidia_smi.csv"
nvidia-smi -q | sed -n '1,40p'
# The host's cores (hyperthreads or not) bound the CPU peers' and the CPU backend's figures.
lscpu | grep -E 'Model name|^CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket|L2|L3'
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | grep -oiE 'h[0-9]{3}' | tr 'A-Z' 'a-z')
gpu=${gpu:-gpu}

parts=$(mktemp -d)
echo "== tests"
# The golden files (tests/golden/) are read from the working tree this script runs in.
export DRIFTGUARD_SOURCE_DIR=$PWD
step 120 "$bin/test_parity_cuda" --gtest_output="json:$parts/test_parity_cuda.json"
for t in test_validate_histogram test_ks test_mmd test_score; do
  [ -x "$bin/$t" ] || { echo "missing $bin/$t"; status=1; continue; }
  step 60 "$bin/$t" --gtest_filter='*cuda*:*Cuda*:*CUDA*' --gtest_output="json:$parts/$t.json"
done

# The scan's GPU -> CPU failover on a real device (the CLI and the generator come from .gpu/bin).
if [ -x "$bin/test_pipeline" ]; then
  DRIFTGUARD_CLI=$bin/driftguard DRIFTGUARD_DATA=$bin/driftguard-data step 120 \
    "$bin/test_pipeline" --gtest_filter='*Failover*' --gtest_output="json:$parts/test_pipeline.json"
else
  echo "missing $bin/test_pipeline"
  status=1
fi

echo "== peers (same data, same run)"
export DRIFTGUARD_COMMIT=$(cat .gpu/commit 2>/dev/null) PIP_NO_INDEX=1 PYTHONUNBUFFERED=1
site=$(mktemp -d)
if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
  .gpu/wheels/*.whl; then
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  step 150 python3 bench/peer_score.py --bench "$bin/bench_score" --cli "$bin/driftguard" \
    --check-backends cpu,cuda --repeats 3 --out "$out/score_vs_xgboost.json"
else
  echo "no xgboost-cpu wheel in .gpu/wheels: the scoring peer did not run"
  status=1
fi
step 120 python3 bench/peer_torch_ks.py --bench "$bin/bench_ks" --repeats 3 \
  --out "$out/ks_vs_torch.json"
step 90 python3 bench/peer_mmd.py --peer torch --bench "$bin/bench_mmd" --n 10000 \
  --out "$out/mmd_vs_torch.json"


echo "== benchmarks"
step 150 "$bin/bench_validate_histogram" --benchmark_filter='/cuda/' --benchmark_min_time=0.3 \
  --benchmark_out="$parts/bench_validate_histogram.json" --benchmark_out_format=json
# bench_ks's CUDA cases ran in the PyTorch peer above, on its 4Mi x 64 windows.
for b in bench_mmd bench_score; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b"; status=1; continue; }
  step 60 "$bin/$b" --benchmark_filter='cuda' --benchmark_min_time=0.2 \
    --benchmark_out="$parts/$b.json" --benchmark_out_format=json
done
# KS's sort step: the backend's per-column sorts against streams, a graph, CUB's segmented sort
# and one composite-key sort, on the same 4Mi-key columns.
if [ -x "$bin/bench_column_sort" ]; then
  step 60 "$bin/bench_column_sort" --benchmark_min_time=0.1 \
    --benchmark_out="$parts/bench_column_sort.json" --benchmark_out_format=json
else
  echo "missing $bin/bench_column_sort"
  status=1
fi
# The streaming and windowed scans on the GPU, and on all of the host's cores for comparison,
# against the bare read of the same 1 GiB synth table (hdf5_read runs first: fraction_of_read
# needs it), and pinned H2D against validate_histogram on pinned batches (h2d_fraction). The
# cases carry their own minimum times (1 s).
if [ -x "$bin/bench_pipeline" ]; then
  step 150 "$bin/bench_pipeline" --pipeline_dir=/tmp/driftguard_bench_pipeline \
    --pipeline_sizes_mib=1024 --pipeline_data=synth \
    --benchmark_filter='hdf5_read|/cuda/|scan_stream/cpu|scan_windows/cpu' \
    --benchmark_out="$parts/bench_pipeline.json" --benchmark_out_format=json
  rm -rf /tmp/driftguard_bench_pipeline
else
  echo "missing $bin/bench_pipeline"
  status=1
fi

python3 - "$parts" "$out/tests.json" "$out/bench_$gpu.json" <<'PY' || status=1
import glob, json, os, sys
parts, tests_out, bench_out = sys.argv[1:]
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError) as e:
        return {"error": str(e)}
tests = {os.path.basename(p)[:-5]: load(p) for p in sorted(glob.glob(f"{parts}/test_*.json"))}
json.dump(tests, open(tests_out, "w"), indent=1)
benches = {os.path.basename(p)[:-5]: load(p) for p in sorted(glob.glob(f"{parts}/bench_*.json"))}
json.dump(benches, open(bench_out, "w"), indent=1)
for name, t in tests.items():
    print(f"{name}: {t.get('tests', '?')} tests, {t.get('failures', '?')} failures")
runs = [r for b in benches.values() for r in b.get("benchmarks", [])]
if not runs:
    sys.exit("no CUDA benchmark ran")
print(f"{'benchmark':<66} {'time':>11} {'GB/s':>8} {'ratio%':>6}")
for r in runs:
    # copy_fraction (kernels vs D2D copy), fraction_of_read (scan vs bare read), h2d_fraction
    # (validate_histogram on pinned batches vs pinned H2D)
    frac = next((r[k] for k in ("copy_fraction", "fraction_of_read", "h2d_fraction") if k in r),
                None)
    print(f"{r['name']:<66} {r['real_time']:>8.1f} {r.get('time_unit', 'us'):>2} "
          f"{r.get('bytes_per_second', 0) / 1e9:>8.1f} {'' if frac is None else f'{100 * frac:.0f}':>6}")
# The peers' ratios (the issues' GPU targets), from the JSON each peer script wrote.
print(f"{'driftguard case vs peer':<66} {'time':>11} {'speedup':>8}")
out = os.path.dirname(tests_out)
for peer in ("score_vs_xgboost", "ks_vs_torch", "mmd_vs_torch"):
    result = load(os.path.join(out, peer + ".json"))
    if "error" in result:
        print(f"{peer}: no result ({result['error']})")
        continue
    for r in result["driftguard"]:
        for key in sorted(k for k in r if k.startswith("speedup_vs_")):
            print(f"{r['name'] + ' / ' + key[len('speedup_vs_'):]:<66} "
                  f"{r['median_seconds'] * 1e3:>8.2f} ms {r[key]:>7.1f}x")
PY
# What this tree's changes did: every case against the newest committed run on the same GPU.
baseline=$(ls -d results/"${gpu}"_* 2>/dev/null | sort | tail -1)
if [ -n "$baseline" ]; then
  echo "== against $baseline"
  python3 bench/compare_device_runs.py "$baseline" "$out" || true
fi
if [ "${DEVICE_PROFILE:-1}" = 1 ]; then
  # Informational: where the GPU time of the cases short of their targets goes. A machine where
  # ncu cannot profile (gVisor) says so here and does not fail the check.
  echo "== per-kernel GPU time (ncu)"
  checked=$status
  step 240 bash bench/device_profile.sh
  status=$checked
fi
if [ "${DEVICE_SANITIZE:-0}" = 1 ]; then
  echo "== compute-sanitizer (what is left of the budget)"
  step 400 bash bench/device_sanitize.sh
fi
echo "device_check: exit status $status"
exit $status
