"""Cost of the whole chain at the size of large GEO series: 10k, 50k and 100k cells x 5,000 genes.

    python benchmarks/scale.py [--sizes 10000 50000 100000] [--genes 5000] [--epochs 1] [--thin 0.15]
                               [--workdir DIR] [--cores 2] [--keep]

Data: the real shipped CellBench counts (resources/cellbench.h5ad, 992 cells x 11,533 genes, five cell
lines in five batches), restricted to its ``--genes`` most-expressed genes and resampled to each size:
cells drawn with replacement (seeded), each drawn cell's counts binomially thinned (``--thin``, default
p = 0.15) so that no two cells are identical (kNN graphs and co-ranking of exact duplicates are
degenerate) and the depth is that of a droplet experiment: CellBench's CEL-seq2 cells have ~21,000
counts in these genes (72 % of the entries non-zero); thinned, ~3,000 counts and 31 % non-zero, about a
10x v3 cell. Labels and batches come with the cells.

Each size is run by the real workflow (``snakemake --cores N`` on the target
``results/metrics/scale<k>k/livae/seed0.tsv``), one size at a time in a fresh working directory, so every
stage is the product's own job: assemble_counts, preprocess, train (LiVAE, ``--epochs`` epochs, no early
stopping), embed (UMAP + t-SNE) and evaluate (the metric panel; its O(n^2) co-ranking part sees a seeded
subsample of ``metrics.max_cells`` cells by design). Wall time and peak RSS per stage come from each
job: the wall time from its Snakemake ``benchmark:`` file (``s``), the peak RSS from the last line of its
log (``peak RSS <x> GB``: the kernel's high-water mark of the job's process, exact, whereas the
benchmark file's ``max_rss`` is sampled and can miss a short peak).

Printed: one row per size and stage, then per stage the seconds per 1,000 cells at each size (growth no
faster than linear: that ratio does not rise with the size), then per size the peak RSS over its stages.
Goal: 100k cells through the whole chain within 8 GB peak RSS. The last line is machine-readable:
``scale_100k_peak_rss_gb=<x>`` (the largest size run when 100k is not among ``--sizes``).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "resources" / "cellbench.h5ad"
STAGES = ("assemble_counts", "preprocess", "train", "embed", "evaluate")
GOAL_GB = 8.0
PEAK = re.compile(r"peak RSS ([0-9.]+) GB")


def resample(n_cells: int, n_genes: int, out: Path, thin: float, seed: int = 0) -> None:
    """Write ``n_cells`` resampled, thinned cells of the shipped CellBench counts (top ``n_genes`` genes)."""
    import anndata as ad
    import scipy.sparse as sp

    src = ad.read_h5ad(SOURCE)
    counts = sp.csr_matrix(src.X)
    top = np.sort(np.argsort(-np.asarray(counts.sum(axis=0)).ravel(), kind="stable")[:n_genes])
    counts = sp.csr_matrix(counts[:, top], dtype=np.int64)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, counts.shape[0], size=n_cells)
    picked = counts[rows]
    picked.data = rng.binomial(picked.data, thin).astype(np.int32)
    picked.eliminate_zeros()
    obs = src.obs.iloc[rows][["cell_line", "batch"]].copy()
    obs.index = [f"cell{i}" for i in range(n_cells)]
    adata = ad.AnnData(X=picked, obs=obs, var=src.var.iloc[top].copy())
    adata.uns["provenance"] = (f"resampled by benchmarks/scale.py from {SOURCE.name}: {n_cells} cells drawn "
                               f"with replacement (seed {seed}), counts thinned with p={thin}")
    adata.write_h5ad(out)


def write_config(workdir: Path, dataset: str, data: Path, epochs: int) -> Path:
    registry = workdir / "datasets.tsv"
    registry.write_text("dataset\tmodality\tsource\tpath\tlabel_key\tbatch_key\n"
                        f"{dataset}\trna\tfile\t{data}\tcell_line\tbatch\n")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(datasets=str(registry), methods=["livae"], seeds=[0], paper_comparisons=[], comparisons={},
                  analyses={}, method_params={"livae": {"epochs": epochs, "patience": 0}})
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_size(n_cells: int, args) -> list[dict]:
    dataset = f"scale{n_cells // 1000}k"
    workdir = args.workdir / dataset
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    data = workdir / f"{dataset}.h5ad"
    start = time.perf_counter()
    resample(n_cells, args.genes, data, args.thin)
    print(f"{dataset}: wrote {data} in {time.perf_counter() - start:.1f} s", flush=True)
    config = write_config(workdir, dataset, data, args.epochs)
    target = f"results/metrics/{dataset}/livae/seed0.tsv"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", str(args.cores), target]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{dataset}: snakemake failed (exit {proc.returncode}); its log:\n{proc.stderr[-4000:]}")
    rows = []
    for stage in STAGES:
        name = dataset if stage in ("assemble_counts", "preprocess") else f"{dataset}/livae/seed0"
        bench = pd.read_csv(workdir / "results" / "benchmarks" / stage / f"{name}.tsv", sep="\t").iloc[0]
        peaks = PEAK.findall((workdir / "logs" / stage / f"{name}.log").read_text())
        rows.append({"cells": n_cells, "stage": stage, "seconds": float(bench["s"]),
                     "peak_rss_gb": float(peaks[-1]), "sampled_max_rss_gb": float(bench["max_rss"]) / 1024})
    print(f"{dataset}: whole snakemake run {wall:.1f} s", flush=True)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--thin", type=float, default=0.15, help="binomial thinning of the resampled counts")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep each size's working directory")
    args = parser.parse_args()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="livaebench-scale-")
        args.workdir = Path(tmp.name)
    rows = [row for n in sorted(args.sizes) for row in run_size(n, args)]
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    per_kcell = table.assign(s_per_kcell=table["seconds"] / (table["cells"] / 1000))
    print("\nseconds per 1,000 cells (linear growth: no rise with size)")
    print(per_kcell.pivot(index="stage", columns="cells", values="s_per_kcell").loc[list(STAGES)]
          .to_string(float_format=lambda v: f"{v:.3f}"))
    peak = table.groupby("cells")["peak_rss_gb"].max()
    print("\npeak RSS per size (GB): " + ", ".join(f"{n}: {v:.2f}" for n, v in peak.items())
          + f"; goal at 100k: <= {GOAL_GB:.0f} GB")
    largest = 100_000 if 100_000 in peak.index else int(peak.index.max())
    print(f"scale_100k_peak_rss_gb={peak.loc[largest]:.2f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
