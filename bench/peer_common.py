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
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {
        "machine": {"node": platform.node(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "python": platform.python_version(), **versions},
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
    }


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
