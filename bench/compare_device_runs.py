#!/usr/bin/env python3
"""Compares two device-check runs case by case: every benchmark (bench_<gpu>.json) and every
driftguard case of the peers' files (score_vs_xgboost, ks_vs_torch, mmd_vs_torch) that both runs
have, with the baseline's time, the new time and new / baseline. device_check.sh calls it against
the newest committed run of the same GPU, so a session sees at once what its changes did.

    python3 bench/compare_device_runs.py results/h200_20261127 results/h200_20261127_b
"""
import argparse
import glob
import json
import os
import sys

PEERS = ("score_vs_xgboost", "ks_vs_torch", "mmd_vs_torch")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def case_seconds(run_dir):
    """{case name: seconds} over a run's benchmark and peer files."""
    cases = {}
    for path in glob.glob(os.path.join(run_dir, "bench_*.json")):
        for binary, result in load(path).items():
            for b in result.get("benchmarks", []) if isinstance(result, dict) else []:
                if b.get("run_type", "iteration") != "iteration" or "real_time" not in b:
                    continue
                seconds = b["real_time"] * UNIT_SECONDS.get(b.get("time_unit", "ns"), 1e-9)
                cases[f"{binary}: {b['name']}"] = seconds
    for peer in PEERS:
        for r in load(os.path.join(run_dir, peer + ".json")).get("driftguard", []):
            if "median_seconds" in r:
                cases[f"{peer}: {r['name']}"] = r["median_seconds"]
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", help="a committed run, e.g. results/h200_20261127_b")
    parser.add_argument("new", help="the run to compare, e.g. $OUT")
    args = parser.parse_args()
    old, new = case_seconds(args.baseline), case_seconds(args.new)
    common = sorted(set(old) & set(new))
    if not common:
        sys.exit(f"compare_device_runs: no case in both {args.baseline} and {args.new}")
    print(f"against {args.baseline} ({len(common)} cases in both; new / baseline < 1 is faster)")
    print(f"{'case':<92} {'baseline':>11} {'new':>11} {'ratio':>6}")
    for name in common:
        print(f"{name[:92]:<92} {old[name] * 1e3:>8.2f} ms {new[name] * 1e3:>8.2f} ms "
              f"{new[name] / old[name]:>6.2f}")


if __name__ == "__main__":
    main()
