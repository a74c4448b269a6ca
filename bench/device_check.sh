#!/usr/bin/env bash
# Device check of validate / histogram on a lent GPU machine (H100 / H200), run from the repository
# root after bench/pack_for_device.sh:  source .gpu/env.sh; bash bench/device_check.sh
# Writes under $OUT (at most 5 files): nvidia_smi.json, test_parity_cuda.json,
# test_validate_histogram.json, bench_validate_histogram_<gpu>.json, device_check.log; prints a
# short table last. Budget: tests <= 3 min, benchmark <= 4 min, under 6 min in practice.
set -uo pipefail
out=${OUT:?OUT must name the output folder}
bin=.gpu/bin
log=$out/device_check.log
exec > >(tee "$log") 2>&1
status=0

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
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | grep -oiE 'h[0-9]{3}' | tr 'A-Z' 'a-z')
gpu=${gpu:-gpu}

echo "== parity tests"
timeout 150 "$bin/test_parity_cuda" --gtest_output="json:$out/test_parity_cuda.json" || status=1
if [ -x "$bin/test_validate_histogram" ]; then
  timeout 60 "$bin/test_validate_histogram" --gtest_filter='*/cuda:*Cuda*' \
    --gtest_output="json:$out/test_validate_histogram.json" || status=1
fi

echo "== benchmark"
bench_json=$out/bench_validate_histogram_$gpu.json
timeout 240 "$bin/bench_validate_histogram" --benchmark_filter='/cuda/' --benchmark_min_time=0.3 \
  --benchmark_out="$bench_json" --benchmark_out_format=json || status=1

python3 - "$bench_json" <<'PY' || status=1
import json, sys
try:
    runs = json.load(open(sys.argv[1]))["benchmarks"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"no benchmark results: {e}")
if not runs:
    sys.exit("no CUDA benchmark ran")
print(f"{'benchmark':<66} {'us':>9} {'GB/s':>8} {'copy%':>6}")
for r in runs:
    frac = r.get("copy_fraction")
    print(f"{r['name']:<66} {r['real_time']:>9.1f} {r.get('bytes_per_second', 0) / 1e9:>8.1f} "
          f"{'' if frac is None else f'{100 * frac:.0f}':>6}")
PY
echo "device_check: exit status $status"
exit $status
