#!/usr/bin/env python3
"""CPU histogram benchmark against NumPy on the same data and edges, in one run.

Writes a float32 table (standard normal, seeded) to HDF5, times np.histogram per feature with
the reference-quantile edges (np.quantile + np.unique, driftguard's quantile policy), runs
bench_quantile_histogram on the same file, and writes one JSON with both timings and the ratio.

  python3 bench/peer_numpy_histogram.py --bench build/bench/bench_quantile_histogram \
      --rows 1048576 --features 32 --out results/cpu_histogram_vs_numpy.json
"""
import argparse
import os
import statistics
import tempfile
import time

from peer_common import ensure, provenance, run_bench, write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to bench_quantile_histogram")
    ap.add_argument("--rows", type=int, default=1 << 20)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    np = ensure("numpy")
    h5py = ensure("h5py")
    rng = np.random.default_rng(20261126)
    table = rng.standard_normal((args.rows, args.features), dtype=np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "table.h5")
        with h5py.File(path, "w") as f:
            f.attrs["format"] = "driftguard"
            f.attrs["format_version"] = 1
            f.create_dataset("features", data=table, chunks=(min(args.rows, 65536), args.features))
            f.create_dataset("feature_names", data=[f"x{i}" for i in range(args.features)],
                             dtype=h5py.string_dtype())

        probabilities = np.linspace(0, 1, args.bins + 1)
        edges = [np.unique(np.quantile(table[:, j].astype(np.float64), probabilities))
                 for j in range(args.features)]
        numpy_seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for j in range(args.features):
                np.histogram(table[:, j], bins=edges[j])
            numpy_seconds.append(time.perf_counter() - start)

        context, runs = run_bench([args.bench, f"--input={path}", f"--bins={args.bins}"],
                                  args.repeats)

    # The ratio compares medians, as driftguard's side is the median of its repetitions.
    best_numpy, median_numpy = min(numpy_seconds), statistics.median(numpy_seconds)
    rows = []
    for b in runs:
        seconds = b["seconds"]
        rows.append({"name": b["run_name"], "median_seconds": seconds,
                     "speedup_vs_numpy": median_numpy / seconds})
    result = {
        "what": "quantile-edge histograms of a float32 table: driftguard vs np.histogram per feature",
        **provenance({"numpy": np.__version__}),
        "rows": args.rows, "features": args.features, "bins": args.bins,
        "numpy_seconds_best": best_numpy,
        "numpy_seconds_median": median_numpy,
        "numpy_seconds_all": numpy_seconds,
        "driftguard": rows,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    print(f"np.histogram per feature: median {median_numpy * 1e3:.1f} ms")
    for r in rows:
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.2f} ms ({r['speedup_vs_numpy']:.1f}x numpy)")


if __name__ == "__main__":
    main()
