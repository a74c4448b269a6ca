#!/usr/bin/env python3
"""Tree-ensemble scoring against a peer library's own CPU prediction, same model, data and threads.

Trains (or loads, with --model) a binary model of 500 trees of depth 6 on 64 synthetic features,
writes --rows rows of the same distribution (5% NaN) to HDF5, times the peer's prediction with
--threads threads, runs bench_score on the same model and file with the same threads (every
backend it finds: the CPU, and the GPU when one is present), checks through the command-line tool
that the --check-backends give the peer's probabilities on the first rows, and writes one JSON with
all timings and the ratios.

  --peer xgboost (default): binary:logistic, max_depth 6, eta 0.05, saved as JSON; timed
      Booster.inplace_predict (nthread = --threads).
  --peer lightgbm: objective binary, num_leaves 2^depth, max_depth 6, learning_rate 0.05,
      min_data_in_leaf 20, saved as text; timed Booster.predict(num_threads = --threads) on the
      float32 table.

  python3 bench/peer_score.py --bench build/bench/bench_score --threads 2 \
      --rows 1048576 --out results/cpu_score_vs_xgboost.json
  python3 bench/peer_score.py --peer lightgbm --bench build/bench/bench_score --threads 2 \
      --rows 1048576 --out results/cpu_score_vs_lightgbm.json
  # on a GPU machine (bench/device_check.sh): xgboost on all cores against both backends
  python3 bench/peer_score.py --bench .gpu/bin/bench_score --cli .gpu/bin/driftguard \
      --check-backends cpu,cuda --repeats 3 --out "$OUT/score_vs_xgboost.json"

Keys: "peer", "peer_version", "peer_seconds_best", "peer_seconds_all" and, per driftguard run,
"speedup_vs_peer". Exits non-zero, writing nothing, when the probabilities differ by more than
--tolerance.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from peer_common import ensure, provenance, run_bench, write_json, write_table


def synthetic(np, rng, rows, features):
    x = rng.standard_normal((rows, features), dtype=np.float32)
    x[rng.random((rows, features)) < 0.05] = np.nan
    return x


class XGBoostPeer:
    name, call = "xgboost", "inplace_predict"
    what = "binary:logistic tree ensemble scoring: driftguard score vs xgboost inplace_predict"
    suffix = "json"

    def __init__(self):
        self.lib = ensure("xgboost-cpu", "xgboost")

    def train(self, x, y, names, args, path):
        booster = self.lib.train({"objective": "binary:logistic", "max_depth": args.depth,
                                  "eta": 0.05, "nthread": args.threads, "seed": 3},
                                 self.lib.DMatrix(x, y, feature_names=names), args.trees)
        booster.save_model(path)

    def load(self, path, threads):
        self.booster = self.lib.Booster(model_file=path)
        self.booster.set_param({"nthread": threads})

    def predict(self, table):
        return self.booster.inplace_predict(table)


class LightGBMPeer:
    name, call = "lightgbm", "Booster.predict"
    what = "binary tree ensemble scoring: driftguard score vs lightgbm Booster.predict"
    suffix = "txt"

    def __init__(self):
        self.lib = ensure("lightgbm")

    def train(self, x, y, names, args, path):
        params = {"objective": "binary", "num_leaves": 1 << args.depth, "max_depth": args.depth,
                  "learning_rate": 0.05, "num_threads": args.threads, "seed": 3, "verbose": -1,
                  "min_data_in_leaf": 20}
        booster = self.lib.train(params, self.lib.Dataset(x, y, feature_name=names),
                                 num_boost_round=args.trees)
        booster.save_model(path)

    def load(self, path, threads):
        self.booster = self.lib.Booster(model_file=path)
        self.threads = threads

    def predict(self, table):
        return self.booster.predict(table, num_threads=self.threads)


PEERS = {"xgboost": XGBoostPeer, "lightgbm": LightGBMPeer}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=sorted(PEERS), default="xgboost")
    ap.add_argument("--bench", required=True, help="path to bench_score")
    ap.add_argument("--model", help="the peer's model on 64 features (XGBoost JSON or LightGBM "
                                    "text; default: train one)")
    ap.add_argument("--rows", type=int, default=1 << 20)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--trees", type=int, default=500)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tolerance", type=float, default=1e-6,
                    help="largest accepted |probability difference| on the checked rows")
    ap.add_argument("--cli", help="the driftguard command-line tool that checks the "
                                  "probabilities (default: host/driftguard of --bench's build)")
    ap.add_argument("--check-backends", default="cpu",
                    help="comma-separated backends whose probabilities are checked (cpu,cuda)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    np = ensure("numpy")
    h5py = ensure("h5py")
    peer = PEERS[args.peer]()
    rng = np.random.default_rng(20261128)
    names = [f"f{i}" for i in range(args.features)]

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model
        if model_path is None:
            x = synthetic(np, rng, 40000, args.features)
            w = rng.standard_normal(args.features)
            y = (np.nan_to_num(x) @ w + np.sin(3 * np.nan_to_num(x[:, 0])) > 0).astype(int)
            model_path = os.path.join(tmp, f"model.{peer.suffix}")
            peer.train(x, y, names, args, model_path)
        peer.load(model_path, args.threads)

        table = synthetic(np, rng, args.rows, args.features)
        path = os.path.join(tmp, "table.h5")
        write_table(h5py, path, table, names, chunk_rows=16384)

        expected = peer.predict(table)  # warm-up
        peer_seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            peer.predict(table)
            peer_seconds.append(time.perf_counter() - start)

        context, runs = run_bench([args.bench, f"--model={model_path}", f"--input={path}",
                                   f"--threads={args.threads}"], args.repeats)

        # Same numbers, through the command-line tool, on the first rows.
        check_rows = min(args.rows, 4096)
        small = os.path.join(tmp, "small.h5")
        write_table(h5py, small, table[:check_rows], names)
        cli = args.cli or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(args.bench))), "host", "driftguard")
        max_error = {}
        # A ratio is written only for a driftguard that gave the peer's numbers.
        backends = [b for b in args.check_backends.split(",") if b]
        if not backends:
            sys.exit("--check-backends names no backend; no result written")
        if not os.path.exists(cli):
            sys.exit(f"{cli} not found (pass --cli): probabilities not compared; no result written")
        for backend in backends:
            scores = os.path.join(tmp, f"scores_{backend}.h5")
            subprocess.run([cli, "score", "--model", model_path, "--input", small, "--output",
                            scores, "--backend", backend, "-q"], check=True)
            with h5py.File(scores, "r") as f:
                ours_p = f["probability"][:].reshape(-1)
            error = np.abs(ours_p.astype(np.float64) - expected[:check_rows])
            max_error[backend] = float(np.max(error))
            if not max_error[backend] <= args.tolerance:
                for r in np.argsort(-error)[:10]:
                    print(f"row {r}: driftguard/{backend} {ours_p[r]!r} {args.peer} "
                          f"{expected[r]!r}", file=sys.stderr)
                sys.exit(f"{backend}: max |probability difference| {max_error[backend]:.3g} on "
                         f"{check_rows} rows exceeds {args.tolerance:g}; no result written")

    # The ratio compares medians, as driftguard's side is the median of its repetitions.
    best_peer, median_peer = min(peer_seconds), statistics.median(peer_seconds)
    rows = []
    for b in runs:
        seconds = b["seconds"]
        rows.append({"name": b["run_name"], "median_seconds": seconds,
                     "rows_per_second": args.rows / seconds, "speedup_vs_peer": median_peer / seconds})
    result = {
        "what": peer.what,
        **provenance({args.peer: peer.lib.__version__}),
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "threads": args.threads,
        "peer": args.peer, "peer_call": peer.call, "peer_version": peer.lib.__version__,
        "peer_seconds_best": best_peer,
        "peer_seconds_median": median_peer,
        "peer_seconds_all": peer_seconds,
        "driftguard": rows,
        "max_abs_probability_difference_first_rows": max(max_error.values(), default=None),
        "max_abs_probability_difference_first_rows_by_backend": max_error,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    print(f"{args.peer} {peer.call}: {best_peer * 1e3:.1f} ms ({args.threads} threads)")
    for r in rows:
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.1f} ms "
              f"({r['speedup_vs_peer']:.2f}x {args.peer})")
    for backend, error in max_error.items():
        print(f"{backend}: max |probability difference| on {check_rows} rows: {error:.3g}")


if __name__ == "__main__":
    main()
