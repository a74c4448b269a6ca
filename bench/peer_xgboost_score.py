#!/usr/bin/env python3
"""CPU tree-ensemble scoring against xgboost's inplace_predict on the same model, data and threads.

Trains (or loads, with --model) a binary:logistic model of 500 trees of depth 6 on 64 synthetic
features, writes --rows rows of the same distribution (5% NaN) to HDF5, times
Booster.inplace_predict with nthread = --threads, runs bench_score on the same model and file with
the same threads, checks that both give the same probabilities, and writes one JSON with both
timings and the ratio.

  python3 bench/peer_xgboost_score.py --bench build/bench/bench_score --threads 2 \
      --rows 1048576 --out results/cpu_score_vs_xgboost.json
"""
import argparse
import os
import subprocess
import tempfile
import time

from peer_common import ensure, provenance, run_bench, write_json


def synthetic(np, rng, rows, features):
    x = rng.standard_normal((rows, features), dtype=np.float32)
    x[rng.random((rows, features)) < 0.05] = np.nan
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to bench_score")
    ap.add_argument("--model", help="an XGBoost JSON model on 64 features (default: train one)")
    ap.add_argument("--rows", type=int, default=1 << 20)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--trees", type=int, default=500)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    np = ensure("numpy")
    h5py = ensure("h5py")
    xgb = ensure("xgboost-cpu", "xgboost")
    rng = np.random.default_rng(20261128)
    names = [f"f{i}" for i in range(args.features)]

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model
        if model_path is None:
            x = synthetic(np, rng, 40000, args.features)
            w = rng.standard_normal(args.features)
            y = (np.nan_to_num(x) @ w + np.sin(3 * np.nan_to_num(x[:, 0])) > 0).astype(int)
            booster = xgb.train({"objective": "binary:logistic", "max_depth": args.depth,
                                 "eta": 0.05, "nthread": args.threads, "seed": 3},
                                xgb.DMatrix(x, y, feature_names=names), args.trees)
            model_path = os.path.join(tmp, "model.json")
            booster.save_model(model_path)
        booster = xgb.Booster(model_file=model_path)
        booster.set_param({"nthread": args.threads})

        table = synthetic(np, rng, args.rows, args.features)
        path = os.path.join(tmp, "table.h5")
        with h5py.File(path, "w") as f:
            f.attrs["format"] = "driftguard"
            f.attrs["format_version"] = 1
            f.create_dataset("features", data=table, chunks=(min(args.rows, 16384), args.features))
            f.create_dataset("feature_names", data=names, dtype=h5py.string_dtype())

        expected = booster.inplace_predict(table)  # warm-up
        xgb_seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            booster.inplace_predict(table)
            xgb_seconds.append(time.perf_counter() - start)

        context, runs = run_bench([args.bench, f"--model={model_path}", f"--input={path}",
                                   f"--threads={args.threads}"], args.repeats)

        # Same numbers, through the command-line tool, on the first rows.
        check_rows = min(args.rows, 4096)
        small = os.path.join(tmp, "small.h5")
        with h5py.File(small, "w") as f:
            f.attrs["format"] = "driftguard"
            f.attrs["format_version"] = 1
            f.create_dataset("features", data=table[:check_rows])
            f.create_dataset("feature_names", data=names, dtype=h5py.string_dtype())
        cli = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.bench))), "host",
                           "driftguard")
        max_error = None
        if os.path.exists(cli):
            scores = os.path.join(tmp, "scores.h5")
            subprocess.run([cli, "score", "--model", model_path, "--input", small, "--output",
                            scores, "--backend", "cpu", "-q"], check=True)
            with h5py.File(scores, "r") as f:
                ours_p = f["probability"][:].reshape(-1)
            max_error = float(np.max(np.abs(ours_p - expected[:check_rows])))

    best_xgb = min(xgb_seconds)
    rows = []
    for b in runs:
        seconds = b["seconds"]
        rows.append({"name": b["run_name"], "median_seconds": seconds,
                     "rows_per_second": args.rows / seconds,
                     "speedup_vs_xgboost": best_xgb / seconds})
    result = {
        "what": "binary:logistic tree ensemble scoring: driftguard score vs xgboost inplace_predict",
        **provenance({"xgboost": xgb.__version__}),
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "threads": args.threads,
        "xgboost_seconds_best": best_xgb,
        "xgboost_seconds_all": xgb_seconds,
        "driftguard": rows,
        "max_abs_probability_difference_first_rows": max_error,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    print(f"xgboost inplace_predict: {best_xgb * 1e3:.1f} ms ({args.threads} threads)")
    for r in rows:
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.1f} ms "
              f"({r['speedup_vs_xgboost']:.2f}x xgboost)")
    if max_error is not None:
        print(f"max |probability difference| on {check_rows} rows: {max_error:.3g}")


if __name__ == "__main__":
    main()
