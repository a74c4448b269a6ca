#!/usr/bin/env python3
"""Drift statistics of the German credit data split by age, from SciPy and NumPy -> german_age.json.

    python3 tests/golden/make_german_golden.py   # reads datasets/german_credit.csv.gz

The windows are the ones `driftguard-data german` writes: applicants younger than 35 (reference)
against the rest (current), each text category coded by its position among the feature's texts
in byte order (the labels of german.schema.json). Per feature:
  ks           scipy.stats.ks_2samp(reference, current) two-sided, method auto (on the codes of a
               categorical feature, as driftguard computes it), with pvalue_bh over the 20
               features (scipy.stats.false_discovery_control)
  psi          driftguard's default PSI: numeric features over 10 reference-quantile bins, or
               by value when discrete (make_psi_quantile_golden.py's NumPy definitions: four
               numeric attributes take 2 to 4 values), categorical ones by code
  chi_squared  categorical: scipy.stats.chi2_contingency on the 2 x k table of code counts,
               codes empty in both windows dropped
  wasserstein, cvm  numeric: scipy.stats.wasserstein_distance, cramervonmises_2samp
  test_pvalue_bh  --drift-rule test: the p-values of chi_squared (categorical) and ks (numeric)
               adjusted together (scipy.stats.false_discovery_control)
and the labels, the texts in code order.
"""
import csv
import gzip
import json
import pathlib
import platform
import sys

import numpy as np
import scipy
from scipy import stats

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_ks_golden import ks_2samp  # noqa: E402
from make_psi_quantile_golden import default_psi  # noqa: E402
from make_weather_windows_golden import BINS, numeric_statistics  # noqa: E402

AGE_SPLIT = 35  # datasets/german.hpp, kGermanAgeSplit
NUMERIC = {"duration_in_month", "credit_amount",
           "installment_rate_in_percentage_of_disposable_income", "present_residence_since",
           "age_in_years", "number_of_existing_credits_at_this_bank",
           "number_of_people_being_liable_to_provide_maintenance_for"}


def main():
    source = HERE.parent.parent / "datasets" / "german_credit.csv.gz"
    with gzip.open(source, "rt", newline="") as f:
        rows = list(csv.reader(f))
    names, rows = rows[0][:-1], [r[:-1] for r in rows[1:]]
    columns = {}
    labels = {}
    for c, name in enumerate(names):
        texts = [r[c] for r in rows]
        if name in NUMERIC:
            columns[name] = np.array([float(t) for t in texts], dtype=np.float32).astype(np.float64)
        else:
            # Python sorts str by code point, which for these ASCII texts is byte order.
            labels[name] = sorted(set(texts), key=lambda t: t.encode())
            code = {t: i for i, t in enumerate(labels[name])}
            columns[name] = np.array([code[t] for t in texts], dtype=np.float64)
    younger = columns["age_in_years"] < AGE_SPLIT
    features = []
    for name in names:
        ref, cur = columns[name][younger], columns[name][~younger]
        if name in NUMERIC:
            features.append(numeric_statistics(name, ref, cur))
        else:
            ks, method = ks_2samp(ref, cur, "two-sided", "auto")
            item = {"name": name,
                    "ks": {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue),
                           "method": method}}
            k = len(labels[name])
            ref_counts = np.bincount(ref.astype(int), minlength=k)
            cur_counts = np.bincount(cur.astype(int), minlength=k)
            # Category slots [underflow 0 | codes | other 0 | missing 0].
            item["psi"] = default_psi([0, *ref_counts, 0, 0], [0, *cur_counts, 0, 0])
            table = np.array([ref_counts, cur_counts])
            table = table[:, table.sum(axis=0) > 0]
            chi2 = stats.chi2_contingency(table)
            item["chi_squared"] = {"statistic": float(chi2.statistic), "pvalue": float(chi2.pvalue),
                                   "dof": int(chi2.dof)}
            item["labels"] = labels[name]
            features.append(item)
    adjusted = stats.false_discovery_control([x["ks"]["pvalue"] for x in features])
    for x, p in zip(features, adjusted):
        x["ks"]["pvalue_bh"] = float(p)
    # --drift-rule test: each feature's test (chi-squared for categorical features, KS for
    # numeric ones) in one Benjamini-Hochberg family.
    tests = [x["chi_squared"]["pvalue"] if "chi_squared" in x else x["ks"]["pvalue"]
             for x in features]
    for x, p in zip(features, stats.false_discovery_control(tests)):
        x["test_pvalue_bh"] = float(p)
    out = {
        "what": "German credit, applicants under 35 (reference) against 35 and over (current)",
        "peers": f"SciPy {scipy.__version__}, NumPy {np.__version__}, "
                 f"Python {platform.python_version()}",
        "reference_rows": int(younger.sum()),
        "current_rows": int((~younger).sum()),
        "bins": BINS,
        "features": features,
    }
    path = HERE / "german_age.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(features)} features -> {path}")


if __name__ == "__main__":
    main()
