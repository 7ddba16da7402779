"""Training throughput of LiVAE (this project's engine) against scvi-tools' SCVI on the shipped pancreas data.

Both models see the same preprocessed data (the project's preprocessing of resources/pancreas.h5ad),
the same split (85 % training cells), batch 128, 1 hidden layer of 128, latent 10, NB likelihood,
and the same number of torch threads. Each model trains in its own fresh process, so peak RSS is its
own. Throughput = training cells / seconds per epoch, median over the epochs after the first (warm-up).
LiVAE's epoch time includes its validation pass; SCVI's does not (it validates only with early
stopping), which favours SCVI.

    python benchmarks/train_throughput.py [--epochs 10] [--threads 2] [--all-genes] [--quality]

``--quality`` also trains LiVAE with its defaults (up to 400 epochs, early stopping) and PCA on the
same input and prints the ARI of KMeans (k = number of cell types, n_init 10) against the labels.
The last line is ``livae_vs_scvi_cells_per_s_ratio=<x>``. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "resources" / "pancreas.h5ad"
LABEL_KEY = "clusters"
TRAIN_FRAC = 0.85


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)


def worker_livae(path: str, epochs: int, threads: int) -> dict:
    import anndata as ad
    import pandas as pd

    from livaebench.methods import fit_method

    adata = ad.read_h5ad(path)
    with tempfile.TemporaryDirectory() as out:
        fit_method("livae", adata, dataset="pancreas", seed=0, outdir=out, threads=threads,
                   overrides={"epochs": epochs, "patience": 0, "val_frac": 1 - TRAIN_FRAC,
                              "checkpoint_seconds": 1e9})
        log = pd.read_csv(Path(out) / "train_log.tsv", sep="\t")
        info = json.loads((Path(out) / "train_info.json").read_text())
    import torch
    return {"epoch_seconds": log["seconds"].tolist(), "n_train": info["n_train"], "version": f"torch {torch.__version__}"}


def worker_scvi(path: str, epochs: int, threads: int) -> dict:
    import anndata as ad
    import lightning.pytorch as pl
    import scvi
    import torch

    torch.set_num_threads(threads)
    adata = ad.read_h5ad(path)
    scvi.settings.seed = 0
    scvi.settings.dl_num_workers = 0

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, module):
            self._t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds.append(time.perf_counter() - self._t0)

    timer = EpochTimer()
    scvi.model.SCVI.setup_anndata(adata, layer="counts")
    model = scvi.model.SCVI(adata, n_hidden=128, n_latent=10, n_layers=1, gene_likelihood="nb")
    model.train(max_epochs=epochs, batch_size=128, train_size=TRAIN_FRAC, early_stopping=False,
                accelerator="cpu", devices=1, enable_progress_bar=False, callbacks=[timer], logger=False,
                enable_checkpointing=False)
    return {"epoch_seconds": timer.seconds, "n_train": int(round(TRAIN_FRAC * adata.n_obs)),
            "version": f"scvi-tools {scvi.__version__}, lightning {pl.__version__}, torch {torch.__version__}"}


def worker_quality(path: str, epochs: int, threads: int) -> dict:
    import anndata as ad
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from livaebench.methods import fit_method

    adata = ad.read_h5ad(path)
    labels = adata.obs[LABEL_KEY].to_numpy()
    k = len(np.unique(labels))

    def ari(latent):
        return float(adjusted_rand_score(labels, KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(latent)))

    result = {}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        livae = fit_method("livae", adata, dataset="pancreas", seed=0, outdir=Path(out) / "livae", threads=threads)
        result["livae_seconds"] = time.perf_counter() - t0
        result["livae_info"] = json.loads((Path(out) / "livae" / "train_info.json").read_text())
        pca = fit_method("pca", adata, dataset="pancreas", seed=0, outdir=Path(out) / "pca", threads=threads)
    result["ari_livae"] = ari(livae["X_latent"])
    result["ari_livae_bottleneck"] = ari(livae["X_bottleneck"])
    result["ari_pca"] = ari(pca["X_latent"])
    result["k"] = k
    return result


WORKERS = {"livae": worker_livae, "scvi": worker_scvi, "quality": worker_quality}


def run_worker(name: str, path: str, epochs: int, threads: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--data", path, "--epochs", str(epochs),
                           "--threads", str(threads)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{name} worker failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quality", action="store_true", help="also compare LiVAE's and PCA's KMeans ARI")
    parser.add_argument("--all-genes", action="store_true",
                        help="keep all 2000 genes (no min_cells/min_genes QC), the size of docs/MEASUREMENTS.md")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _limit_threads(args.threads)

    if args.worker:
        result = WORKERS[args.worker](args.data, args.epochs, args.threads)
        result["peak_rss_gb"] = _peak_rss_gb()
        print(json.dumps(result))
        return

    import anndata as ad

    from livaebench.data.preprocess import preprocess

    with tempfile.TemporaryDirectory() as tmp:
        qc = {"min_cells": 0, "min_genes": 0} if args.all_genes else {}
        prep = preprocess(ad.read_h5ad(DATA), dataset="pancreas", modality="rna", label_key=LABEL_KEY, **qc)
        path = str(Path(tmp) / "pancreas_preprocessed.h5ad")
        prep.write_h5ad(path)
        print(f"pancreas: {prep.n_obs} cells x {prep.n_vars} genes (project preprocessing{', no QC' if args.all_genes else ''}), "
              f"{args.threads} threads, {args.epochs} epochs, batch 128", flush=True)
        rows = {}
        for name in ("livae", "scvi"):
            res = run_worker(name, path, args.epochs, args.threads)
            secs = res["epoch_seconds"][1:] or res["epoch_seconds"]
            rows[name] = {"cells_per_s": statistics.median(res["n_train"] / s for s in secs),
                          "s_per_epoch": statistics.median(secs), "peak_rss_gb": res["peak_rss_gb"],
                          "process_s": res["process_seconds"], "version": res.get("version", "")}
        quality = run_worker("quality", path, args.epochs, args.threads) if args.quality else None

    print(f"{'model':<8}{'cells/s':>10}{'s/epoch':>10}{'peak RSS GB':>13}{'process s':>11}")
    for name, r in rows.items():
        print(f"{name:<8}{r['cells_per_s']:>10.0f}{r['s_per_epoch']:>10.3f}{r['peak_rss_gb']:>13.2f}{r['process_s']:>11.1f}"
              f"  {r['version']}")
    if quality:
        info = quality["livae_info"]
        print(f"KMeans (k={quality['k']}, n_init 10) ARI vs '{LABEL_KEY}': LiVAE mu {quality['ari_livae']:.3f}, "
              f"LiVAE le (2-D) {quality['ari_livae_bottleneck']:.3f}, PCA (10) {quality['ari_pca']:.3f}; LiVAE trained "
              f"{info['epochs_run']} epochs (best {info['best_epoch']}, early stop {info['stopped_early']}) "
              f"in {quality['livae_seconds']:.0f} s")
    print(f"livae_vs_scvi_cells_per_s_ratio={rows['livae']['cells_per_s'] / rows['scvi']['cells_per_s']:.3f}")


if __name__ == "__main__":
    main()
