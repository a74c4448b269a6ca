"""Shared by the peer scripts: installing a missing peer, and the provenance every result carries."""
import json
import os
import platform
import subprocess
import sys
import time


def ensure(package, module=None):
    """Imports `module` (default: `package`), pip-installing `package` first when it is missing."""
    try:
        return __import__(module or package)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", package])
        return __import__(module or package)


def provenance(versions):
    """Machine, load, commit and date for a result; `versions` names the peers' versions."""
    # DRIFTGUARD_COMMIT: the commit of the binary timed, where it is not this checkout's build (a
    # baseline built from another commit) or the tree travelled without its git history (a device
    # machine). Otherwise this checkout's HEAD, "+changes" when tracked files differ from it.
    commit = os.environ.get("DRIFTGUARD_COMMIT")
    if not commit:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        if commit and dirty:
            commit += "+changes"
    return {
        "machine": {"node": platform.node(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "python": platform.python_version(), **versions},
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
    }


def write_table(h5py, path, table, names=None, chunk_rows=None):
    """A float32 table in driftguard's HDF5 layout: /features (rows x features, chunks of
    `chunk_rows` rows, or contiguous) and /feature_names (default x0, x1, ...)."""
    names = names or [f"x{i}" for i in range(table.shape[1])]
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "driftguard"
        f.attrs["format_version"] = 1
        chunks = (min(len(table), chunk_rows), table.shape[1]) if chunk_rows else None
        f.create_dataset("features", data=table, chunks=chunks)
        f.create_dataset("feature_names", data=names, dtype=h5py.string_dtype())


def write_json(path, result):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


def run_bench(command, repeats):
    """Runs a Google Benchmark binary (times in milliseconds) `repeats` times.

    Returns its context and its median runs (the runs themselves when a single repetition gives no
    aggregates), each with `seconds` added.
    """
    out = subprocess.run(command + ["--benchmark_format=json", f"--benchmark_repetitions={repeats}",
                                    "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    runs = report["benchmarks"]
    runs = [b for b in runs if b.get("aggregate_name") == "median"] or runs
    return report["context"], [dict(b, seconds=b["real_time"] / 1e3) for b in runs]
