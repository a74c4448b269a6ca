#!/usr/bin/env python3
"""SciPy's two-sample Kolmogorov-Smirnov results -> ks_scipy.json.

    python3 tests/golden/make_ks_golden.py [--out tests/golden/ks_scipy.json]

Two kinds of cases, every number computed by SciPy itself:

sample_cases  float32 samples (NaN dropped first: nan_policy='omit') and, for every alternative
              (two-sided, less, greater) and method (auto, exact, asymp), what
              scipy.stats.ks_2samp(reference, current, alternative, method) returns: statistic,
              pvalue, statistic_location, statistic_sign, and the method that produced the p-value
              (asymp when auto chose it or when SciPy warned that the exact computation failed or
              was impossible). Samples are written exactly: either "values" (float32 widened to
              float64, repr; NaN null, infinities "inf"/"-inf") or, for large ones, "ints" and
              "exp2" (value = int * 2**exp2, exact in float32).
pvalue_cases  [d, n1, n2, alternative, method, pvalue, statistic, method_used]: ks_2samp's p-value
              step for a given statistic d, evaluated by ks_pvalue_of() below, which runs the tail
              of scipy.stats.ks_2samp (SciPy 1.17) on SciPy's own private functions
              (_attempt_exact_2kssamp, kstwo.sf). Checked against ks_2samp on every sample case
              before anything is written. Covers the exact/asymp switch, every branch of kolmogn
              (Ruben-Gambino, Durbin/MTW, Pomeranz, Pelz-Good, smirnov), p near 1 and p near 1e-300.
"""
import argparse
import json
import math
import pathlib
import platform
import sys
import time
import warnings

import numpy as np
import scipy
from scipy import stats
from scipy.stats import _stats_py

ALTERNATIVES = ("two-sided", "less", "greater")
METHODS = ("auto", "exact", "asymp")
MAX_AUTO_N = 10000


def ks_pvalue_of(d, n1, n2, alternative, method):
    """The p-value step of scipy.stats.ks_2samp (1.17) for statistic d; returns
    (pvalue, statistic, method_used)."""
    g = math.gcd(n1, n2)
    n1g, n2g = n1 // g, n2 // g
    mode = method
    if mode == "auto":
        mode = "exact" if max(n1, n2) <= MAX_AUTO_N else "asymp"
    elif mode == "exact" and n1g >= np.iinfo(np.int32).max / n2g:
        mode = "asymp"
    prob = -np.inf
    if mode == "exact":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            success, d, prob = _stats_py._attempt_exact_2kssamp(n1, n2, g, d, alternative)
        if not success:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if alternative == "two-sided":
                prob = stats.distributions.kstwo.sf(d, np.round(en))
            else:
                z = np.sqrt(en) * d
                expt = -2 * z**2 - 2 * z * (m + 2 * n) / np.sqrt(m * n * (m + n)) / 3.0
                prob = np.exp(expt)
    return float(np.clip(prob, 0, 1)), float(d), mode


def ks_2samp(reference, current, alternative, method):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = stats.ks_2samp(reference, current, alternative=alternative, method=method)
    failed = any("Exact" in str(w.message) for w in caught)
    n1, n2 = len(reference), len(current)
    if method == "asymp" or failed or (method == "auto" and max(n1, n2) > MAX_AUTO_N):
        used = "asymp"
    else:
        used = "exact"
    return r, used


def exact_json(x):
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def sample_json(values, exp2=None):
    if exp2 is None:
        return {"values": [exact_json(v) for v in values]}
    ints = []
    for v in values:
        if math.isnan(v):
            ints.append(None)
        else:
            k = float(v) / 2.0**exp2
            assert k == int(k) and abs(k) < 2**24
            ints.append(int(k))
    return {"ints": ints, "exp2": exp2}


def f32(a):
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def grid(rng, n, loc=0.0, scale=1.0, exp2=-12):
    """Normal values on the 2**exp2 grid (exact in float32, a few ties)."""
    return f32(np.round(rng.normal(loc, scale, n) / 2.0**exp2) * 2.0**exp2)


