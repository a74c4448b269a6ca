#!/usr/bin/env python3
"""Univariate drift measures from SciPy for tests/test_distances.cpp.

Samples (float32 values, sorted, written as float64) give
  scipy.stats.wasserstein_distance(ref, cur),
  evidently's normed Wasserstein: wasserstein_distance / max(np.std(ref), 0.001)
    (evidently 0.7.23, evidently/legacy/calculations/stattests/wasserstein_distance_norm.py),
  scipy.stats.cramervonmises_2samp(ref, cur, method=m) for m in auto/exact/asymptotic
    (exact only where both sizes are <= 20; sizes >= 2 only, SciPy gives NaN below).
Generated samples (too large to store: ref_k = (k * a) mod m + shift, k < n, integers exact in
float32, rebuilt by the test) give wasserstein_distance and cramervonmises_2samp (asymptotic) at
sizes where the rank sums exceed 2^53, so that their rounding shows.
Count vectors give
  scipy.spatial.distance.jensenshannon(ref, cur, base) for base e and 2,
  scipy.stats.chi2_contingency([ref, cur], correction=True) on the table without the categories
    empty in both rows (SciPy refuses zero expected counts); null when a row sums to 0.
Writes tests/golden/distances_scipy.json.
"""
import json
import math
import os

import numpy as np
import scipy
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, cramervonmises_2samp, wasserstein_distance

rng = np.random.default_rng(20261126)


def f32(x):
    return np.sort(np.asarray(x, dtype=np.float32)).astype(np.float64)


def sample_case(kind, ref, cur):
    ref, cur = f32(ref), f32(cur)
    w = wasserstein_distance(ref, cur)
    case = {"kind": kind, "reference": ref.tolist(), "current": cur.tolist(),
            "wasserstein": w, "wasserstein_normed": w / max(float(np.std(ref)), 0.001)}
    if ref.size >= 2 and cur.size >= 2:
        cvm = {}
        methods = ["auto", "asymptotic"] + (["exact"] if max(ref.size, cur.size) <= 20 else [])
        for m in methods:
            r = cramervonmises_2samp(ref, cur, method=m)
            cvm[m] = {"statistic": float(r.statistic), "pvalue": float(r.pvalue)}
        case["cvm"] = cvm
    return case


samples = []
sizes = [(1, 1), (1, 7), (2, 2), (2, 5), (3, 4), (5, 5), (7, 13), (10, 10), (20, 20), (20, 3),
         (21, 20), (50, 60), (100, 100), (333, 1000), (1000, 1000), (5000, 4000)]
for n1, n2 in sizes:
    big = max(n1, n2) >= 1000
    samples.append(sample_case("normal shift", rng.standard_normal(n1),
                               rng.normal(0.3, 1.0, n2)))
    if not big:
        samples.append(sample_case("scale", rng.standard_normal(n1) * 5.0,
                                   rng.normal(0.0, 7.5, n2)))
    samples.append(sample_case("ties", rng.integers(0, 6, n1), rng.integers(1, 7, n2)))
    if not big:
        samples.append(sample_case("lognormal", rng.lognormal(0, 2, n1), rng.lognormal(0.5, 2, n2)))
        samples.append(sample_case("disjoint", rng.uniform(0, 1, n1), rng.uniform(10, 11, n2)))
for n in [1, 2, 5, 19, 300]:
    x = rng.standard_normal(n)
    samples.append(sample_case("identical", x, x))
samples.append(sample_case("constant reference", np.full(30, 2.5), rng.normal(2.5, 1.0, 40)))
samples.append(sample_case("signed zeros", [-0.0, 0.0, 0.0, 1.0], [0.0, -0.0, 2.0]))
samples.append(sample_case("tiny scale", rng.normal(0, 1e-5, 50), rng.normal(1e-5, 1e-5, 50)))
samples.append(sample_case("large values", rng.normal(1e6, 10, 200), rng.normal(1e6 + 5, 10, 150)))
for n1 in range(2, 21, 3):
    for n2 in [2, 9, 20]:
        samples.append(sample_case("small exact", rng.standard_normal(n1),
                                   rng.normal(0.5, 1, n2)))
        samples.append(sample_case("small exact ties", rng.integers(0, 3, n1),
                                   rng.integers(0, 4, n2)))


