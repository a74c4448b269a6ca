#!/usr/bin/env python3
"""MMD permutation test against an alibi-detect-style NumPy computation on the same data, in one run.

Draws two float32 windows (standard normal; the current one shifted by --shift in every feature),
writes them as raw float32 files, times the NumPy computation alibi-detect's MMDDrift performs
(its TensorFlow/PyTorch code, written with NumPy in float64, driftguard's precision): the median
heuristic over the full reference distance matrix (sigma_median), the full pooled kernel matrix
from |x|^2 + |y|^2 - 2 x.y (squared_pairwise_distance), MMD^2 from it (mmd2_from_kernel_matrix),
and --permutations statistics, each on the kernel matrix reordered by np.random.permutation. Then
it runs bench_mmd on the same files and writes one JSON with both timings, the ratio and both
MMD^2 values (they must agree: the same data and definition).

  python3 bench/peer_mmd_numpy.py --bench build/bench/bench_mmd --n 2000 --features 32 \\
      --out results/cpu_mmd_vs_numpy.json
"""
import argparse
import os
import tempfile
import time

import numpy as np

from peer_common import provenance, run_bench, write_json


def squared_pairwise_distance(x, y):
    """alibi_detect.utils.*.distance.squared_pairwise_distance."""
    x2 = (x ** 2).sum(axis=-1, keepdims=True)
    y2 = (y ** 2).sum(axis=-1, keepdims=True)
    return np.maximum(x2 + y2.T - 2.0 * x @ y.T, 1e-30)


def mmd2_from_kernel_matrix(k, m):
    """alibi's mmd2_from_kernel_matrix on a zero-diagonal kernel matrix."""
    n = k.shape[0] - m
    k_xx, k_yy, k_xy = k[:-m, :-m], k[-m:, -m:], k[-m:, :-m]
    return k_xx.sum() / (n * (n - 1)) + k_yy.sum() / (m * (m - 1)) - 2.0 * k_xy.mean()


def alibi_numpy(x_ref, x, permutations, rng):
    """What MMDDrift(x_ref).score(x) computes: sigma, MMD^2, p-value."""
    n = len(x_ref)
    d_ref = squared_pairwise_distance(x_ref, x_ref)
    sigma = np.sqrt(0.5 * np.sort(d_ref.ravel())[n + (n * n - n) // 2 - 1])  # sigma_median
    pooled = np.concatenate([x_ref, x])
    k = np.exp(-squared_pairwise_distance(pooled, pooled) / (2.0 * sigma ** 2))
    np.fill_diagonal(k, 0.0)
    mmd2 = mmd2_from_kernel_matrix(k, len(x))
    permuted = np.empty(permutations)
    for p in range(permutations):
        idx = rng.permutation(len(pooled))
        permuted[p] = mmd2_from_kernel_matrix(k[idx][:, idx], len(x))
    return sigma, mmd2, (mmd2 <= permuted).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to bench_mmd")
    ap.add_argument("--n", type=int, default=2000, help="rows of each window")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument("--shift", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.permutations != 100:
        ap.error("bench_mmd times 100 permutations")

    rng = np.random.default_rng(20261126)
    x_ref = rng.standard_normal((args.n, args.features), dtype=np.float32)
    x = rng.standard_normal((args.n, args.features), dtype=np.float32) + np.float32(args.shift)

    numpy_seconds = []
    for r in range(args.repeats):
        start = time.perf_counter()
        sigma, mmd2, pvalue = alibi_numpy(x_ref.astype(np.float64), x.astype(np.float64),
                                          args.permutations, np.random.default_rng(r))
        numpy_seconds.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = os.path.join(tmp, "reference.f32"), os.path.join(tmp, "current.f32")
        x_ref.tofile(ref_path)
        x.tofile(cur_path)
        context, runs = run_bench([args.bench, f"--reference={ref_path}", f"--current={cur_path}",
                                   f"--features={args.features}"], args.repeats)

    best_numpy = min(numpy_seconds)
    rows = []
    for b in runs:
        seconds = b["seconds"]
        rows.append({"name": b["run_name"], "median_seconds": seconds,
                     "speedup_vs_numpy": best_numpy / seconds, "mmd2": b["mmd2"],
                     "pvalue": b["pvalue"], "sigma": b["sigma"],
                     "mmd2_relative_difference": abs(b["mmd2"] - mmd2) / abs(mmd2)})
    result = {
        "what": "MMD^2 + 100-permutation test: driftguard vs alibi-style NumPy (full kernel "
                "matrix, permuted by index), float64",
        **provenance({"numpy": np.__version__}),
        "n_reference": args.n, "n_current": args.n, "features": args.features,
        "permutations": args.permutations, "shift": args.shift,
        "numpy": {"seconds_best": best_numpy, "seconds_all": numpy_seconds, "sigma": sigma,
                  "mmd2": mmd2, "pvalue_alibi": pvalue},
        "driftguard": rows,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    print(f"numpy (alibi-style): {best_numpy * 1e3:.0f} ms, mmd2={mmd2:.6g}, sigma={sigma:.6g}")
    for r in rows:
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.1f} ms "
              f"({r['speedup_vs_numpy']:.1f}x numpy), mmd2={r['mmd2']:.6g}")


if __name__ == "__main__":
    main()
