#!/usr/bin/env python3
"""Golden MMD values computed by alibi-detect's own code in float64 -> mmd_alibi.json.

    python3 tests/golden/make_mmd_golden.py [--out tests/golden/mmd_alibi.json]

alibi-detect 0.13.0 needs NumPy < 2 and a deep-learning backend, so when it cannot be imported the
script creates a virtual environment (DRIFTGUARD_ALIBI_VENV, default
~/.cache/driftguard/alibi-venv) with the pinned versions below and re-runs itself there.

Each case holds a reference and a current window (float32 values widened to float64) and:
- alibi's MMDDrift (TensorFlow backend, Keras floatx set to float64 so that nothing is rounded to
  float32) run end to end: the inferred sigma (GaussianRBF + sigma_median on x_ref vs x_ref, the
  default configure_kernel_from_x_ref=True) and its `distance`, the unbiased MMD^2 of
  mmd2_from_kernel_matrix.
- The permutation test on driftguard's permutations (Philox4x32-10 keys, mmd.hpp), each permuted
  statistic computed by alibi's own mmd2_from_kernel_matrix on the detector's kernel matrix
  reordered by that permutation, counted with driftguard's tie rule, plus alibi's p-value and
  distance_threshold formulas. The script first checks that its copy of alibi's score() (p-value
  and threshold) reproduces the detector's output when both use the same np.random permutations,
  and that its Philox matches Random123's known-answer vectors.
- The linear-time statistic: alibi 0.13 ships `linear_mmd2` only in its PyTorch utilities
  (utils/pytorch/distance.py) and no detector around it, so the terms h_i and the paired-distance
  bandwidth rule (utils/pytorch/kernels.py, GaussianRBF.forward with pairwise=False) are written
  out here in NumPy, with the Gaussian p-value from scipy.stats.norm.sf.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

PINS = ["alibi-detect==0.13.0", "tensorflow-cpu==2.18.1", "tf-keras==2.18.0",
        "tensorflow-probability==0.25.0", "numpy==1.26.4", "scipy"]
TIE_TOLERANCE = 1e-10  # driftguard's kMmdTieTolerance
MASK32 = 0xFFFFFFFF


def ensure_alibi():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # alibi 0.13 needs Keras 2 (tf-keras)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import alibi_detect  # noqa: F401
        import tensorflow  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("DRIFTGUARD_ALIBI_REEXEC"):
        sys.exit("alibi-detect still does not import inside the virtual environment")
    venv = pathlib.Path(os.environ.get("DRIFTGUARD_ALIBI_VENV",
                                       pathlib.Path.home() / ".cache/driftguard/alibi-venv"))
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(python), "-m", "pip", "install", "--quiet", *PINS])
    os.environ["DRIFTGUARD_ALIBI_REEXEC"] = "1"
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


ensure_alibi()

import importlib.metadata  # noqa: E402

import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.keras.backend.set_floatx("float64")

from alibi_detect.cd import MMDDrift  # noqa: E402
from alibi_detect.utils.tensorflow.distance import mmd2_from_kernel_matrix  # noqa: E402


# ---- Philox4x32-10 (Random123's philox4x32, 10 rounds), vectorised over counters ----
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    mask, shift = np.uint64(MASK32), np.uint64(32)
    c = [np.asarray(v, dtype=np.uint64) & mask for v in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(0x9E3779B9)) & mask
            k1 = (k1 + np.uint64(0xBB67AE85)) & mask
        p0 = np.uint64(0xD2511F53) * c[0]  # 32 x 32 bits: exact in 64
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [((p1 >> shift) ^ c[1] ^ k0) & mask, p1 & mask, ((p0 >> shift) ^ c[3] ^ k1) & mask,
             p0 & mask]
    return c


def check_philox():
    kat = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
           ((MASK32,) * 4, (MASK32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
           ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for ctr, key, want in kat:
        got = tuple(int(v) for v in philox4x32_10(*ctr, *key))
        assert got == want, (ctr, key, got, want)


def permutation_order(seed, permutation, rows):
    """Pooled rows in driftguard's order for one permutation: increasing (key, row)."""
    row = np.arange(rows, dtype=np.uint64)
    w = philox4x32_10(row, permutation, 0, 0, seed & MASK32, seed >> 32)
    keys = w[0] | (w[1] << np.uint64(32))
    return np.lexsort((row, keys))  # last key is primary