def make_samples(rng):
    cases = []

    def add(name, ref, cur, exp2=None):
        cases.append((name, f32(ref), f32(cur), exp2))

    # Small and unequal sizes, continuous data.
    for n1, n2 in [(1, 1), (1, 2), (2, 1), (1, 5000), (5000, 1), (7, 3), (3, 7), (2, 2), (5, 5),
                   (10, 10), (13, 17), (25, 40), (64, 64), (100, 137), (250, 250), (499, 500),
                   (1000, 1500), (2000, 30)]:
        add(f"normal_{n1}_{n2}", rng.normal(0, 1, n1), rng.normal(0.2, 1.1, n2))
    # Shifts from none to total separation.
    for shift in (0.0, 0.05, 0.3, 1.0, 3.0):
        add(f"shift_{shift}_300_200", rng.normal(0, 1, 300), rng.normal(shift, 1, 200))
    # Heavy ties: small integer samples.
    add("ties_0to4_50_60", rng.integers(0, 5, 50), rng.integers(0, 5, 60))
    add("ties_0to9_300_200", rng.integers(0, 10, 300), rng.integers(1, 10, 200))
    add("ties_binary_40_40", rng.integers(0, 2, 40), rng.integers(0, 2, 40))
    add("ties_constant_equal", np.full(20, 3.0), np.full(30, 3.0))
    add("ties_constant_apart", np.full(20, 3.0), np.full(30, 4.0))
    add("ties_poisson_3000_2000", rng.poisson(3, 3000), rng.poisson(3.2, 2000), exp2=0)
    add("ties_0to20_10000_10000", rng.integers(0, 21, 10000), rng.integers(0, 21, 10000), exp2=0)
    add("ties_0to20_12000_9000", rng.integers(0, 21, 12000), rng.integers(0, 20, 9000), exp2=0)
    # Identical and disjoint samples.
    same = rng.normal(0, 1, 150)
    add("identical_150", same, same)
    add("identical_shuffled_80", same[:80], rng.permutation(same[:80]))
    add("disjoint_below_40_60", rng.uniform(0, 1, 40), rng.uniform(2, 3, 60))
    add("disjoint_above_60_40", rng.uniform(2, 3, 60), rng.uniform(0, 1, 40))
    add("interleaved_1_2", [0.0, 2.0, 4.0], [1.0, 3.0])
    # Signed zeros and infinities are ordinary values (-0.0 == 0.0).
    add("signed_zero", [-0.0, 0.0, 1.0, -1.0, 0.0], [0.0, -0.0, 2.0])
    add("infinities", [-np.inf, 0.5, 1.0, np.inf, 2.0], [np.inf, np.inf, 0.25, -np.inf])
    # NaN-containing samples (dropped before SciPy sees them).
    a = rng.normal(0, 1, 40)
    a[rng.choice(40, 5, replace=False)] = np.nan
    b = rng.normal(0.5, 1, 30)
    b[[0, 7]] = np.nan
    add("nan_40_30", a, b)
    add("nan_mostly", [np.nan, np.nan, 1.0, np.nan], [np.nan, 0.5, 2.0, np.nan, np.nan])
    # Sizes around the auto switch and beyond (the exact path is slow here, so few).
    add("auto_edge_10000_10000", grid(rng, 10000), grid(rng, 10000, 0.03), exp2=-12)
    add("auto_edge_10001_500", grid(rng, 10001), grid(rng, 500, 0.1), exp2=-12)
    add("large_20000_15000", grid(rng, 20000), grid(rng, 15000, 0.02), exp2=-12)
    add("large_50000_50000", grid(rng, 50000), grid(rng, 50000, 0.01, 1.01), exp2=-12)
    add("large_50000_7", grid(rng, 50000), grid(rng, 7, 1.0), exp2=-12)
    # One-sided exact with unequal sizes: Hodges' path counting.
    add("onesided_paths_300_220", rng.normal(0, 1, 300), rng.normal(0.15, 1, 220))
    # binom(1050, 450) overflows: SciPy's one-sided exact falls back to asymp.
    add("onesided_overflow_600_450", rng.normal(0, 1, 600), rng.normal(0.15, 1, 450))
    add("onesided_paths_3000_40", rng.normal(0, 1, 3000), rng.normal(0.4, 1, 40))
    return cases


def sample_results(ref, cur):
    r = ref[~np.isnan(ref)]
    c = cur[~np.isnan(cur)]
    out = {}
    for alternative in ALTERNATIVES:
        for method in METHODS:
            key = f"{alternative}/{method}"
            if len(r) == 0 or len(c) == 0:
                out[key] = None
                continue
            res, used = ks_2samp(r, c, alternative, method)
            out[key] = {
                "statistic": float(res.statistic),
                "pvalue": exact_json(res.pvalue),
                "statistic_location": exact_json(res.statistic_location),
                "statistic_sign": int(res.statistic_sign),
                "method_used": used,
            }
            # ks_pvalue_of must be ks_2samp's p-value step; d from the asymp run is unrounded.
            raw = stats.ks_2samp(r, c, alternative=alternative, method="asymp").statistic
            p, d, m = ks_pvalue_of(float(raw), len(r), len(c), alternative, method)
            same_p = p == out[key]["pvalue"] or (math.isnan(p) and out[key]["pvalue"] is None)
            if not (same_p and d == out[key]["statistic"] and m == used):
                sys.exit(f"ks_pvalue_of disagrees with ks_2samp: {key} {p} {d} {m} vs {out[key]}")
    return out


