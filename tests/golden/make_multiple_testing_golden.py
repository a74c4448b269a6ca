#!/usr/bin/env python3
"""Adjusted p-values from SciPy for tests/test_multiple_testing.cpp.

Benjamini-Hochberg: scipy.stats.false_discovery_control(p, method="bh");
Bonferroni: numpy.minimum(1, m * p). Writes tests/golden/multiple_testing_scipy.json.
"""
import json
import os

import numpy as np
import scipy
from scipy.stats import false_discovery_control

rng = np.random.default_rng(7)
cases = []
for m in [1, 2, 3, 5, 10, 23, 64, 500]:
    for kind in ["uniform", "small", "ties"]:
        if kind == "uniform":
            p = rng.uniform(size=m)
        elif kind == "small":
            p = 10.0 ** rng.uniform(-12, 0, size=m)
        else:
            p = rng.choice([1e-4, 0.01, 0.02, 0.5, 1.0], size=m)
        bh = false_discovery_control(p, method="bh") if m > 1 else p
        cases.append({"pvalues": p.tolist(), "bh": np.atleast_1d(bh).tolist(),
                      "bonferroni": np.minimum(1.0, m * p).tolist()})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multiple_testing_scipy.json")
with open(out, "w") as f:
    json.dump({"scipy": scipy.__version__, "cases": cases}, f)
print(f"{len(cases)} cases -> {out}")
