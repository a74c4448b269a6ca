#!/usr/bin/env python3
"""Golden PSI values computed by the real `evidently` package -> psi_evidently.json.

    python3 tests/golden/make_psi_golden.py [--shared ../shared] [--out tests/golden/psi_evidently.json]

Installs evidently (pinned, with a pandas it imports under) when it is missing. Each case holds a
reference and a current sample (float32 values widened to float64, NaN written as null), whether
evidently treats the column as numerical or categorical, and evidently's PSI computed through its
public API: Report([ValueDrift(column, method="psi")]) on Datasets with a DataDefinition. That path
(evidently.legacy.calculations.data_drift.get_one_column_drift) drops NaN and +-Inf, then calls
the registered "psi" stattest (_psi in evidently/legacy/calculations/stattests/psi.py), which bins
with get_binned_data: Sturges bins over the pooled values for a numerical column with more than 20
distinct reference values, else the distinct values of both windows. The script checks the Report
value against a direct psi_stat_test call and records evidently's bin count for each case.
"""
import argparse
import importlib.metadata
import json
import pathlib
import subprocess
import sys

import numpy as np

EVIDENTLY_VERSION = "0.7.23"
# evidently 0.7.23 imports a helper that pandas 3 removed.
PANDAS_REQUIREMENT = "pandas<3"
# evidently's get_binned_data: numerical columns with more distinct reference values use Sturges.
EVIDENTLY_MAX_DISCRETE = 20


def ensure_evidently():
    try:
        import evidently  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                               f"evidently=={EVIDENTLY_VERSION}", PANDAS_REQUIREMENT])
    version = importlib.metadata.version("evidently")
    if version != EVIDENTLY_VERSION:
        print(f"warning: evidently {version} installed, the committed golden used "
              f"{EVIDENTLY_VERSION}", file=sys.stderr)
    return version