# ---- alibi's pieces ----
def run_detector(x_ref, x, sigma, permutations, significance, np_seed):
    """alibi's MMDDrift end to end; returns (sigma, mmd2, p_val, threshold, detector)."""
    kwargs = {} if sigma is None else {"sigma": np.array([sigma])}
    cd = MMDDrift(x_ref, backend="tensorflow", p_val=significance, n_permutations=permutations,
                  **kwargs)
    np.random.seed(np_seed)  # alibi's TF backend permutes with np.random.permutation
    pred = cd.predict(x, return_p_val=True, return_distance=True)["data"]
    inferred = float(cd._detector.kernel.sigma.numpy()[0])
    return inferred, float(pred["distance"]), float(pred["p_val"]), \
        float(pred["distance_threshold"]), cd._detector


def zero_diag_kernel(detector, x_ref, x):
    km = detector.kernel_matrix(tf.convert_to_tensor(x_ref), tf.convert_to_tensor(x)).numpy()
    np.fill_diagonal(km, 0.0)
    return km


def alibi_score(km, m, permutations, significance, np_seed):
    """A copy of MMDDriftTF.score() after the kernel matrix, to check against the detector."""
    np.random.seed(np_seed)
    obs = float(mmd2_from_kernel_matrix(tf.constant(km), m, permute=False, zero_diag=False))
    perm = np.array([float(mmd2_from_kernel_matrix(tf.constant(km), m, permute=True,
                                                   zero_diag=False))
                     for _ in range(permutations)])
    p_val = (obs <= perm).mean()
    threshold = np.sort(perm)[::-1][int(significance * len(perm))]
    return obs, float(p_val), float(threshold)


def philox_test(km, n, m, seed, permutations, significance):
    """The permutation test on driftguard's permutations, statistics by alibi's code."""
    rows = n + m
    obs = float(mmd2_from_kernel_matrix(tf.constant(km), m, permute=False, zero_diag=False))
    # The statistic's three terms, for driftguard's tie tolerance.
    scale = (km[:n, :n].sum() / (n * (n - 1)) + km[n:, n:].sum() / (m * (m - 1))
             + 2.0 * km[n:, :n].mean())
    perm = []
    for k in range(permutations):
        idx = permutation_order(seed, k, rows)
        perm.append(float(mmd2_from_kernel_matrix(tf.constant(km[idx][:, idx]), m, permute=False,
                                                  zero_diag=False)))
    perm = np.array(perm)
    floor = obs - TIE_TOLERANCE * scale
    exceed = int((perm >= floor).sum())
    # A permuted statistic near the tolerance edge would make the count depend on rounding.
    gaps = np.abs(perm - floor) / scale
    assert gaps.min() > 1e-12, f"permuted statistic within {gaps.min():.1e} of the tie edge"
    raw = int((obs <= perm).sum())
    return {
        "seed": seed, "permutations": permutations, "significance": significance,
        "exceed_count": exceed,
        "pvalue_conservative": (1.0 + exceed) / (1.0 + permutations),
        "pvalue_alibi": exceed / permutations,
        "threshold": float(np.sort(perm)[::-1][int(significance * permutations)]),
        "alibi_raw_count": raw,
        "min_gap_over_scale": float(gaps.min()),
    }