def pvalue_inputs(rng):
    """(d, n1, n2) triples over the regimes of both methods."""
    triples = []
    # Exact region: lattice values i/n1 - j/n2 as NumPy computes them, plus arbitrary d.
    for n1, n2 in [(1, 1), (1, 3), (2, 2), (3, 5), (10, 10), (10, 15), (17, 17), (40, 25),
                   (100, 100), (120, 45), (333, 333), (500, 350), (1000, 999), (2500, 2500),
                   (4000, 60), (9999, 10000), (10000, 10000), (10000, 7)]:
        for _ in range(24):
            i, j = rng.integers(0, n1 + 1), rng.integers(0, n2 + 1)
            triples.append((abs(i / n1 - j / n2), n1, n2))
        triples += [(0.0, n1, n2), (1.0, n1, n2), (float(rng.uniform()), n1, n2)]
    # Asymp region: n = round(n1 n2 / (n1 + n2)) across kolmogn's branches.
    for n1, n2 in [(10001, 10001), (10001, 3), (10001, 280), (20000, 20000), (30000, 700),
                   (100000, 100000), (150001, 150000), (400000, 300000), (1000000, 1000000),
                   (2000003, 2000000), (5000000, 4000000)]:
        m, n = max(n1, n2), min(n1, n2)
        en = round(m * n / (m + n))
        # t = en d: <= 1 (Ruben-Gambino), en d^2 in the DMTW / Pelz-Good / smirnov ranges,
        # d >= 0.5, and large d for p near 1e-300.
        anchors = [0.7 / en, 1.0 / en, np.sqrt(0.3 / en), np.sqrt(0.7 / en), (1.4 / en) ** (2 / 3),
                   np.sqrt(1.5 / en), np.sqrt(2.1 / en), np.sqrt(2.3 / en), np.sqrt(4.0 / en),
                   np.sqrt(30 / en), np.sqrt(200 / en), np.sqrt(369 / en), np.sqrt(371 / en),
                   0.5, 0.75, 1 - 1.0 / en, 0.999]
        for a in anchors:
            for _ in range(3):
                triples.append((float(min(1.0, a * rng.uniform(0.9, 1.1))), n1, n2))
        for _ in range(20):
            triples.append((float(rng.uniform(0, 1) ** 3), n1, n2))
    # Small n under explicit asymp: n <= 140 (DMTW, Pomeranz, smirnov for n d^2 > 4).
    for n1, n2 in [(2, 3), (5, 7), (20, 30), (60, 90), (150, 250), (280, 280), (300, 400)]:
        m, n = max(n1, n2), min(n1, n2)
        en = max(1, round(m * n / (m + n)))
        for a in np.linspace(0.3 / en, 1.0, 40):
            triples.append((float(a), n1, n2))
    return triples


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).with_name("ks_scipy.json")))
    args = ap.parse_args()
    start = time.perf_counter()
    rng = np.random.default_rng(20260214)

    samples = []
    for name, ref, cur, exp2 in make_samples(rng):
        samples.append({"name": name, "reference": sample_json(ref, exp2),
                        "current": sample_json(cur, exp2), "results": sample_results(ref, cur)})

    pvalues = []
    expensive = {}
    for d, n1, n2 in pvalue_inputs(rng):
        for alternative in ALTERNATIVES:
            for method in METHODS:
                # SciPy's exact paths cost up to O(n1 n2) (compiled) or O(n^2) Python steps for
                # large sizes: a few such cases per size pair keep the run within minutes.
                exact_possible = method == "exact" or (method == "auto" and max(n1, n2) <= MAX_AUTO_N)
                if exact_possible and n1 * n2 > 250000:
                    key = (n1, n2, alternative, method)
                    expensive[key] = expensive.get(key, 0) + 1
                    if expensive[key] > 4:
                        continue
                p, stat, used = ks_pvalue_of(d, n1, n2, alternative, method)
                pvalues.append([d, n1, n2, alternative, method, exact_json(p), stat, used])

    out = {
        "generator": "tests/golden/make_ks_golden.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "sample_cases": samples,
        "pvalue_cases": pvalues,
    }
    pathlib.Path(args.out).write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"{len(samples)} sample cases ({len(samples) * 9} results), {len(pvalues)} p-value "
          f"cases, {pathlib.Path(args.out).stat().st_size / 1e6:.2f} MB, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
