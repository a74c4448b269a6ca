#!/usr/bin/env python3
"""GPU two-sample KS against PyTorch (sort + searchsorted) on the same data, in one run.

Draws a reference and a current float32 table (seeded NumPy, standard normal columns, every other
feature of the current window shifted by 0.02; no NaN, which the peer would have to drop column by
column), writes them in driftguard's HDF5 layout, and times on --device the KS statistic of every
feature computed the way a PyTorch user computes scipy.stats.ks_2samp's D: both windows resident
on the device as (rows, features) tensors, columns made contiguous and sorted with torch.sort, the
empirical CDFs of both windows at every pooled value by torch.searchsorted(right=True), D = the
largest |difference| per feature, copied to the host. Two peer timings:

  sort_both            the whole computation (like for like: ks_two_sample_raw_windows);
  prebuilt_reference   the reference columns sorted beforehand, as a profile holds them (like for
                       like: ks_two_sample_resident).

Then it runs bench_ks (--bench-filter, default its CUDA cases) on the same two files and writes one
JSON with all timings, each driftguard case's ratio to both peer timings, and the peer's largest
|D - scipy.stats.ks_2samp's D| over --check-features features. driftguard's cases also compute the
p-values (SciPy's rules); the peer computes the statistic only.

  python3 bench/peer_torch_ks.py --bench .gpu/bin/bench_ks --rows 4194304 --features 64 \\
      --out "$OUT/ks_vs_torch.json"
  python3 bench/peer_torch_ks.py --bench build/bench/bench_ks --device cpu --rows 65536 \\
      --features 8 --bench-filter cpu --out /tmp/ks_vs_torch.json      # a check without a GPU
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer_common import ensure, provenance, run_bench, write_json, write_table  # noqa: E402


def ks_statistic(torch, reference_sorted, current):
    """D per feature; reference_sorted is (features, n) ascending, current (rows, features)."""
    current_sorted = torch.sort(current.t().contiguous(), dim=1).values
    pooled = torch.cat([reference_sorted, current_sorted], dim=1)
    n, m = reference_sorted.shape[1], current_sorted.shape[1]
    cdf_reference = torch.searchsorted(reference_sorted, pooled, right=True).double() / n
    cdf_current = torch.searchsorted(current_sorted, pooled, right=True).double() / m
    return (cdf_reference - cdf_current).abs().amax(dim=1).cpu()


def sort_columns(torch, table):
    return torch.sort(table.t().contiguous(), dim=1).values


def timed(torch, device, repeats, fn):
    fn()  # warm-up
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()  # ends with a copy to the host, which waits for the device
        seconds.append(time.perf_counter() - start)
    return seconds


def time_peer(torch, device, reference, current, repeats):
    """The peer's timings by case, and its D per feature."""
    d_reference = torch.from_numpy(reference).to(device)
    d_current = torch.from_numpy(current).to(device)
    reference_sorted = sort_columns(torch, d_reference)
    seconds = {
        "sort_both": timed(torch, device, repeats,
                           lambda: ks_statistic(torch, sort_columns(torch, d_reference), d_current)),
        "prebuilt_reference": timed(torch, device, repeats,
                                    lambda: ks_statistic(torch, reference_sorted, d_current)),
    }
    return seconds, ks_statistic(torch, reference_sorted, d_current).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to bench_ks")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rows", type=int, default=4 << 20)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bench-filter", default="cuda", help="bench_ks cases to run (regex)")
    ap.add_argument("--check-features", type=int, default=2,
                    help="features whose peer D is compared with scipy.stats.ks_2samp")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    np = ensure("numpy")
    h5py = ensure("h5py")
    scipy = ensure("scipy")
    torch = ensure("torch")
    from scipy import stats

    device = torch.device(args.device)
    rng = np.random.default_rng(20261127)
    shape = (args.rows, args.features)
    reference = rng.standard_normal(shape, dtype=np.float32)
    current = rng.standard_normal(shape, dtype=np.float32)
    current[:, 1::2] += np.float32(0.02)

    peer_seconds, d_peer = time_peer(torch, device, reference, current, args.repeats)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the peer's device memory goes back for bench_ks
    check_error = max((abs(d_peer[j] - stats.ks_2samp(reference[:, j], current[:, j],
                                                      method="asymp").statistic)
                       for j in range(min(args.check_features, args.features))), default=None)

    with tempfile.TemporaryDirectory() as tmp:
        ref_path = os.path.join(tmp, "reference.h5")
        cur_path = os.path.join(tmp, "current.h5")
        write_table(h5py, ref_path, reference, chunk_rows=65536)
        write_table(h5py, cur_path, current, chunk_rows=65536)
        context, runs = run_bench([args.bench, f"--reference={ref_path}", f"--current={cur_path}",
                                   f"--benchmark_filter={args.bench_filter}"], args.repeats)

    best = {case: min(seconds) for case, seconds in peer_seconds.items()}
    # The ratios compare medians, as driftguard's side is the median of its repetitions; a case
    # that does not do the peer's work (sort_columns: sorting only) gets none.
    median = {case: statistics.median(seconds) for case, seconds in peer_seconds.items()}
    rows = []
    for b in runs:
        seconds = b["seconds"]
        row = {"name": b["run_name"], "median_seconds": seconds}
        if not b["run_name"].startswith("sort_columns"):
            row.update({f"speedup_vs_torch_{case}": median[case] / seconds for case in median})
        rows.append(row)
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    result = {
        "what": "two-sample KS per feature, float32 windows resident on the device: driftguard "
                "(bench_ks: statistic + p-values) vs PyTorch sort + searchsorted (statistic)",
        **provenance({"numpy": np.__version__, "scipy": scipy.__version__,
                      "torch": torch.__version__, "torch_device": device_name}),
        "rows": args.rows, "features": args.features,
        "torch_seconds_best": best,
        "torch_seconds_median": median,
        "torch_seconds_all": peer_seconds,
        "torch_max_abs_statistic_difference_vs_scipy": check_error,
        "driftguard": rows,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    for case, seconds in median.items():
        print(f"torch ({device_name}) {case}: median {seconds * 1e3:.1f} ms")
    print(f"torch D vs scipy on {args.check_features} features: max |difference| {check_error}")
    for r in rows:
        ratios = (f" ({r['speedup_vs_torch_sort_both']:.1f}x torch sort_both, "
                  f"{r['speedup_vs_torch_prebuilt_reference']:.1f}x torch prebuilt_reference)"
                  if "speedup_vs_torch_sort_both" in r else "")
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.2f} ms{ratios}")


if __name__ == "__main__":
    main()