def linear(x_ref, x, sigma):
    """Linear-time MMD^2 (alibi's linear_mmd2 terms, Gretton et al. 2012 Lemma 14)."""
    b = min(len(x_ref), len(x)) // 2
    xa, xb = x_ref[0:2 * b:2], x_ref[1:2 * b:2]
    ya, yb = x[0:2 * b:2], x[1:2 * b:2]
    dist = lambda u, v: ((u - v) ** 2).sum(axis=1)  # noqa: E731
    if sigma is None:
        # GaussianRBF.forward, pairwise=False: sorted(dist)[n // 2 - 1] over the first call's
        # pairs, which is k_xx = kernel(x[0::2], x[1::2]).
        sigma = float(np.sqrt(0.5 * np.sort(dist(xa, xb))[b // 2 - 1]))
    gamma = 1.0 / (2.0 * sigma ** 2)
    k = lambda u, v: np.exp(-gamma * dist(u, v))  # noqa: E731
    h = k(xa, xb) + k(ya, yb) - k(xa, yb) - k(ya, xb)
    mmd2 = float(h.mean())
    variance = float(np.var(h, ddof=1))
    z = mmd2 / np.sqrt(variance / b)
    return {"pairs": b, "sigma": sigma, "mmd2": mmd2, "variance": variance, "z": float(z),
            "pvalue": float(scipy.stats.norm.sf(z))}


def f32(values):
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def cases(rng):
    def normal(rows, d, shift=0.0, scale=1.0):
        return f32(rng.normal(shift, scale, (rows, d)))
    shift_half = np.r_[np.full(8, 0.25), np.zeros(8)]
    return [
        # name, reference, current, sigma (None: median heuristic), seed, permutations
        ("same_n100_d4", normal(100, 4), normal(100, 4), None, 11, 100),
        ("shift_n120_m80_d8", normal(120, 8), normal(80, 8, 0.5), None, 12, 100),
        ("sigma2_n150_d16_half_shift", normal(150, 16), normal(150, 16, shift_half), 2.0, 13, 100),
        ("scale2_n200_m300_d2", normal(200, 2), normal(300, 2, 0.0, 2.0), None, 14, 100),
        ("tiny_n5_m3_d1", normal(5, 1), normal(3, 1, 1.0), None, 15, 100),
        ("codes_n60_d3", f32(rng.integers(0, 4, (60, 3))), f32(rng.integers(0, 4, (60, 3))),
         None, 16, 100),
        ("perm200_n90_m70_d6", normal(90, 6), normal(70, 6, 0.1), None, 17, 200),
        ("sigma0.5_n64_m65_d5", normal(64, 5), normal(65, 5, 0.2), 0.5, 18, 100),
        ("same_n300_d12", normal(300, 12), normal(300, 12), None, 19, 100),
        ("large_values_n80_d3", normal(80, 3, 1000.0, 50.0), normal(80, 3, 1010.0, 50.0), None,
         20, 100),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).with_name("mmd_alibi.json")))
    args = ap.parse_args()
    check_philox()
    rng = np.random.default_rng(20261126)
    significance = 0.05
    out_cases = []
    for name, x_ref, x, sigma, seed, permutations in cases(rng):
        n, m = len(x_ref), len(x)
        inferred, distance, p_val, threshold, detector = run_detector(
            x_ref, x, sigma, permutations, significance, np_seed=seed)
        km = zero_diag_kernel(detector, x_ref, x)
        obs, my_p, my_threshold = alibi_score(km, m, permutations, significance, np_seed=seed)
        assert obs == distance, (name, obs, distance)
        assert my_p == p_val and my_threshold == threshold, (name, my_p, p_val)
        case = {
            "name": name,
            "reference": x_ref.tolist(),
            "current": x.tolist(),
            "sigma_given": sigma,
            "sigma": inferred,
            "mmd2": distance,
            "alibi_np_random": {"seed": seed, "pvalue": p_val, "threshold": threshold},
            "philox": philox_test(km, n, m, seed, permutations, significance),
        }
        if min(n, m) >= 4:
            case["linear"] = linear(x_ref, x, None)
            case["linear_sigma_1"] = linear(x_ref, x, 1.0)
        out_cases.append(case)
        print(f"{name}: sigma={inferred:.6g} mmd2={distance:.6g} "
              f"p={case['philox']['pvalue_conservative']:.3f} "
              f"gap={case['philox']['min_gap_over_scale']:.1e}")
    versions = {p: importlib.metadata.version(p) for p in
                ("alibi-detect", "tensorflow-cpu", "tf-keras", "numpy", "scipy")}
    versions["python"] = sys.version.split()[0]
    with open(args.out, "w") as f:
        json.dump({"generator": "tests/golden/make_mmd_golden.py", "versions": versions,
                   "tie_tolerance": TIE_TOLERANCE, "cases": out_cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