def f32(values):
    """The library reads float32: every golden value is a float32 widened to float64."""
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def synthetic_cases(rng):
    normal = lambda n, mu=0.0, sd=1.0: f32(rng.normal(mu, sd, n))
    cases = [
        ("normal_same", "numeric", normal(500), normal(500)),
        ("normal_shift_0.1", "numeric", normal(500), normal(500, 0.1)),
        ("normal_shift_0.5", "numeric", normal(500), normal(500, 0.5)),
        ("normal_shift_1.0", "numeric", normal(500), normal(500, 1.0)),
        ("normal_scale_2", "numeric", normal(500), normal(500, 0.0, 2.0)),
        ("lognormal_same", "numeric", f32(rng.lognormal(0, 0.5, 400)),
         f32(rng.lognormal(0, 0.5, 400))),
        ("lognormal_sigma", "numeric", f32(rng.lognormal(0, 0.5, 400)),
         f32(rng.lognormal(0.2, 0.8, 400))),
        ("sizes_300_vs_700", "numeric", normal(300), normal(700, 0.2)),
        ("sizes_1000_vs_100", "numeric", normal(1000), normal(100, -0.3)),
        ("small_40_vs_30", "numeric", normal(40), normal(30, 0.5)),
        ("current_beyond_reference", "numeric", f32(rng.uniform(0, 1, 400)),
         f32(rng.uniform(0.5, 1.5, 400))),
        ("bimodal_gap", "numeric",
         f32(np.concatenate([rng.normal(-5, 0.3, 200), rng.normal(5, 0.3, 200)])),
         f32(np.concatenate([rng.normal(-5, 0.3, 150), rng.normal(5, 0.3, 250)]))),
    ]
    # Over 10^4 values and a lone outlier: the reference's smallest nonzero share drops below 1e-4,
    # so evidently fills its empty bins with min/1e6 while the current window gets 1e-4; the gaps
    # leave bins empty in both windows, each adding a term.
    gap_ref = np.concatenate([rng.integers(0, 300, 9000), rng.integers(700, 1000, 3000), [1500]])
    gap_cur = np.concatenate([rng.integers(0, 300, 5000), rng.integers(700, 1000, 6000)])
    cases.append(("large_integers_gap", "numeric", f32(gap_ref), f32(gap_cur)))
    with_nan_ref, with_nan_cur = normal(400), normal(400, 0.3)
    with_nan_ref[rng.random(400) < 0.1] = np.nan
    with_nan_cur[rng.random(400) < 0.2] = np.nan
    cases.append(("normal_with_nan", "numeric", with_nan_ref, with_nan_cur))
    cases += [
        ("numeric_21_distinct", "numeric", f32(rng.integers(0, 21, 300)),
         f32(rng.integers(0, 21, 300))),
        ("numeric_20_distinct", "numeric", f32(rng.integers(0, 20, 300)),
         f32(rng.integers(0, 20, 300))),
        ("discrete_poisson_shift", "numeric", f32(rng.poisson(3.0, 400)),
         f32(rng.poisson(4.0, 400))),
        ("discrete_value_only_in_current", "numeric", f32(rng.integers(0, 5, 300)),
         f32(rng.integers(0, 7, 300))),
        ("discrete_value_gone_in_current", "numeric", f32(rng.integers(0, 8, 300)),
         f32(rng.integers(0, 5, 300))),
        ("discrete_reference_continuous_current", "numeric",
         f32(rng.integers(0, 10, 300) * 0.5), f32(rng.normal(2.5, 1.0, 150))),
        ("constant_reference", "numeric", f32(np.full(200, 5.0)),
         f32(rng.integers(5, 7, 200))),
        ("categorical_same", "categorical", f32(rng.integers(0, 5, 500)),
         f32(rng.integers(0, 5, 500))),
        ("categorical_shift", "categorical",
         f32(rng.choice(5, 500, p=[0.4, 0.3, 0.15, 0.1, 0.05])),
         f32(rng.choice(5, 500, p=[0.2, 0.2, 0.2, 0.2, 0.2]))),
        ("categorical_new_in_current", "categorical", f32(rng.integers(1, 4, 400)),
         f32(rng.integers(1, 6, 400))),
        ("categorical_gone_in_current", "categorical", f32(rng.integers(0, 6, 400)),
         f32(rng.integers(0, 3, 400))),
        ("categorical_40_codes", "categorical", f32(rng.integers(0, 40, 600)),
         f32(rng.integers(5, 45, 600))),
    ]
    cat_nan_ref, cat_nan_cur = f32(rng.integers(0, 4, 300)), f32(rng.integers(0, 4, 300))
    cat_nan_ref[rng.random(300) < 0.05] = np.nan
    cat_nan_cur[rng.random(300) < 0.15] = np.nan
    cases.append(("categorical_with_nan", "categorical", cat_nan_ref, cat_nan_cur))
    rare = [0.7, 0.2, 0.0999, 0.0001]
    cases.append(("categorical_rare_large", "categorical", f32(rng.choice(4, 15000, p=rare)),
                  f32(rng.choice(3, 12000, p=[0.6, 0.3, 0.1]))))
    # Value bins past the 4096 distinct values driftguard's running column summary lists: a
    # discrete reference against a current window of about 6000 distinct values (multiples of
    # 1/64, exact in float32), and a code column of about 6000 codes in each window.
    cases.append(("discrete_reference_6000_values_in_current", "numeric",
                  f32(rng.integers(0, 10, 3000)), f32(rng.integers(-40000, 40000, 6500) / 64)))
    cases.append(("categorical_6000_codes", "categorical", f32(rng.integers(0, 6000, 20000)),
                  f32(rng.integers(1000, 7000, 20000))))
    return cases


