"""Time and peak memory of the whole metric panel of one embedding at 2,000, 5,000 and 10,000 cells.

    python benchmarks/metrics_cost.py [--sizes 2000 5000 10000] [--quick]

Data: a synthetic 10-d latent (12 Gaussian cell types, 3 batches with small shifts), its UMAP
(umap-learn) and t-SNE (openTSNE): the panel's cost depends on the number of cells, not on where they
come from, and no shipped dataset has 10,000 cells. ``--quick`` replaces UMAP/t-SNE by two noisy
linear 2-D projections (faster preparation, same panel cost to within noise).

Each panel runs in a fresh Python process, as in the workflow, so its time includes one-off costs
such as numba compiling scanpy's neighbour graph for Leiden. Its peak RSS is the kernel's high-water
mark of that process (VmHWM: imports + data + panel; ``ru_maxrss`` is not used because Linux carries
it over from the parent across exec); the RSS before the panel is printed beside it. UMAP and t-SNE
are computed beforehand, in another process, and are not timed. Two settings per size: the default co-ranking
cap (max_cells = 3000) and no cap (every cell in the O(n²) co-ranking and distance correlation).
The machine is shared: the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_embedding(n: int, seed: int, quick: bool, path: Path) -> None:
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 12, n)
    b = rng.integers(0, 3, n)
    z = rng.normal(size=(12, 10))[y] * 3.0 + rng.normal(size=(n, 10)) + rng.normal(size=(3, 10))[b] * 0.7
    z = z.astype(np.float32)
    if quick:
        umap_xy = z @ rng.normal(size=(10, 2)) + rng.normal(size=(n, 2))
        tsne_xy = z @ rng.normal(size=(10, 2)) + rng.normal(size=(n, 2))
    else:
        import umap
        from openTSNE import TSNE

        umap_xy = umap.UMAP(n_neighbors=15, random_state=seed).fit_transform(z)
        tsne_xy = np.asarray(TSNE(perplexity=30, random_state=seed, n_jobs=2).fit(z))
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"t{i}" for i in y]),
                        "batch": pd.Categorical([f"b{i}" for i in b])}, index=[f"c{i}" for i in range(n)])
    a = ad.AnnData(np.zeros((n, 0), dtype=np.float32), obs=obs)
    a.obsm["X_latent"] = z
    a.obsm["X_umap"] = np.asarray(umap_xy, dtype=np.float32)
    a.obsm["X_tsne"] = np.asarray(tsne_xy, dtype=np.float32)
    a.uns["livaebench"] = {"dataset": f"synthetic{n}", "method": "gaussian_mixture", "seed": seed}
    a.write_h5ad(path)


def peak_rss_gib() -> float:
    """High-water mark of this process's resident memory, in GiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def child(path: str, max_cells: int) -> None:
    """Run the panel once and print one JSON line with its cost."""
    import anndata as ad

    from livaebench.metrics import evaluate_embedding

    a = ad.read_h5ad(path)
    rss_before = peak_rss_gib()
    wall, cpu = time.perf_counter(), time.process_time()
    df = evaluate_embedding(a, label_key="cell_type", batch_key="batch", seed=0, max_cells=max_cells)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({
        "n": a.n_obs, "max_cells": max_cells, "n_dre": df.attrs["n_cells_dre"], "wall_s": wall, "cpu_s": cpu,
        "peak_rss_gb": peak_rss_gib(),
        "rss_before_gb": rss_before, "n_metrics": int(df["value"].notna().sum()),
        "timings": df.attrs["timings"],
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    ap.add_argument("--cap", type=int, default=3000, help="the default max_cells of the co-ranking")
    ap.add_argument("--quick", action="store_true", help="linear stand-ins for UMAP/t-SNE")
    ap.add_argument("--child", nargs=2, metavar=("H5AD", "MAX_CELLS"), help=argparse.SUPPRESS)
    ap.add_argument("--prepare", nargs=2, metavar=("N", "H5AD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    if args.prepare:
        make_embedding(int(args.prepare[0]), seed=0, quick=args.quick, path=Path(args.prepare[1]))
        return
    print(f"load average before: {os.getloadavg()}  (cores: {os.cpu_count()})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"emb{n}.h5ad"
            t = time.perf_counter()
            # in its own process, so that this launcher stays small
            subprocess.run([sys.executable, __file__, "--prepare", str(n), str(path)] + ["--quick"] * args.quick,
                           check=True, capture_output=True)
            print(f"prepared {n} cells (latent, UMAP, t-SNE) in {time.perf_counter() - t:.0f} s (not timed)", flush=True)
            for cap in sorted({min(args.cap, n), n}):
                out = subprocess.run([sys.executable, __file__, "--child", str(path), str(cap)],
                                     capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"  n={n} max_cells={cap}: {r['wall_s']:.1f} s, peak {r['peak_rss_gb']:.2f} GiB", flush=True)
    print(f"load average after: {os.getloadavg()}\n")
    head = (f"{'cells':>6} {'co-rank cells':>13} {'wall s':>7} {'cpu s':>7} {'peak RSS GiB':>12} "
            f"{'before GiB':>10}  largest blocks (s)")
    print(head)
    print("-" * len(head))
    for r in rows:
        top = sorted(r["timings"].items(), key=lambda kv: -kv[1])[:4]
        blocks = ", ".join(f"{k} {v:.1f}" for k, v in top)
        print(f"{r['n']:>6} {r['n_dre']:>13} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} {r['peak_rss_gb']:>12.2f} "
              f"{r['rss_before_gb']:>10.2f}  {blocks}")
    print("\nGoal: one 10,000-cell embedding in <= 60 s and <= 3 GB peak (UMAP/t-SNE excluded).")


if __name__ == "__main__":
    main()
