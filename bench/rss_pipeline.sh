#!/usr/bin/env bash
# Peak RSS of a windowed scan does not grow with the file: scans a 1 GB and a larger current table
# (default 10 GB) with `driftguard scan --window-rows 1000000` (KS and the distances on, the
# windows held one at a time) under /usr/bin/time -v, and writes both peak RSS figures with their
# ratio to results/cpu_pipeline_rss.json. The tables are made with driftguard-data synth
# (uncompressed float32, 32 features, scenario mean_shift) and deleted afterwards.
#
#   bash bench/rss_pipeline.sh [BUILD_DIR] [LARGE_GB]      # defaults: build-bench, 10
#
# Environment: RSS_DIR (work folder, default /tmp/driftguard_rss), OUT_JSON (default
# results/cpu_pipeline_rss.json). The large size shrinks to what the free disk space allows
# (keeping 5 GB spare). Also records each scan's wall time, rows/s and pipeline timing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${1:-build-bench}
large_gb=${2:-10}
work=${RSS_DIR:-/tmp/driftguard_rss}
out_json=${OUT_JSON:-results/cpu_pipeline_rss.json}
features=32
window_rows=1000000
cli=$build/host/driftguard
data=$build/datasets/driftguard-data
for exe in "$cli" "$data"; do
  [ -x "$exe" ] || { echo "missing $exe (build the driftguard_cli and driftguard-data targets)" >&2; exit 1; }
done
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time"
  apt-get install -y -q time >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi

mkdir -p "$work"
trap 'rm -f "$work"/current_*.h5 "$work"/reference*.h5' EXIT
avail_gb=$(df --output=avail -BG "$work" | tail -1 | tr -dc 0-9)
if (( large_gb + 1 + 5 > avail_gb )); then
  large_gb=$(( avail_gb - 1 - 5 ))
  echo "only ${avail_gb} GB free in $work: the large table is ${large_gb} GB"
fi
(( large_gb > 1 )) || { echo "not enough disk space in $work" >&2; exit 1; }

row_bytes=$(( features * 4 ))
"$data" synth --rows 262144 --features $features --seed 7 --scenario none \
  --output "$work/reference.h5" >/dev/null
"$cli" profile --reference "$work/reference.h5" --output "$work/reference_profile.h5" >/dev/null

results=()
for gb in 1 "$large_gb"; do
  rows=$(( gb * 1000000000 / row_bytes ))
  table=$work/current_${gb}gb.h5
  start=$(date +%s.%N)
  "$data" synth --rows $rows --features $features --seed 11 --scenario mean_shift \
    --output "$table" >/dev/null
  gen_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  echo "generated $table ($rows rows, $(du -BM "$table" | cut -f1)) in ${gen_s}s"
  /usr/bin/time -v "$cli" scan --reference "$work/reference_profile.h5" --current "$table" \
    --window-rows $window_rows --report "$work/report_${gb}gb.json" \
    >"$work/scan_${gb}gb.log" 2>"$work/time_${gb}gb.txt" || {
      cat "$work/time_${gb}gb.txt" >&2
      exit 1
    }
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time_${gb}gb.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time_${gb}gb.txt")
  echo "${gb} GB: peak RSS ${rss_kb} kB, wall ${wall}"
  results+=("$gb:$rows:$rss_kb:$gen_s")
  rm -f "$table"
done

python3 - "$out_json" "$work" "$window_rows" "$features" "${results[@]}" <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from peer_common import provenance, write_json

out, work, window_rows, features = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
runs = []
for item in sys.argv[5:]:
    gb, rows, rss_kb, gen_s = item.split(":")
    report = json.load(open(os.path.join(work, f"report_{gb}gb.json")))
    timing = report.get("timing", {})
    time_text = open(os.path.join(work, f"time_{gb}gb.txt")).read()
    def field(name):
        for line in time_text.splitlines():
            if line.strip().startswith(name):
                return line.split(": ", 1)[1].strip()
        return None
    runs.append({
        "file_gb": int(gb), "rows": int(rows), "file_bytes": int(rows) * features * 4,
        "peak_rss_bytes": int(rss_kb) * 1024, "peak_rss_mib": int(rss_kb) / 1024,
        "windows": len(report.get("windows", [])),
        "wall_clock": field("Elapsed (wall clock) time"),
        "user_seconds": float(field("User time (seconds)")),
        "system_seconds": float(field("System time (seconds)")),
        "cpu_percent": field("Percent of CPU this job got"),
        "major_page_faults": int(field("Major (requiring I/O) page faults")),
        "generate_seconds": float(gen_s),
        "timing": timing,
    })
small, large = runs[0], runs[-1]
ratio = large["peak_rss_bytes"] / small["peak_rss_bytes"]
result = {
    "what": "peak RSS of `driftguard scan --window-rows 1000000` (KS and distances on) on a 1 GB "
            f"and a {large['file_gb']} GB uncompressed float32 table ({features} features), "
            "measured with /usr/bin/time -v",
    **provenance({}),
    "command": "driftguard scan --reference PROFILE --current TABLE --window-rows "
               f"{window_rows} --report REPORT",
    "window_rows": window_rows,
    "window_bytes": window_rows * features * 4,
    "runs": runs,
    "rss_ratio_large_over_small": ratio,
    "differ_by_less_than_10_percent": abs(ratio - 1) < 0.10,
}
write_json(out, result)
print(f"peak RSS: {small['file_gb']} GB -> {small['peak_rss_mib']:.0f} MiB, "
      f"{large['file_gb']} GB -> {large['peak_rss_mib']:.0f} MiB (ratio {ratio:.3f}, "
      f"{'<' if abs(ratio - 1) < 0.10 else '>='} 10% apart); wrote {out}")
PY
