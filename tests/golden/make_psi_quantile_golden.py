#!/usr/bin/env python3
"""NumPy reference for driftguard's quantile and equal-width PSI -> psi_quantile.json.

    python3 tests/golden/make_psi_quantile_golden.py [--shared ../shared] [--out tests/golden/psi_quantile.json]

Written from the definitions, independently of the C++ code:
  values  quantile, a discrete reference (at most `bins` distinct finite values, each seen twice
          on average: count >= 2 x distinct): one bin per value, np.unique(finite_reference)
  edges   quantile:    np.unique(np.quantile(finite_reference, np.linspace(0, 1, bins + 1)))
          equal_width: np.linspace(min, max, bins + 1) over the finite reference
          a constant reference gets [v - 0.5, v + 0.5] under both policies (quantile: when it is
          not discrete, i.e. a single row)
  counts  histogram.hpp's slots [underflow | bins | overflow | missing]: NaN is missing, x < e_0
          (and -Inf) underflow, x > e_B (and +Inf) overflow, bin i holds e_i <= x < e_{i+1} with
          the last bin closed (np.histogram's rule); by value: underflow 0, bin i holds the i-th
          value, overflow ("other") any other non-NaN value
  psi     driftguard's default PsiOptions: underflow folded into the first bin and overflow into
          the last (by value: "other" a bin of its own), missing a bin of its own when a window
          has a missing value, proportions over all counted values, a share that is 0 in one
          window replaced by 1e-4 and a bin empty in both windows skipped,
          PSI = sum (c - r) ln(c / r)
Values are float32 widened to float64 (the library reads float32); NaN/+-Inf are written as
null/"inf"/"-inf". Edges are stored with repr, so they round-trip exactly.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

EPSILON = 1e-4


def f32(values):
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def discrete_values(policy, reference, bins):
    """The values a discrete reference is binned by under `policy`, or None."""
    finite = reference[np.isfinite(reference)]
    values = np.unique(finite)
    if policy == "quantile" and len(values) <= bins and len(finite) >= 2 * len(values):
        return values
    return None


def reference_edges(policy, reference, bins):
    finite = reference[np.isfinite(reference)]
    if finite.min() == finite.max():
        v = finite[0]
        return np.array([v - 0.5, v + 0.5])
    if policy == "quantile":
        return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
    return np.linspace(finite.min(), finite.max(), bins + 1)


def slots(values, edges):
    missing = np.isnan(values)
    x = values[~missing]
    under = x < edges[0]
    over = x > edges[-1]
    inside = x[~under & ~over]
    bin_index = np.minimum(np.searchsorted(edges, inside, side="right") - 1, len(edges) - 2)
    bins = np.bincount(bin_index, minlength=len(edges) - 1)
    return [int(under.sum())] + [int(b) for b in bins] + [int(over.sum()), int(missing.sum())]


def value_slots(values, points):
    missing = np.isnan(values)
    x = values[~missing]
    bins = [int((x == p).sum()) for p in points]
    return [0] + bins + [int(len(x) - sum(bins)), int(missing.sum())]


def binned(policy, reference, current, bins):
    """(points, by_value, reference slots, current slots) of one feature under `policy`."""
    values = discrete_values(policy, reference, bins)
    if values is not None:
        return values, True, value_slots(reference, values), value_slots(current, values)
    edges = reference_edges(policy, reference, bins)
    return edges, False, slots(reference, edges), slots(current, edges)


def default_psi(ref_slots, cur_slots, by_value=False):
    ref, cur = np.array(ref_slots, dtype=np.float64), np.array(cur_slots, dtype=np.float64)

    def participating(s):
        if by_value:
            return np.append(s[1:-2], s[-2]), s[-1]
        b = s[1:-2].copy()
        b[0] += s[0]
        b[-1] += s[-2]
        return b, s[-1]

    (ref_bins, ref_missing), (cur_bins, cur_missing) = participating(ref), participating(cur)
    if ref_missing > 0 or cur_missing > 0:
        ref_bins = np.append(ref_bins, ref_missing)
        cur_bins = np.append(cur_bins, cur_missing)
    if ref_bins.sum() == 0 or cur_bins.sum() == 0:
        return None
    keep = (ref_bins > 0) | (cur_bins > 0)
    r = ref_bins[keep] / ref_bins.sum()
    c = cur_bins[keep] / cur_bins.sum()
    r[r == 0] = EPSILON
    c[c == 0] = EPSILON
    return float(np.sum((c - r) * np.log(c / r)))


def json_values(values):
    out = []
    for v in values:
        if np.isnan(v):
            out.append(None)
        elif np.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        elif v == int(v) and abs(v) < 2**53:
            out.append(int(v))
        else:
            out.append(float(v))
    return out


def synthetic_cases(rng):
    normal = lambda n, mu=0.0, sd=1.0: f32(rng.normal(mu, sd, n))
    cases = []
    for policy in ("quantile", "equal_width"):
        cases += [
            (f"{policy}_normal_same", policy, 10, normal(500), normal(500)),
            (f"{policy}_normal_shift", policy, 10, normal(500), normal(400, 0.5)),
            (f"{policy}_lognormal_5_bins", policy, 5, f32(rng.lognormal(0, 1, 300)),
             f32(rng.lognormal(0.3, 1, 300))),
            (f"{policy}_20_bins", policy, 20, normal(1000), normal(700, 0.1, 1.2)),
            (f"{policy}_current_outside", policy, 10, f32(rng.uniform(0, 1, 300)),
             f32(rng.uniform(-0.5, 1.5, 300))),
        ]
        heavy = f32(rng.poisson(1.0, 500))
        cases.append((f"{policy}_heavy_ties", policy, 10, heavy, f32(rng.poisson(1.5, 500))))
        cases.append((f"{policy}_constant_reference", policy, 10, f32(np.full(100, 3.25)),
                      f32(rng.choice([3.0, 3.25, 3.5], 100))))
        with_gaps_ref, with_gaps_cur = normal(400), normal(400, 0.2)
        with_gaps_ref[rng.random(400) < 0.1] = np.nan
        with_gaps_cur[rng.random(400) < 0.25] = np.nan
        with_gaps_cur[:3] = [np.inf, -np.inf, np.inf]
        with_gaps_ref[:2] = [np.inf, -np.inf]
        cases.append((f"{policy}_nan_and_inf", policy, 10, with_gaps_ref, with_gaps_cur))
        cases.append((f"{policy}_tiny_reference", policy, 10, f32([2.5, -1.0, 7.0]),
                      normal(50, 2.0, 3.0)))
        cases.append((f"{policy}_large_magnitudes", policy, 8, f32(rng.normal(0, 1e30, 200)),
                      f32(rng.normal(1e29, 1e30, 200))))
    cases.append(("quantile_missing_only_in_current", "quantile", 10, normal(200),
                  np.full(50, np.nan)))
    # Discrete columns: a 0/1 flag whose share of ones moves from 10 % to 40 % (merged quantile
    # edges would read PSI 0), and a count with a value the reference never took.
    cases.append(("quantile_flag_share_moves", "quantile", 10,
                  f32(rng.random(600) < 0.1), f32(rng.random(500) < 0.4)))
    counts_cur = f32(rng.integers(1, 5, 300))
    counts_cur[:30] = 7
    counts_cur[30:33] = np.nan
    cases.append(("quantile_count_with_new_value", "quantile", 10,
                  f32(rng.integers(1, 5, 400)), counts_cur))
    cases.append(("quantile_ten_values_once_each", "quantile", 10, f32(rng.normal(0, 1, 10)),
                  normal(40)))
    return cases


def uci_cases(shared):
    import csv

    path = pathlib.Path(shared) / "datasets" / "uci_credit_card.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    age = np.array([float(r["AGE"]) for r in rows])
    young = age < 40
    cases = []
    for name, policy, bins in (("LIMIT_BAL", "quantile", 10), ("AGE", "quantile", 10),
                               ("BILL_AMT1", "quantile", 10), ("PAY_0", "quantile", 10),
                               ("LIMIT_BAL", "equal_width", 10)):
        column = f32([float(r[name]) for r in rows])
        # Every 8th row keeps the file small and the real distribution's shape.
        cases.append((f"uci_{name}_{policy}_age_lt40_vs_ge40", policy, bins, column[young][::8],
                      column[~young][::8]))
    return cases


def main():
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(here.parents[2] / "shared"))
    parser.add_argument("--out", default=str(here / "psi_quantile.json"))
    args = parser.parse_args()

    rng = np.random.default_rng(20240602)
    cases = []
    for name, policy, bins, ref, cur in synthetic_cases(rng) + uci_cases(args.shared):
        points, by_value, ref_slots, cur_slots = binned(policy, ref, cur, bins)
        value = default_psi(ref_slots, cur_slots, by_value)
        cases.append({"name": name, "policy": policy, "bins": bins,
                      "values" if by_value else "edges": [float(p) for p in points],
                      "reference_slots": ref_slots, "current_slots": cur_slots, "psi": value,
                      "reference": json_values(ref), "current": json_values(cur)})
        print(f"{name:45s} {'values' if by_value else 'edges'}={len(points):3d} psi={value}")

    meta = {"numpy": np.__version__, "python": sys.version.split()[0],
            "generator": "tests/golden/make_psi_quantile_golden.py", "epsilon": EPSILON}
    lines = ['{"meta": ' + json.dumps(meta) + ',', ' "cases": [']
    lines += ["  " + json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else "")
              for i, case in enumerate(cases)]
    lines += [" ]", "}"]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