def uci_cases(shared):
    import pandas as pd

    path = pathlib.Path(shared) / "datasets" / "uci_credit_card.csv"
    data = pd.read_csv(path)
    young = data["AGE"] < 40
    cases = []
    # Full windows (20856 vs 9144 rows) for a few columns, the first rows of each for the rest.
    full = [("LIMIT_BAL", "numeric"), ("BILL_AMT1", "numeric"), ("AGE", "numeric"),
            ("PAY_0", "numeric"), ("EDUCATION", "categorical")]
    head = [("PAY_AMT1", "numeric"), ("BILL_AMT6", "numeric"), ("MARRIAGE", "categorical"),
            ("SEX", "categorical")]
    for columns, rows in ((full, None), (head, 600)):
        for name, kind in columns:
            ref = f32(data.loc[young, name].to_numpy())
            cur = f32(data.loc[~young, name].to_numpy())
            if rows is not None:
                ref, cur = ref[:rows], cur[:rows]
            cases.append((f"uci_{name}_age_lt40_vs_ge40", kind, ref, cur))
    return cases


def evidently_psi(name, kind, ref, cur):
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests import psi_stat_test
    from evidently.legacy.core import ColumnType
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=["x"] if kind == "numeric" else [],
                                categorical_columns=["x"] if kind == "categorical" else [])
    datasets = [Dataset.from_pandas(pd.DataFrame({"x": values}), data_definition=definition)
                for values in (cur, ref)]
    snapshot = Report([ValueDrift(column="x", method="psi")]).run(*datasets)
    value = float(snapshot.dict()["metrics"][0]["value"])

    # The same number straight from the stattest, with the cleaning get_one_column_drift does.
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    clean = [pd.Series(v).replace([-np.inf, np.inf], np.nan).dropna() for v in (ref, cur)]
    direct = float(psi_stat_test(clean[0], clean[1], column_type, 0.1).drift_score)
    if value != direct:
        raise SystemExit(f"{name}: Report gave {value!r}, psi_stat_test {direct!r}")

    if kind == "numeric" and clean[0].nunique() > EVIDENTLY_MAX_DISCRETE:
        pooled = np.concatenate([clean[0].to_numpy(), clean[1].to_numpy()])
        binning, bins = "sturges", len(np.histogram_bin_edges(pooled, bins="sturges")) - 1
    else:
        binning, bins = "values", len(set(clean[0].unique()) | set(clean[1].unique()))
    return value, binning, bins


def json_values(values):
    """Compact exact JSON numbers: integers without a fraction, NaN as null, else repr."""
    out = []
    for v in values:
        if np.isnan(v):
            out.append(None)
        elif v == int(v) and abs(v) < 2**53:
            out.append(int(v))
        else:
            out.append(float(v))
    return out


def main():
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(here.parents[2] / "shared"))
    parser.add_argument("--out", default=str(here / "psi_evidently.json"))
    args = parser.parse_args()

    version = ensure_evidently()
    import pandas as pd

    rng = np.random.default_rng(20240601)
    cases = []
    for name, kind, ref, cur in synthetic_cases(rng) + uci_cases(args.shared):
        value, binning, bins = evidently_psi(name, kind, ref, cur)
        cases.append({"name": name, "kind": kind, "evidently_binning": binning,
                      "evidently_bins": bins, "psi": value,
                      "reference": json_values(ref), "current": json_values(cur)})
        print(f"{name:45s} {kind:12s} {binning:8s} bins={bins:4d} psi={value:.6g}")

    meta = {"evidently": version, "pandas": pd.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0],
            "api": 'evidently.Report([evidently.metrics.ValueDrift(column="x", method="psi")])',
            "stattest": "evidently.legacy.calculations.stattests.psi._psi (psi_stat_test)",
            "generator": "tests/golden/make_psi_golden.py"}
    # One case per line keeps diffs readable without indenting thousands of numbers.
    lines = ['{"meta": ' + json.dumps(meta) + ',', ' "cases": [']
    lines += ["  " + json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else "")
              for i, case in enumerate(cases)]
    lines += [" ]", "}"]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
