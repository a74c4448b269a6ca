#!/usr/bin/env python3
"""CPU two-sample KS against scipy.stats.ks_2samp on the same data, in one run.

Writes a reference and a current float32 table (seeded NumPy, standard normal columns, 0.5% NaN,
every other feature of the current window shifted by 0.02) in driftguard's HDF5 layout, times
scipy.stats.ks_2samp per feature with method='asymp' and method='auto' (nan_policy='omit': NaN
dropped, as driftguard does), runs bench_ks on the same two files, and writes one JSON with all
timings and the speedups.

  python3 bench/peer_scipy_ks.py --bench build/bench/bench_ks --rows 1048576 --features 32 \\
      --out results/cpu_ks_vs_scipy.json
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer_common import ensure, provenance, run_bench, write_json, write_table  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to bench_ks")
    ap.add_argument("--rows", type=int, default=1 << 20)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    np = ensure("numpy")
    h5py = ensure("h5py")
    scipy = ensure("scipy")
    from scipy import stats

    rng = np.random.default_rng(20260214)
    shape = (args.rows, args.features)
    reference = rng.standard_normal(shape, dtype=np.float32)
    current = rng.standard_normal(shape, dtype=np.float32)
    current[:, 1::2] += np.float32(0.02)
    for table in (reference, current):
        table[rng.random(shape) < 0.005] = np.nan

    scipy_seconds = {}
    for method in ("asymp", "auto"):
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = [stats.ks_2samp(reference[:, j], current[:, j], method=method,
                                      nan_policy="omit") for j in range(args.features)]
            runs.append(time.perf_counter() - start)
        scipy_seconds[method] = runs
    # driftguard's default is SciPy's method="auto": its sums are checked against these.
    scipy_statistic_sum = float(sum(r.statistic for r in results))
    scipy_pvalue_sum = float(sum(r.pvalue for r in results))

    with tempfile.TemporaryDirectory() as tmp:
        ref_path = os.path.join(tmp, "reference.h5")
        cur_path = os.path.join(tmp, "current.h5")
        write_table(h5py, ref_path, reference, chunk_rows=65536)
        write_table(h5py, cur_path, current, chunk_rows=65536)
        context, runs = run_bench([args.bench, f"--reference={ref_path}", f"--current={cur_path}"],
                                  args.repeats)

    best = {method: min(runs) for method, runs in scipy_seconds.items()}
    # The ratios compare medians, as driftguard's side is the median of its repetitions; a case
    # that does not do ks_2samp's work (sort_columns: sorting only) gets none.
    median = {method: statistics.median(runs) for method, runs in scipy_seconds.items()}
    rows = []
    for b in runs:
        seconds = b["seconds"]
        if "statistic_sum" in b:
            # A ratio only for the same answer: sums over the features of D and of the p-values.
            for key, want in (("statistic_sum", scipy_statistic_sum),
                              ("pvalue_sum", scipy_pvalue_sum)):
                if not abs(b[key] - want) <= 1e-9 * max(1.0, abs(want)):
                    sys.exit(f"{b['run_name']}: {key} {b[key]!r} differs from SciPy's {want!r}; "
                             "no result written")
        row = {"name": b["run_name"], "median_seconds": seconds}
        if not b["run_name"].startswith("sort_columns"):
            row.update(speedup_vs_scipy_asymp=median["asymp"] / seconds,
                       speedup_vs_scipy_auto=median["auto"] / seconds)
        rows.append(row)
    result = {
        "what": "two-sample KS per feature of a float32 window against a reference window: "
                "driftguard (bench_ks) vs scipy.stats.ks_2samp per feature",
        **provenance({"numpy": np.__version__, "scipy": scipy.__version__}),
        "rows": args.rows, "features": args.features,
        "scipy_seconds_best": best,
        "scipy_seconds_median": median,
        "scipy_seconds_all": scipy_seconds,
        "driftguard": rows,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    for method, seconds in median.items():
        print(f"scipy.stats.ks_2samp method={method}, all {args.features} features: "
              f"median {seconds * 1e3:.0f} ms")
    for r in rows:
        ratios = (f" ({r['speedup_vs_scipy_asymp']:.1f}x scipy asymp, "
                  f"{r['speedup_vs_scipy_auto']:.1f}x scipy auto)"
                  if "speedup_vs_scipy_asymp" in r else "")
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.1f} ms{ratios}")


if __name__ == "__main__":
    main()