def generated(spec):
    k = np.arange(spec["n"], dtype=np.int64)
    return np.sort(((k * spec["multiplier"]) % spec["modulus"] + spec["shift"]).astype(np.float64))


def generated_case(kind, ref_spec, cur_spec):
    ref, cur = generated(ref_spec), generated(cur_spec)
    assert ref.max() < 2**24 and cur.max() < 2**24  # exact in float32
    r = cramervonmises_2samp(ref, cur, method="asymptotic")
    return {"kind": kind, "reference": ref_spec, "current": cur_spec,
            "wasserstein": wasserstein_distance(ref, cur),
            "cvm_asymptotic": {"statistic": float(r.statistic), "pvalue": float(r.pvalue)}}


generated_samples = [
    generated_case("quarter million vs a million, shifted",
                   {"n": 262144, "multiplier": 7919, "modulus": 8388593, "shift": 0},
                   {"n": 1048576, "multiplier": 104729, "modulus": 8388593, "shift": 40000}),
    generated_case("two hundred thousand each, no shift",
                   {"n": 200000, "multiplier": 7919, "modulus": 8388593, "shift": 0},
                   {"n": 200000, "multiplier": 104729, "modulus": 8388593, "shift": 0}),
]


def counts_case(kind, ref, cur):
    ref = [int(v) for v in ref]
    cur = [int(v) for v in cur]
    case = {"kind": kind, "reference": ref, "current": cur}
    for name, base in [("js_e", None), ("js_2", 2)]:
        v = float(jensenshannon(np.array(ref, float), np.array(cur, float), base=base))
        case[name] = None if math.isnan(v) else v
    keep = [i for i in range(len(ref)) if ref[i] or cur[i]]
    table = np.array([[ref[i] for i in keep], [cur[i] for i in keep]])
    if sum(ref) == 0 or sum(cur) == 0:
        case["chi2"] = None
    elif len(keep) == 1:
        case["chi2"] = {"statistic": 0.0, "pvalue": 1.0, "dof": 0}
    else:
        r = chi2_contingency(table, correction=True)
        case["chi2"] = {"statistic": float(r.statistic), "pvalue": float(r.pvalue),
                        "dof": int(r.dof)}
    return case


counts = []
for k in [1, 2, 3, 5, 10, 30, 100, 200]:
    for total in [10, 1000, 100000]:
        p = rng.dirichlet(np.ones(k))
        ref = rng.multinomial(total, p)
        same = rng.multinomial(total * 2, p)
        shifted = rng.multinomial(total // 2 + 1, rng.dirichlet(np.ones(k)))
        counts.append(counts_case("same distribution", ref, same))
        counts.append(counts_case("different distribution", ref, shifted))
for ref, cur, kind in [
    ([5, 0, 3, 0], [2, 0, 4, 1], "zeros in both rows"),
    ([10, 0], [0, 10], "disjoint 2 bins (Yates)"),
    ([10, 0, 0], [0, 0, 10], "disjoint 3 bins"),
    ([7, 3], [7, 3], "identical 2 bins (Yates)"),
    ([1, 1], [1, 2], "Yates magnitude below 0.5"),
    ([100, 200, 300], [100, 200, 300], "identical"),
    ([0, 0, 0], [1, 2, 3], "empty reference"),
    ([0, 9, 0], [0, 4, 0], "one category"),
    ([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5], "sparse"),
    ([10**9, 3, 10**6], [10**9 + 5, 7, 10**6 - 3], "large counts"),
]:
    counts.append(counts_case(kind, ref, cur))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distances_scipy.json")
with open(out, "w") as f:
    json.dump({"scipy": scipy.__version__, "numpy": np.__version__,
               "samples": samples, "generated_samples": generated_samples, "counts": counts}, f)
print(f"{len(samples)} sample cases, {len(counts)} count cases -> {out} "
      f"({os.path.getsize(out)} bytes)")
