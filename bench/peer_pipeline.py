#!/usr/bin/env python3
"""Streaming scan throughput against the bare HDF5 read of the same file, in one run.

Runs bench_pipeline (hdf5_read, scan_stream, scan_windows, validate_histogram per file size) and
writes one JSON with each case's median throughput, per-batch latencies and its ratio to
hdf5_read of the same file, plus machine provenance. With h5py (pip) available it also times a
Python peer on the smallest synth file, in the same run: h5py reads the same batches (read_direct into
one buffer) and NumPy counts NaNs and histograms every feature with the reference-quantile edges
(np.quantile + np.unique, driftguard's quantile policy), per batch.

  python3 bench/peer_pipeline.py --bench build-bench/bench/bench_pipeline \
      --out results/cpu_pipeline.json
"""
import argparse
import os
import re
import statistics
import time

from peer_common import ensure, provenance, run_bench, write_json

FEATURES = 32
REFERENCE_ROWS = 1 << 18

COUNTERS = ["bytes_per_second", "rows/s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
            "fraction_of_read", "stream_fraction_of_read", "read_busy", "compute_busy",
            "read_bytes_per_second", "setup_ms", "batch_rows", "batches", "pinned", "h2d_fraction"]


def python_peer(directory, mib, batch_rows, repeats):
    """h5py read + NaN count + np.histogram per feature, batch by batch; `repeats` runs."""
    np = ensure("numpy")
    h5py = ensure("h5py")
    rows = (mib << 20) // (FEATURES * 4)
    current = os.path.join(directory, f"synth_current_f32_r{rows}.h5")
    reference = os.path.join(directory, f"synth_reference_f32_r{REFERENCE_ROWS}.h5")
    with h5py.File(reference, "r") as f:
        ref = f["features"][:]
    probabilities = np.linspace(0, 1, 11)
    edges = []
    for j in range(FEATURES):
        column = ref[:, j].astype(np.float64)
        edges.append(np.unique(np.quantile(column[np.isfinite(column)], probabilities)))
    read_seconds, full_seconds = [], []
    with h5py.File(current, "r") as f:
        dset = f["features"]
        assert dset.shape == (rows, FEATURES), dset.shape
        buffer = np.empty((batch_rows, FEATURES), dtype=np.float32)
        for _ in range(repeats):
            start = time.perf_counter()
            for first in range(0, rows, batch_rows):
                n = min(batch_rows, rows - first)
                dset.read_direct(buffer, np.s_[first:first + n], np.s_[0:n])
            read_seconds.append(time.perf_counter() - start)
        for _ in range(repeats):
            start = time.perf_counter()
            for first in range(0, rows, batch_rows):
                n = min(batch_rows, rows - first)
                dset.read_direct(buffer, np.s_[first:first + n], np.s_[0:n])
                batch = buffer[:n]
                np.isnan(batch).sum(axis=0)
                for j in range(FEATURES):
                    np.histogram(batch[:, j], bins=edges[j])
            full_seconds.append(time.perf_counter() - start)
    file_bytes = rows * FEATURES * 4
    return {
        "file_mib": mib, "rows": rows, "batch_rows": batch_rows,
        "what": "h5py read_direct per batch, then np.isnan(batch).sum(axis=0) and np.histogram per "
                "feature with the reference-quantile edges (10 bins)",
        # Rates from the medians, as driftguard's side is the median of its repetitions.
        "h5py_read_seconds_best": min(read_seconds),
        "h5py_read_seconds_median": statistics.median(read_seconds),
        "h5py_read_bytes_per_second": file_bytes / statistics.median(read_seconds),
        "read_histogram_seconds_best": min(full_seconds),
        "read_histogram_seconds_median": statistics.median(full_seconds),
        "read_histogram_bytes_per_second": file_bytes / statistics.median(full_seconds),
        "versions": {"numpy": np.__version__, "h5py": h5py.__version__},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path to bench_pipeline")
    ap.add_argument("--dir", default="/tmp/driftguard_bench_pipeline", help="the bench's files")
    ap.add_argument("--sizes-mib", default="256,1024")
    ap.add_argument("--data", default="synth,numeric", help="bench_pipeline --pipeline_data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--filter", default="", help="--benchmark_filter for bench_pipeline")
    ap.add_argument("--no-peer", action="store_true", help="skip the h5py + NumPy peer")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    command = [args.bench, f"--pipeline_dir={args.dir}", f"--pipeline_sizes_mib={args.sizes_mib}",
               f"--pipeline_data={args.data}"]
    if args.filter:
        command.append(f"--benchmark_filter={args.filter}")
    started = time.time()
    context, runs = run_bench(command, args.repeats)
    bench_seconds = time.time() - started

    cases = []
    for b in runs:
        name = re.sub(r"/(min_time:[^/]*|real_time|manual_time)", "", b["run_name"])
        case = {"name": name, "median_seconds": b["seconds"], "iterations": b["iterations"]}
        case.update({k: b[k] for k in COUNTERS if k in b})
        cases.append(case)
    by_name = {c["name"]: c for c in cases}
    files = []  # (data kind, MiB) in the bench's order
    for c in cases:
        if "/mib:" in c["name"]:
            mib, data = c["name"].split("/mib:", 1)[1].split("/data:")
            if (data, int(mib)) not in files:
                files.append((data, int(mib)))
    summary = []
    for data, mib in files:
        suffix = f"/mib:{mib}/data:{data}"
        read = by_name.get(f"hdf5_read{suffix}")
        entry = {"data": data, "file_mib": mib}
        if read:
            entry["hdf5_read_bytes_per_second"] = read["bytes_per_second"]
        for kind in ("scan_stream", "scan_windows", "validate_histogram", "h2d_pinned"):
            for backend in ("cpu", "cuda"):
                c = by_name.get(f"{kind}/{backend}{suffix}")
                if c:
                    entry[f"{kind}/{backend}"] = {k: c[k] for k in (
                        "bytes_per_second", "fraction_of_read", "stream_fraction_of_read",
                        "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "setup_ms",
                        "read_busy", "compute_busy", "h2d_fraction") if k in c}
        stream = entry.get("scan_stream/cpu")
        if stream:
            entry["scan_stream_cpu_meets_0.8_of_read"] = stream["fraction_of_read"] >= 0.8
        summary.append(entry)

    peer = None
    versions = {}
    if args.no_peer:
        peer = {"skipped": "--no-peer"}
    else:
        try:
            smallest = min(mib for data, mib in files if data == "synth")
            suffix = f"/mib:{smallest}/data:synth"
            batch_rows = int(by_name[f"hdf5_read{suffix}"]["batch_rows"])
            peer = python_peer(args.dir, smallest, batch_rows, args.repeats)
            versions = peer.pop("versions")
            read = by_name[f"hdf5_read{suffix}"]["bytes_per_second"]
            stream = by_name.get(f"scan_stream/cpu{suffix}")
            peer["driftguard_hdf5_read_over_h5py_read"] = read / peer["h5py_read_bytes_per_second"]
            if stream:
                peer["scan_stream_cpu_over_peer"] = (
                    stream["bytes_per_second"] / peer["read_histogram_bytes_per_second"])
        except Exception as e:  # an uninstallable peer is reported, not fatal
            peer = {"skipped": f"{type(e).__name__}: {e}"}

    result = {
        "what": "streaming scan (scan_stream: validation + PSI histograms; scan_windows: 1Mi-row "
                "windows with KS and distances) vs a bare Hdf5BatchReader::read loop over the "
                "same page-cache-hot uncompressed float32 file, 32 features",
        **provenance(versions),
        "bench_command": command,
        "repeats": args.repeats,
        "bench_wall_seconds": bench_seconds,
        "summary": summary,
        "cases": cases,
        "python_peer": peer,
        "bench_context": context,
    }
    write_json(args.out, result)
    for c in cases:
        frac = c.get("fraction_of_read")
        print(f"{c['name']:<36} {c['median_seconds'] * 1e3:9.1f} ms "
              f"{c.get('bytes_per_second', 0) / 1e9:6.2f} GB/s"
              + (f"  {frac:.2f} of read" if frac is not None else "")
              + (f"  p50/p99 {c['latency_p50_ms']:.1f}/{c['latency_p99_ms']:.1f} ms"
                 if "latency_p50_ms" in c else ""))
    if peer and "skipped" not in peer:
        print(f"python peer ({peer['file_mib']} MiB): h5py read "
              f"{peer['h5py_read_bytes_per_second'] / 1e9:.2f} GB/s, read + isnan + np.histogram "
              f"{peer['read_histogram_bytes_per_second'] / 1e9:.3f} GB/s")
    elif peer:
        print(f"python peer skipped: {peer['skipped']}")


if __name__ == "__main__":
    main()
