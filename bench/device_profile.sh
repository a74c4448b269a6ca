#!/usr/bin/env bash
# Per-kernel GPU time of the CUDA cases still short of the issues' targets, with Nsight Compute,
# so that the next change goes to the kernel that takes the time. Run on the device machine after
# bench/device_check.sh, which calls it in what is left of its budget:
#   tar -xJf .gpu.tar.xz && source .gpu/env.sh; bash bench/device_profile.sh
# Each case runs one iteration (--benchmark_min_time=0) under ncu, which times every kernel launch
# of the process (gpu__time_duration.sum; the clocks are left as they are), the benchmark's
# warm-up calls included: the launch counts tell them apart. Memory copies are not kernels: a
# case's wall time minus its kernels' time is what the copies and the host take. Prints, per
# case, the kernels by total time. Exit 3 when ncu is missing or cannot profile (gVisor).
set -uo pipefail
bin=.gpu/bin
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null |
  head -1)
[ -n "$ncu" ] || { echo "device_profile: no ncu on this machine"; exit 3; }
# binary | benchmark filter
cases=(
  "bench_score|score_trees/cuda/rows:1048576/"
  "bench_ks|ks_two_sample_resident/cuda"
  "bench_mmd|mmd/cuda/n:10000/"
)
work=$(mktemp -d)
status=0
for entry in "${cases[@]}"; do
  IFS='|' read -r binary filter <<<"$entry"
  report=$work/$binary
  echo "== $binary $filter"
  if ! timeout 120 "$ncu" --clock-control none --metrics gpu__time_duration.sum --launch-count 4000 \
    --export "$report" --force-overwrite "$bin/$binary" --benchmark_filter="$filter" \
    --benchmark_min_time=0 >"$work/run.log" 2>&1; then
    tail -5 "$work/run.log"
    grep -q "not supported\|ERR_NVGPUCTRPERM\|Profiling is not supported" "$work/run.log" && exit 3
    status=1
    continue
  fi
  grep -E "^(score|ks_|mmd)" "$work/run.log" | head -3
  "$ncu" --import "$report.ncu-rep" --csv --page raw --print-units base \
    --metrics gpu__time_duration.sum >"$work/raw.csv" 2>/dev/null ||
    { echo "ncu --import failed"; status=1; continue; }
  python3 - "$work/raw.csv" <<'PY' || status=1
import csv, sys
from collections import defaultdict
rows = list(csv.reader(open(sys.argv[1])))
header = rows[0]
name_col = next(i for i, h in enumerate(header) if h in ("Kernel Name", "Function Name"))
time_col = header.index("gpu__time_duration.sum")
# The second row names each column's unit (nsecond with --print-units base; scaled otherwise).
scale = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9}.get(rows[1][time_col], 1.0)
total, count = defaultdict(float), defaultdict(int)


def kernel_name(raw):
    """ "void ns::detail::(anonymous namespace)::kernel<...>(args)" -> "ns::kernel": template
    arguments, parameter lists and anonymous namespaces (written "(anonymous namespace)" or
    "<unnamed>") are bracketed, so everything inside brackets goes."""
    kept, depth = [], 0
    for ch in raw.removeprefix("void "):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(depth - 1, 0)
        elif depth == 0:
            kept.append(ch)
    parts = [p.strip() for p in "".join(kept).split("::") if p.strip()]
    return "::".join(parts[:1] + parts[1:][-1:]) or raw


for r in rows[2:]:
    try:
        ns = float(r[time_col].replace(",", "")) * scale
    except (ValueError, IndexError):
        continue
    name = kernel_name(r[name_col])
    total[name] += ns
    count[name] += 1
grand = sum(total.values())
print(f"{'kernel':<62} {'launches':>8} {'total ms':>9} {'share':>6}")
for name, ns in sorted(total.items(), key=lambda kv: -kv[1])[:12]:
    print(f"{name:<62} {count[name]:>8} {ns / 1e6:>9.3f} {100 * ns / grand:>5.1f}%")
print(f"{'all kernels':<62} {sum(count.values()):>8} {grand / 1e6:>9.3f}")
PY
done
rm -rf "$work"
echo "device_profile: exit status $status"
exit $status
