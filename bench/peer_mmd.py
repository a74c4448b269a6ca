#!/usr/bin/env python3
"""MMD permutation test against alibi-detect's computation (NumPy or PyTorch) on the same data.

Draws two float32 windows (standard normal; the current one shifted by --shift in every feature),
writes them as raw float32 files, times what alibi-detect's MMDDrift computes, then runs bench_mmd
on the same files and writes one JSON with both timings, the ratios and both MMD^2 values (they
must agree: the same data and definition). The peer, step for step as alibi-detect does it: the
median heuristic over the full reference distance matrix (sigma_median), the full pooled kernel
matrix from |x|^2 + |y|^2 - 2 x.y (squared_pairwise_distance), MMD^2 from it
(mmd2_from_kernel_matrix), and --permutations statistics, each on the kernel matrix reordered by a
random permutation.

  --peer numpy (default): NumPy in float64, driftguard's precision (alibi's TensorFlow / PyTorch
      code written with NumPy), on the CPU.
  --peer torch: alibi-detect's PyTorch backend as it runs (float32 on --device, one
      torch.randperm and one host copy per permutation); bench_mmd's CUDA case on a GPU.

  python3 bench/peer_mmd.py --bench build/bench/bench_mmd --n 2000 --features 32 \\
      --out results/cpu_mmd_vs_numpy.json
  python3 bench/peer_mmd.py --peer torch --bench .gpu/bin/bench_mmd --n 10000 --features 32 \\
      --out "$OUT/mmd_vs_torch.json"
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer_common import ensure, provenance, run_bench, write_json  # noqa: E402


class NumpyPeer:
    """alibi-detect's MMDDrift in NumPy, float64."""
    name = "numpy"

    def __init__(self, np, device):
        self.np = np

    def squared_pairwise_distance(self, x, y):
        x2 = (x ** 2).sum(axis=-1, keepdims=True)
        y2 = (y ** 2).sum(axis=-1, keepdims=True)
        return self.np.maximum(x2 + y2.T - 2.0 * x @ y.T, 1e-30)

    def mmd2_test(self, x_ref, x, permutations, seed):
        np = self.np
        x_ref, x = x_ref.astype(np.float64), x.astype(np.float64)
        rng = np.random.default_rng(seed)
        n = len(x_ref)
        d_ref = self.squared_pairwise_distance(x_ref, x_ref)
        sigma = np.sqrt(0.5 * np.sort(d_ref.ravel())[n + (n * n - n) // 2 - 1])  # sigma_median
        pooled = np.concatenate([x_ref, x])
        k = np.exp(-self.squared_pairwise_distance(pooled, pooled) / (2.0 * sigma ** 2))
        np.fill_diagonal(k, 0.0)
        mmd2 = mmd2_from_kernel_matrix(k, len(x))
        permuted = np.empty(permutations)
        for p in range(permutations):
            idx = rng.permutation(len(pooled))
            permuted[p] = mmd2_from_kernel_matrix(k[idx][:, idx], len(x))
        return float(sigma), float(mmd2), float((mmd2 <= permuted).mean())

    def synchronize(self):
        """Nothing is in flight: NumPy returns with its results."""


class TorchPeer:
    """alibi_detect.cd.pytorch.mmd.MMDDriftTorch with its GaussianRBF kernel, float32."""
    name = "torch"

    def __init__(self, np, device):
        self.torch = ensure("torch")
        self.device = self.torch.device(device)

    def squared_pairwise_distance(self, x, y):
        x2 = x.pow(2).sum(dim=-1, keepdim=True)
        y2 = y.pow(2).sum(dim=-1, keepdim=True)
        dist = self.torch.addmm(y2.transpose(-2, -1), x, y.transpose(-2, -1), alpha=-2).add_(x2)
        return dist.clamp_min_(1e-30)

    def mmd2_test(self, x_ref, x, permutations, seed):
        torch = self.torch
        torch.manual_seed(seed)
        x_ref = torch.from_numpy(x_ref).to(self.device)
        x = torch.from_numpy(x).to(self.device)
        n = len(x_ref)
        d_ref = self.squared_pairwise_distance(x_ref, x_ref)
        sigma = (0.5 * d_ref.flatten().sort().values[n + (n * n - n) // 2 - 1]) ** 0.5
        pooled = torch.cat([x_ref, x])
        k = torch.exp(-self.squared_pairwise_distance(pooled, pooled) / (2.0 * sigma ** 2))
        k = k - torch.diag(k.diag())
        mmd2 = mmd2_from_kernel_matrix(k, len(x))
        permuted = torch.tensor([
            mmd2_from_kernel_matrix(k[idx][:, idx], len(x)).item()
            for idx in (torch.randperm(len(pooled), device=self.device)
                        for _ in range(permutations))])
        return float(sigma), float(mmd2), float((mmd2.cpu() <= permuted).float().mean())

    def synchronize(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


def mmd2_from_kernel_matrix(k, m):
    """alibi's mmd2_from_kernel_matrix on a zero-diagonal kernel matrix (NumPy or PyTorch)."""
    n = k.shape[0] - m
    k_xx, k_yy, k_xy = k[:-m, :-m], k[-m:, -m:], k[-m:, :-m]
    return k_xx.sum() / (n * (n - 1)) + k_yy.sum() / (m * (m - 1)) - 2.0 * k_xy.mean()


PEERS = {"numpy": NumpyPeer, "torch": TorchPeer}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=sorted(PEERS), default="numpy")
    ap.add_argument("--device", default="cuda", help="the torch peer's device")
    ap.add_argument("--bench", required=True, help="path to bench_mmd")
    ap.add_argument("--bench-filter", help="bench_mmd cases to run (regex; default: the CPU case "
                                           "for numpy, the CUDA case for torch on a GPU)")
    ap.add_argument("--n", type=int, default=2000, help="rows of each window")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument("--shift", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.permutations != 100:
        ap.error("bench_mmd times 100 permutations")

    np = ensure("numpy")
    peer = PEERS[args.peer](np, args.device)
    on_gpu = args.peer == "torch" and peer.device.type == "cuda"
    bench_filter = args.bench_filter or ("cuda" if on_gpu else "cpu")
    rng = np.random.default_rng(20261126)
    x_ref = rng.standard_normal((args.n, args.features), dtype=np.float32)
    x = rng.standard_normal((args.n, args.features), dtype=np.float32) + np.float32(args.shift)

    if args.peer == "torch":
        peer.mmd2_test(x_ref, x, args.permutations, 0)  # warm-up: kernel loading, the allocator
    peer_seconds = []
    for r in range(args.repeats):
        peer.synchronize()
        start = time.perf_counter()
        sigma, mmd2, pvalue = peer.mmd2_test(x_ref, x, args.permutations, r)
        peer_seconds.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = os.path.join(tmp, "reference.f32"), os.path.join(tmp, "current.f32")
        x_ref.tofile(ref_path)
        x.tofile(cur_path)
        context, runs = run_bench([args.bench, f"--reference={ref_path}", f"--current={cur_path}",
                                   f"--features={args.features}",
                                   f"--benchmark_filter={bench_filter}"], args.repeats)

    # The ratio compares medians, as driftguard's side is the median of its repetitions.
    best_peer, median_peer = min(peer_seconds), statistics.median(peer_seconds)
    rows = []
    for b in runs:
        seconds = b["seconds"]
        rows.append({"name": b["run_name"], "median_seconds": seconds,
                     f"speedup_vs_{peer.name}": median_peer / seconds, "mmd2": b["mmd2"],
                     "pvalue": b["pvalue"], "sigma": b["sigma"],
                     "mmd2_relative_difference": abs(b["mmd2"] - mmd2) / abs(mmd2)})
    versions = {"numpy": np.__version__}
    if args.peer == "torch":
        versions.update(torch=peer.torch.__version__, torch_device=(
            peer.torch.cuda.get_device_name(peer.device) if on_gpu else str(peer.device)))
    result = {
        "what": f"MMD^2 + 100-permutation test: driftguard vs alibi-style {peer.name} (full kernel "
                f"matrix, permuted by index), {'float32' if args.peer == 'torch' else 'float64'}",
        **provenance(versions),
        "n_reference": args.n, "n_current": args.n, "features": args.features,
        "permutations": args.permutations, "shift": args.shift,
        peer.name: {"seconds_best": best_peer, "seconds_median": median_peer,
                    "seconds_all": peer_seconds, "sigma": sigma,
                    "mmd2": mmd2, "pvalue_alibi": pvalue},
        "driftguard": rows,
        "driftguard_context": context,
    }
    write_json(args.out, result)
    print(f"{peer.name} (alibi-style): median {median_peer * 1e3:.1f} ms, mmd2={mmd2:.6g}, sigma={sigma:.6g}")
    for r in rows:
        print(f"{r['name']}: {r['median_seconds'] * 1e3:.2f} ms "
              f"({r[f'speedup_vs_{peer.name}']:.1f}x {peer.name}), mmd2={r['mmd2']:.6g}")


if __name__ == "__main__":
    main()
