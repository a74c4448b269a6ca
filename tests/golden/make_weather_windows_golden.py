#!/usr/bin/env python3
"""Per-decade drift statistics of the NOAA weather stream, from SciPy and NumPy -> weather_windows.json.

    python3 tests/golden/make_weather_windows_golden.py   # reads datasets/noaa_weather.csv.gz

The windows are the ones `driftguard-data weather` writes and `driftguard scan --window-time 3650`
cuts: the reference is days [0, 3650) of the file, the stream the days after it with the day's
index as its timestamp, and window k holds the stream days d with floor(d / 3650) = k + 1. Every
value is the CSV's number rounded to float32 (what the HDF5 files hold). Per window and feature:
  ks          scipy.stats.ks_2samp(reference, window) two-sided, method auto: statistic, pvalue,
              the method it used, and pvalue_bh, scipy.stats.false_discovery_control over the
              window's 8 features (Benjamini-Hochberg, driftguard's default correction)
  wasserstein scipy.stats.wasserstein_distance
  cvm         scipy.stats.cramervonmises_2samp: statistic, pvalue
  psi         driftguard's default PSI over 10 reference-quantile bins (by value for a
              discrete feature), from the NumPy definitions in make_psi_quantile_golden.py
"""
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
from make_psi_quantile_golden import binned, default_psi  # noqa: E402

REFERENCE_DAYS = 3650  # datasets/weather.hpp, kWeatherReferenceDays
WINDOW_DAYS = 3650
BINS = 10


def numeric_statistics(name, ref, cur):
    """KS (two-sided, auto), Wasserstein, Cramer-von Mises and the default quantile PSI of one
    numeric feature, as driftguard's report holds them."""
    ks, method = ks_2samp(ref, cur, "two-sided", "auto")
    cvm = stats.cramervonmises_2samp(ref, cur)
    _, by_value, ref_slots, cur_slots = binned("quantile", ref, cur, BINS)
    return {
        "name": name,
        "ks": {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue), "method": method},
        "wasserstein": float(stats.wasserstein_distance(ref, cur)),
        "cvm": {"statistic": float(cvm.statistic), "pvalue": float(cvm.pvalue)},
        "psi": default_psi(ref_slots, cur_slots, by_value),
    }


def main():
    source = HERE.parent.parent / "datasets" / "noaa_weather.csv.gz"
    with gzip.open(source, "rt") as f:
        names = f.readline().strip().split(",")[:8]
        table = np.loadtxt(f, delimiter=",")
    values = table[:, :8].astype(np.float32).astype(np.float64)
    reference = values[:REFERENCE_DAYS]
    days = np.arange(REFERENCE_DAYS, len(values))
    windows = []
    for k, decade in enumerate(np.unique(days // WINDOW_DAYS)):
        in_window = days[days // WINDOW_DAYS == decade]
        window = values[in_window]
        features = [numeric_statistics(name, reference[:, f], window[:, f])
                    for f, name in enumerate(names)]
        adjusted = stats.false_discovery_control([x["ks"]["pvalue"] for x in features])
        for x, p in zip(features, adjusted):
            x["ks"]["pvalue_bh"] = float(p)
        windows.append({"index": k, "first_day": int(in_window[0]), "rows": int(len(in_window)),
                        "features": features})
    out = {
        "what": "decade windows of the NOAA weather stream against its first decade",
        "peers": f"SciPy {scipy.__version__}, NumPy {np.__version__}, "
                 f"Python {platform.python_version()}",
        "reference_days": REFERENCE_DAYS,
        "window_days": WINDOW_DAYS,
        "bins": BINS,
        "windows": windows,
    }
    path = HERE / "weather_windows.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(windows)} windows x {len(names)} features -> {path}")


if __name__ == "__main__":
    main()
