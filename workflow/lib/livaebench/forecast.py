"""A cost forecast of a run before it is submitted (docs/forecast.md).

A cost model per job class, calibrated on the benchmark files of a finished run
(``results/benchmarks/{rule}/...tsv``, Snakemake's ``s``, ``max_rss``, ``cpu_time`` columns), predicts each
job's CPU seconds and peak memory from the size of its dataset (cells x features) and, for a training, its
epoch budget. The calibration is a small table (``resources/cost_model.tsv``), so a fresh clone forecasts
without running anything; ``benchmarks/forecast.py calibrate`` regenerates it from a run.

Model, per job class (``job_class``) and quantity:

* CPU seconds ``= base_class + slope_method * work`` where ``work`` is the method's work measure
  (``WORK_MEASURES``: cells x features x epochs for a model trained in epochs, cells x features for a
  one-pass decomposition, cells x fitted cells x features for kernel PCA, cells for the embedding and metric jobs). The
  base (start-up: imports, reading the data) is shared by a class, the slope is per method; both are fitted
  together by non-negative least squares on relative errors, since the goal is a relative one; a training
  method's slope is then the lowest of its points' estimates (noise on a shared machine only adds time).
* Peak memory (MB) ``= base_method + bytes_per_value * cells * features / 2**20`` for trainings: the slope is
  the method's declared ``Resources.bytes_per_value`` (its dense copies of the input; the small shipped data
  cannot identify it), the base is calibrated. Other classes: ``base + slope * cells``, both fitted.

A method without measurements takes the coefficients of a close method (``FALLBACK``: LiVAE's variants take
LiVAE's), else the median of its family, else of its class; the forecast says which.
"""
from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import InputError

# ---------------------------------------------------------------------------------------------- the jobs

TRAIN_RULE_RE = re.compile(r"^train(_\w+)?$")  # train, train_model, train_loadings (one per artifact set)
PER_RUN_RULES = ("embed", "evaluate")
PER_DATASET_RULES = ("fetch_geo", "assemble_counts", "preprocess")


def parse_benchmark_path(path: str | Path) -> dict:
    """rule, dataset, method, seed of a benchmark file path (``results/benchmarks/...``); missing parts ''."""
    parts = Path(path).with_suffix("").parts
    if "benchmarks" in parts:
        parts = parts[len(parts) - parts[::-1].index("benchmarks"):]
    rule, rest = parts[0], list(parts[1:])
    job = {"rule": rule, "dataset": "", "method": "", "seed": "", "key": "/".join(rest)}
    if len(rest) == 3 and rest[2].startswith("seed"):
        job.update(dataset=rest[0], method=rest[1], seed=rest[2][4:])
    elif rest and rule in PER_DATASET_RULES:
        job["dataset"] = rest[0]
    return job


def job_class(rule: str, method_uses_gpu: bool | None) -> str:
    """The cost class of a job: train_torch, train_cpu, embed, evaluate, preprocess, assemble_counts,
    fetch_geo, or other (the study-wide tables, figures and analyses: a constant per rule)."""
    if TRAIN_RULE_RE.match(rule):
        return "train_torch" if method_uses_gpu else "train_cpu"
    if rule in (*PER_RUN_RULES, *PER_DATASET_RULES):
        return rule
    return "other"


# ------------------------------------------------------------------------------------- work measures

WORK_MEASURES = {
    "cells*features*epochs": lambda c, f, e: c * f * e / 1e9,
    "cells*features": lambda c, f, e: c * f / 1e6,
    "cells*epochs": lambda c, f, e: c * e / 1e6,
    # kernel PCA: a kernel of the fitted cells (``max_fit_cells`` at most; their number is passed as the
    # epochs) against every cell, over the features
    "cells*fit_cells*features": lambda c, f, e: c * e * f / 1e9,
    "cells": lambda c, f, e: c / 1e3,
}
# Classical methods whose cost is not linear in the matrix size: kernel PCA builds a kernel of its fitted
# cells (two float64 copies of it: the kernel and its centred version) and projects every cell on them.
QUADRATIC_METHODS = {"kernelpca"}
KERNEL_BYTES_PER_ENTRY = 16
# Methods whose training cost does not grow with the features: scTour's is dominated by solving its latent
# ODE for every cell (measured: CPU seconds per cell and epoch 0.78 ms at 5,000 genes, 0.59 ms at 1,515).
FEATURE_FREE_METHODS = {"sctour"}
# Methods registered as variants of another (sweep points, ablations, likelihoods) cost like it.
FALLBACK = {"sweep": "livae", "ablation": "livae", "likelihood": "livae"}


def scvi_auto_epochs(n_cells: int) -> int:
    """scvi-tools' own epoch rule for ``epochs: 0`` (400 epochs up to 20,000 cells, fewer above)."""
    return int(min(round(20_000 / max(n_cells, 1) * 400), 400))


def sctour_auto_epochs(n_cells: int) -> int:
    """scTour's own epoch rule for ``epochs: 0`` (400 epochs up to 10,000 training cells, fewer above)."""
    return int(min(400, round(400 * 10_000 / max(0.9 * n_cells, 1))))


def epoch_budget(method: str, params: Mapping, n_cells: int) -> int:
    """The epochs a training may run: its limit (early stopping may end it sooner), all phases summed;
    0 for a method not trained in epochs."""
    if method in QUADRATIC_METHODS:  # not trained in epochs: the cells its kernel is fitted on
        return int(min(n_cells, int(params.get("max_fit_cells") or n_cells)))
    if "epochs" not in params:
        return 0
    epochs = int(params["epochs"])
    if epochs == 0:  # the package's own rule
        epochs = scvi_auto_epochs(n_cells) if method == "scvi" else sctour_auto_epochs(n_cells) \
            if method == "sctour" else 0
    epochs += int(params.get("pretrain_epochs", 0) or 0)
    if "n_iterations" in params:  # scGNN: the autoencoder, then n_iterations x (EM + graph autoencoder)
        epochs += int(params["n_iterations"]) * (int(params.get("em_epochs", 0)) + int(params.get("graph_epochs", 0)))
    return epochs


def work_measure(rule_class: str, method: str, epochs: int) -> str:
    if rule_class.startswith("train"):
        if method in QUADRATIC_METHODS:
            return "cells*fit_cells*features"
        if method in FEATURE_FREE_METHODS:
            return "cells*epochs"
        return "cells*features*epochs" if epochs else "cells*features"
    return "cells"


def work_of(measure: str, cells: float, features: float, epochs: float) -> float:
    return WORK_MEASURES[measure](cells, features, epochs)


# ------------------------------------------------------------------------------------------ the model

MODEL_COLUMNS = ["class", "method", "quantity", "work", "base", "slope", "points", "note"]
QUANTITIES = ("cpu_s", "rss_mb")


def _nnls_fit(y: np.ndarray, work: np.ndarray, groups: list[str]) -> tuple[float, dict[str, float]]:
    """base + slope[group] * work, non-negative, least squares of the relative error (each row / y)."""
    from scipy.optimize import nnls

    names = sorted(set(groups))
    design = np.zeros((len(y), 1 + len(names)))
    design[:, 0] = 1.0
    for i, g in enumerate(groups):
        design[i, 1 + names.index(g)] = work[i]
    weight = 1.0 / np.maximum(y, 1e-9)
    coef, _ = nnls(design * weight[:, None], y * weight)
    return float(coef[0]), {g: float(coef[1 + k]) for k, g in enumerate(names)}


def fit_cost_model(jobs: pd.DataFrame, bytes_per_value: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The cost model table from measured jobs.

    ``jobs``: one row per job with ``class``, ``method`` ('' outside trainings), ``rule``, ``cells``,
    ``features``, ``epochs``, ``cpu_s``, ``rss_mb``. ``bytes_per_value``: method -> the memory slope of its
    trainings (bytes per cell x feature); None fits that slope too.
    """
    rows = []
    for cls, part in jobs.groupby("class"):
        if cls == "other":  # study-wide tables and figures: a constant per rule (their median)
            for rule, r in part.groupby("rule"):
                for q in QUANTITIES:
                    rows.append([cls, rule, q, "none", float(r[q].median()), 0.0, len(r), "median"])
            continue
        methods = part["method"].tolist() if cls.startswith("train") else ["*"] * len(part)
        measures = [work_measure(cls, m, e) for m, e in zip(part["method"], part["epochs"])]
        work = np.array([work_of(w, c, f, e) for w, c, f, e in
                         zip(measures, part["cells"], part["features"], part["epochs"])])
        y = part["cpu_s"].to_numpy(float)
        base, slopes = _nnls_fit(y, work, methods)
        if cls.startswith("train"):
            # each method's slope: the lowest of its points' estimates. On a shared machine contention only
            # adds time (a job with two threads that waits on a descheduled one even spins, adding CPU time),
            # so, as with repeated timings, the lowest is the best estimate of the cost itself.
            per_point = np.maximum(y - base, 0.0) / np.maximum(work, 1e-12)
            slopes = {m: float(per_point[np.array(methods) == m].min()) for m in slopes}
        for m in sorted(set(methods)):
            n = methods.count(m)
            rows.append([cls, m, "cpu_s", measures[methods.index(m)], base, slopes[m], n,
                         "fitted; slope: the lowest point" if cls.startswith("train") else "fitted"])
        values = part["cells"].to_numpy(float) * part["features"].to_numpy(float) / 2**20
        if cls.startswith("train") and bytes_per_value is not None:
            kernel = np.where(part["method"].isin(QUADRATIC_METHODS),
                              KERNEL_BYTES_PER_ENTRY * part["epochs"].to_numpy(float) ** 2 / 2**20, 0.0)
            for m in sorted(set(methods)):
                sel = np.array(methods) == m
                slope = float(bytes_per_value.get(m, 16.0))
                base_m = float(np.median(part["rss_mb"].to_numpy(float)[sel] - slope * values[sel] - kernel[sel]))
                rows.append([cls, m, "rss_mb", "cells*features*bytes/2^20", max(base_m, 0.0), slope, int(sel.sum()),
                             "base calibrated, slope = the method's declared bytes_per_value"])
        elif cls.startswith("train"):
            mbase, mslopes = _nnls_fit(part["rss_mb"].to_numpy(float), values, methods)
            rows += [[cls, m, "rss_mb", "cells*features*bytes/2^20", mbase, mslopes[m], methods.count(m), "fitted"]
                     for m in sorted(set(methods))]
        else:
            cells = part["cells"].to_numpy(float) / 1e3
            mbase, mslope = _nnls_fit(part["rss_mb"].to_numpy(float), cells, ["*"] * len(part))
            rows.append([cls, "*", "rss_mb", "cells", mbase, mslope["*"], len(part), "fitted"])
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def load_cost_model(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cost model {path}", "does not exist",
                         "regenerate it: python benchmarks/forecast.py calibrate --run DIR (docs/forecast.md)")
    table = pd.read_csv(path, sep="\t", comment="#", keep_default_na=False)
    missing = set(MODEL_COLUMNS) - set(table.columns)
    if missing:
        raise InputError(f"cost model {path}", f"lacks the column(s) {', '.join(sorted(missing))}",
                         "regenerate it: python benchmarks/forecast.py calibrate --run DIR (docs/forecast.md)")
    return table


# A study-wide job (tables, figures, the site) when the calibration run has none: about what the shipped
# runs' such jobs take (tens of seconds, a few hundred MB)
UNCALIBRATED_OTHER = {"cpu_s": 30.0, "rss_mb": 400.0}


@dataclass
class Coefficients:
    base: float
    slope: float
    work: str
    source: str


def coefficients(model: pd.DataFrame, cls: str, method: str, quantity: str, family: str = "",
                 families: Mapping[str, str] | None = None) -> Coefficients:
    """The coefficients of one job: the method's own, else a close method's, its family's or its class's
    median; for ``other`` the rule's constant, else the median of all such rules."""
    rows = model[(model["class"] == cls) & (model["quantity"] == quantity)]
    if rows.empty and cls != "other":  # a class the calibration run did not have: as a study-wide job
        other = model[(model["class"] == "other") & (model["quantity"] == quantity)]
        if len(other):
            return Coefficients(float(other["base"].median()), 0.0, "none", f"no {cls} job calibrated: "
                                "median of the study-wide rules")
    if rows.empty and cls == "other":  # the calibration run ended before its study-wide jobs
        return Coefficients(UNCALIBRATED_OTHER[quantity], 0.0, "none", "uncalibrated default")
    if rows.empty:
        raise InputError(f"cost model, class {cls}", f"has no {quantity} coefficients",
                         "calibrate on a run that has such jobs (benchmarks/forecast.py calibrate)")
    own = rows[rows["method"] == (method if cls.startswith("train") or cls == "other" else "*")]
    if not own.empty:
        r = own.iloc[0]
        return Coefficients(float(r["base"]), float(r["slope"]), str(r["work"]), "calibrated")
    base = float(rows["base"].median())
    if cls == "other":
        return Coefficients(base, 0.0, "none", "median of the calibrated study-wide rules")
    close = FALLBACK.get(family)
    if close is not None and (rows["method"] == close).any():
        r = rows[rows["method"] == close].iloc[0]
        return Coefficients(float(r["base"]), float(r["slope"]), str(r["work"]), f"as {close}")
    kin = [m for m, fam in (families or {}).items() if fam == family and m != method]
    same = rows[rows["method"].isin(kin)]
    if not same.empty:
        return Coefficients(float(same["base"].median()), float(same["slope"].median()), "",
                            f"median of family {family}")
    return Coefficients(base, float(rows["slope"].median()), "", f"median of class {cls}")


def predict_jobs(model: pd.DataFrame, jobs: pd.DataFrame, families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``jobs`` (class, rule, method, cells, features, epochs) with the predicted ``cpu_s``, ``rss_mb`` and
    where their coefficients came from (``source``)."""
    families = families or {}
    cpu, rss, source = [], [], []
    for job in jobs.to_dict("records"):
        cls, method = job["class"], job["method"]
        if cls == "fetch_geo":  # network-bound: its time is bytes / bandwidth (place_jobs), its memory small
            cpu.append(0.0)
            rss.append(0.0)
            source.append("download bytes / bandwidth")
            continue
        key = job["rule"] if cls == "other" else method
        fam = families.get(method, "")
        t = coefficients(model, cls, key, "cpu_s", fam, families)
        m = coefficients(model, cls, key, "rss_mb", fam, families)
        measure = t.work or work_measure(cls, method, job["epochs"])
        cpu.append(t.base + t.slope * (0.0 if measure == "none" else
                                       work_of(measure, job["cells"], job["features"], job["epochs"])))
        if cls.startswith("train"):
            kernel = KERNEL_BYTES_PER_ENTRY * job["epochs"] ** 2 / 2**20 if method in QUADRATIC_METHODS else 0.0
            rss.append(m.base + m.slope * job["cells"] * job["features"] / 2**20 + kernel)
        else:
            rss.append(m.base + m.slope * (0.0 if cls == "other" else job["cells"] / 1e3))
        source.append(t.source)
    out = jobs.copy()
    out["cpu_s"], out["rss_mb"], out["source"] = cpu, rss, source
    return out


# ---------------------------------------------------------------------------------------- dataset sizes

# Turning a GEO listing's bytes into cells (docs/forecast.md): compressed bytes per stored nonzero,
# measured on the shipped data written as gzip'd MatrixMarket (2.7-2.9 B) and gzip'd CSR HDF5 (1.7-2.5 B),
# times typical nonzeros per cell (10x v3 scRNA-seq: ~2,500 genes; scATAC-seq peak matrices: ~5,000 peaks).
BYTES_PER_NONZERO = {"hdf5": 2.0, "mtx": 2.8, "dense": 4.0}
NONZEROS_PER_CELL = {"rna": 2_500, "atac": 5_000}
FALLBACK_CELLS = 20_000  # livaebench.resources.FALLBACK_SHAPE: the size assumed when nothing is known


def bytes_kind(kind: str, name: str) -> str:
    text = f"{kind} {name}".lower()
    if "hdf5" in text or "h5ad" in text or name.lower().endswith((".h5", ".h5ad")):
        return "hdf5"
    if "dense" in text:
        return "dense"
    return "mtx"


def cells_from_listing(table: pd.DataFrame, modality: str) -> tuple[int, int] | None:
    """(cells, bytes) from a results/geo_files/{dataset}.tsv: the selected files' bytes over bytes per cell
    of their kind; None when no selected file has a known size."""
    chosen = table[(table["selected"].astype(str) == "yes")]
    top = chosen[chosen["archive"].fillna("").astype(str) == ""]
    files = top if len(top) else chosen  # a chosen archive's members, when the archive itself is not listed
    files = files[pd.to_numeric(files["bytes"], errors="coerce").notna()]
    if files.empty:
        return None
    cells, total = 0.0, 0
    for row in files.itertuples(index=False):
        size = int(float(row.bytes))
        kind = bytes_kind(str(getattr(row, "kind", "")), str(row.file))
        cells += size / (BYTES_PER_NONZERO[kind] * NONZEROS_PER_CELL.get(modality, 2_500))
        total += size
    return max(int(round(cells)), 1), total


def _count_lines(path: Path) -> int:
    import gzip

    with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as handle:
        return sum(1 for line in handle if line.strip())


def local_shape(path: str | Path) -> tuple[int, int] | None:
    """(cells, features) of a local count file from its header or label files, without loading the matrix:
    an .h5ad, a 10x .h5 (``matrix/shape`` is features x cells) or a 10x folder (its barcodes and features
    files); None for other formats (a dense table would have to be read)."""
    from .resources import h5ad_shape

    path = Path(path)
    if path.is_file() and path.suffix == ".h5ad":
        return h5ad_shape(path)
    if path.is_file() and path.suffix == ".h5":
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                features, cells = (int(v) for v in handle["matrix"]["shape"][:2])
                return cells, features
        except (OSError, KeyError, ValueError):
            return None
    if path.is_dir():
        barcodes = sorted(path.glob("*barcodes.tsv*"))
        features = sorted(path.glob("*features.tsv*")) or sorted(path.glob("*genes.tsv*"))
        if len(barcodes) == 1 and len(features) == 1:
            return _count_lines(barcodes[0]), _count_lines(features[0])
    return None


def dataset_size(row: Mapping, preprocess: Mapping, listing: str | Path | None = None,
                 shape: tuple[int, int] | None = None) -> dict:
    """cells and features a dataset will have after preprocessing, known before running, and how they were
    estimated: a local file's shape (.h5ad, 10x .h5 or folder), a GEO listing's bytes, the registry's
    max_cells or the default."""
    modality = row.get("modality", "rna")
    n_top = int(preprocess.get(f"n_features_{modality}", 5000))
    max_cells = int(row["max_cells"]) if str(row.get("max_cells") or "").strip() else None
    how, download = "", 0
    if shape is None and row.get("source") != "geo" and row.get("path"):
        shape = local_shape(row["path"])
    if shape is not None:
        cells, features, how = shape[0], min(shape[1], n_top), "shape of the local file"
    else:
        features = n_top  # a full-transcriptome/peak matrix has more features than are kept
        estimate = None
        if listing is not None and Path(listing).is_file():
            estimate = cells_from_listing(pd.read_csv(listing, sep="\t", keep_default_na=False), modality)
        if estimate is not None:
            cells, download = estimate
            how = f"GEO listing: {download / 1e6:,.0f} MB selected / bytes per cell"
        elif max_cells:
            cells, how = max_cells, "registry max_cells (no listing)"
        else:
            cells, how = FALLBACK_CELLS, f"registry default {FALLBACK_CELLS:,} cells (no listing, no max_cells)"
    if max_cells and cells > max_cells:
        cells, how = max_cells, how + f", capped at max_cells {max_cells}"
    if not download and row.get("source") == "geo":
        download = int(cells * BYTES_PER_NONZERO["mtx"] * NONZEROS_PER_CELL.get(modality, 2_500))
    return {"cells": int(cells), "features": int(features), "how": how, "download_bytes": int(download)}


# ------------------------------------------------------------------------------------------ the forecast

@dataclass
class Cluster:
    cores: int = 64
    gpus: int = 0
    gpu_speedup: float = 4.0   # an assumption (no GPU timing in this project): docs/forecast.md
    bandwidth_mb_s: float = 20.0  # GEO download rate, an assumption


STAGES = {"fetch_geo": 0, "assemble_counts": 1, "preprocess": 2, "train_cpu": 3, "train_torch": 3, "embed": 4,
          "evaluate": 5, "other": 6}


def schedule(jobs: pd.DataFrame, cluster: Cluster) -> float:
    """Wall seconds of the jobs on the cluster: list scheduling, the job with the longest chain still ahead
    first, each job holding its cores (and a GPU) for its duration. A dataset's download, assembly and
    preprocessing run in order before its trainings; a run's training, embedding and metrics in order; the
    study-wide jobs (``other``) after every other job."""
    n = len(jobs)
    if n == 0:
        return 0.0
    dur = jobs["wall_s"].to_numpy(float)
    need_c = np.minimum(jobs["cores"].to_numpy(int), cluster.cores)
    need_g = jobs["gpus"].to_numpy(int)
    if (need_g > cluster.gpus).any():
        raise InputError("forecast", "GPU jobs on a cluster without GPUs", "give the forecast GPUs or none")
    stage = jobs["class"].map(STAGES).fillna(6).astype(int).to_numpy()
    dsets = jobs["dataset"].astype(str).to_numpy()
    runs = (jobs["dataset"].astype(str) + "/" + jobs["method"].astype(str) + "/" + jobs["seed"].astype(str)).to_numpy()
    after: list[list[int]] = [[] for _ in range(n)]  # the jobs that wait for each job
    waits = np.zeros(n, int)
    data = {}
    for i in np.flatnonzero(stage <= 2):
        data.setdefault(dsets[i], []).append(i)
    chains = {}
    for i in np.flatnonzero((stage >= 3) & (stage <= 5)):
        chains.setdefault(runs[i], {})[stage[i]] = i
    for i in range(n):
        if stage[i] <= 2:
            preds = [j for j in data[dsets[i]] if stage[j] < stage[i]]
        elif stage[i] == 3:
            preds = data.get(dsets[i], [])
        elif stage[i] <= 5:
            chain = chains[runs[i]]
            preds = [chain[s] for s in range(stage[i] - 1, 2, -1) if s in chain][:1]
        else:
            continue
        for j in preds:
            after[j].append(i)
        waits[i] = len(preds)
    # the chain still ahead of each job (its priority)
    ahead = dur.copy()
    for i in sorted(range(n), key=lambda k: -stage[k]):
        if after[i]:
            ahead[i] = dur[i] + max(ahead[j] for j in after[i])
    final = list(np.flatnonzero(stage == 6))
    left = n - len(final)
    cores_free, gpus_free = cluster.cores, cluster.gpus
    ready = {0: [], 1: []}  # CPU jobs, GPU jobs: heaps of (-ahead, i)

    def release(i):
        heapq.heappush(ready[int(need_g[i] > 0)], (-ahead[i], i))

    for i in np.flatnonzero((waits == 0) & (stage < 6)):
        release(i)
    if left == 0:
        for i in final:
            release(i)
    running: list[tuple[float, int]] = []
    now = 0.0
    while True:
        for kind in (1, 0):
            heap = ready[kind]
            while heap and need_c[heap[0][1]] <= cores_free and need_g[heap[0][1]] <= gpus_free:
                _, i = heapq.heappop(heap)
                cores_free -= need_c[i]
                gpus_free -= need_g[i]
                heapq.heappush(running, (now + dur[i], i))
        if not running:
            break
        now, i = heapq.heappop(running)
        cores_free += need_c[i]
        gpus_free += need_g[i]
        for j in after[i]:
            waits[j] -= 1
            if waits[j] == 0:
                release(j)
        if stage[i] < 6:
            left -= 1
            if left == 0:
                for j in final:
                    release(j)
    return now


def summarise(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per job class and a total: jobs, CPU-hours, GPU-hours, peak memory, longest job."""
    rows = []
    for cls, part in jobs.groupby("class", sort=False):
        on_gpu = part["gpus"] > 0
        rows.append({"class": cls, "jobs": len(part),
                     "cpu_hours": round(float(part.loc[~on_gpu, "cpu_s"].sum()) / 3600, 2),
                     "gpu_hours": round(float(part.loc[on_gpu, "wall_s"].sum()) / 3600, 2),
                     "peak_mem_mb": int(math.ceil(part["rss_mb"].max())),
                     "longest_job_min": round(float(part["wall_s"].max()) / 60, 1)})
    table = pd.DataFrame(rows).sort_values("class", key=lambda c: c.map(STAGES).fillna(9), kind="stable")
    total = {"class": "total", "jobs": int(table["jobs"].sum()), "cpu_hours": round(table["cpu_hours"].sum(), 2),
             "gpu_hours": round(table["gpu_hours"].sum(), 2), "peak_mem_mb": int(table["peak_mem_mb"].max()),
             "longest_job_min": float(table["longest_job_min"].max())}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def place_jobs(predicted: pd.DataFrame, cluster: Cluster, threads: Mapping[str, int],
               max_threads: Mapping[str, int | None] | None = None) -> pd.DataFrame:
    """Cores, GPUs and wall seconds of each predicted job on the cluster. A torch training takes one GPU
    when the cluster has GPUs (as ``--config gpu=1`` asks) and runs ``gpu_speedup`` times faster than the
    CPU time it was calibrated on; a CPU job's wall time is its CPU time (the calibration ran one thread per
    job, and these models gain little from a second one: a conservative choice)."""
    out = predicted.copy()
    cls = out["class"]
    on_gpu = (cls == "train_torch") & (cluster.gpus > 0)
    train_threads = [max(1, min(int(threads.get("train", 1)), (max_threads or {}).get(m) or 10**6))
                     for m in out["method"]]
    out["cores"] = np.where(cls.str.startswith("train"), train_threads,
                            np.where(cls == "embed", int(threads.get("embed", 1)),
                                     np.where(cls == "evaluate", int(threads.get("evaluate", 1)), 1)))
    out["gpus"] = on_gpu.astype(int)
    out["wall_s"] = np.where(on_gpu, out["cpu_s"] / cluster.gpu_speedup, out["cpu_s"])
    fetch = cls == "fetch_geo"
    out.loc[fetch, "wall_s"] = out.loc[fetch, "download_bytes"] / (cluster.bandwidth_mb_s * 1e6)
    out.loc[fetch, "cpu_s"] = 0.0  # network-bound: counted in the wall time, not in CPU-hours
    return out


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.0f} min"


def markdown(summary: pd.DataFrame, wall_s: float, cluster: Cluster, sizes: pd.DataFrame, config_name: str,
             sources: Mapping[str, int]) -> str:
    lines = [f"# Cost forecast: {config_name}", "",
             f"Cluster: {cluster.cores} cores, {cluster.gpus} GPUs"
             + (f" (a torch training on a GPU assumed {cluster.gpu_speedup:g}x faster than on one CPU core)"
                if cluster.gpus else "") + f"; GEO downloads at {cluster.bandwidth_mb_s:g} MB/s.", "",
             f"**Predicted wall time: {hours(wall_s)}** (list scheduling of every job on the cluster, each "
             "dataset's chain in order, the study-wide jobs last).", "",
             "| job class | jobs | CPU-hours | GPU-hours | peak memory (MB) | longest job (min) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in summary.itertuples(index=False):
        lines.append(f"| {r[0]} | {r.jobs:,} | {r.cpu_hours:,.2f} | {r.gpu_hours:,.2f} | {r.peak_mem_mb:,} | "
                     f"{r.longest_job_min:,.1f} |")
    lines += ["", "Where each training's coefficients came from (trainings): "
              + "; ".join(f"{k}: {v:,}" for k, v in sorted(sources.items())) + ".", "",
              "## Dataset sizes", ""]
    by_how = sizes.groupby(sizes["how"].str.replace(r"[\d,.]+ MB", "N MB", regex=True))
    estimated = sizes[~sizes["how"].str.startswith(("shape of", "GEO listing"))]
    if len(estimated):
        lines += [f"{len(estimated)} of {len(sizes)} datasets have no size known before running (no "
                  "results/geo_files/{dataset}.tsv: run `snakemake --configfile CONFIG geo_files` to list them "
                  "with sizes); they are estimated from the registry: "
                  + ", ".join(f"{how.lower()}: {len(part)}" for how, part in by_how
                              if not how.startswith(("shape of", "GEO listing"))) + ".", ""]
    lines += ["| dataset | cells | features | how |", "|---|---:|---:|---|"]
    lines += [f"| {r.dataset} | {r.cells:,} | {r.features:,} | {r.how} |" for r in sizes.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def run_jobs(targets: Iterable[str], sizes: Mapping[str, Mapping], epochs: Mapping[tuple[str, str], int],
             uses_gpu: Mapping[str, bool]) -> pd.DataFrame:
    """The jobs of a run from its benchmark paths (every benchmarked job; common.smk benchmark_targets())."""
    rows = []
    for path in targets:
        job = parse_benchmark_path(path)
        size = sizes.get(job["dataset"], {"cells": 0, "features": 0, "download_bytes": 0})
        rows.append({**job, "class": job_class(job["rule"], uses_gpu.get(job["method"])),
                     "cells": size["cells"], "features": size["features"],
                     "epochs": epochs.get((job["dataset"], job["method"]), 0),
                     "download_bytes": size.get("download_bytes", 0)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- a run's measurements

def run_params(config: Mapping, dataset: str, method: str) -> dict:
    """A method's resolved parameters on a dataset under a config (registry defaults, latent_dim, overrides)."""
    from .methods import get_method, method_overrides

    global_params = {"latent_dim": config["latent_dim"]} if "latent_dim" in config else {}
    return get_method(method).resolve_params(method_overrides(config, dataset, method), global_params)


def failed_training(run_dir: Path, dataset: str, method: str, seed: str) -> bool:
    """Whether a training wrote a failure record (its time is that of the failure, not of a fit)."""
    latent = run_dir / "results" / "models" / dataset / method / f"seed{seed}" / "latent.npz"
    if not latent.is_file():
        return False
    with np.load(latent, allow_pickle=False) as z:
        return "status" in z.files and str(z["status"]) == "failed"


def measured_jobs(run_dir: str | Path, config: Mapping) -> pd.DataFrame:
    """Every benchmarked job of a run (``run_dir/results/benchmarks``) with its measured CPU seconds
    (``cpu_time``), wall seconds (``s``) and peak memory (``max_rss``), its dataset's size after
    preprocessing and its epoch budget under ``config``. Failed trainings (and their embedding/metrics
    jobs) are left out."""
    from .methods import all_methods
    from .resources import h5ad_shape

    run_dir = Path(run_dir)
    registry = all_methods()
    shapes, rows = {}, []
    for path in sorted((run_dir / "results" / "benchmarks").rglob("*.tsv")):
        job = parse_benchmark_path(path)
        if job["rule"] == "rules":  # the per-rule summary table, not a job
            continue
        bench = pd.read_csv(path, sep="\t")
        if bench.empty or not {"s", "max_rss", "cpu_time"} <= set(bench.columns):
            continue
        last = bench.iloc[-1]
        if job["method"] and job["method"] not in registry:
            continue
        if job["method"] and failed_training(run_dir, job["dataset"], job["method"], job["seed"]):
            continue
        d = job["dataset"]
        if d and d not in shapes:
            shapes[d] = h5ad_shape(run_dir / "results" / "data" / d / "preprocessed.h5ad")
        cells, features = shapes.get(d) or (0, 0)
        uses_gpu = registry[job["method"]].uses_gpu if job["method"] else None
        cls = job_class(job["rule"], uses_gpu)
        if cls != "other" and not cells:
            continue  # a per-dataset job whose dataset size is unknown
        epochs = epoch_budget(job["method"], run_params(config, d, job["method"]), cells) \
            if cls.startswith("train") else 0
        cpu = pd.to_numeric(last["cpu_time"], errors="coerce")
        rows.append({**job, "class": cls, "cells": cells, "features": features, "epochs": epochs,
                     "cpu_s": float(cpu) if pd.notna(cpu) else float(last["s"]), "wall_s": float(last["s"]),
                     "rss_mb": float(pd.to_numeric(last["max_rss"], errors="coerce") or 0.0)})
    return pd.DataFrame(rows)


def declared_bytes_per_value() -> dict[str, float]:
    from .methods import all_methods

    return {name: float(m.resources.bytes_per_value) for name, m in all_methods().items()}


def families() -> dict[str, str]:
    from .methods import all_methods

    return {name: m.family for name, m in all_methods().items()}


def cluster_from_config(settings: Mapping | None) -> Cluster:
    """The cluster of the config's ``forecast`` block (numbers may come as text from ``--config``)."""
    settings = dict(settings or {})
    defaults = Cluster()
    return Cluster(cores=int(settings.get("cores", defaults.cores)), gpus=int(settings.get("gpus", defaults.gpus)),
                   gpu_speedup=float(settings.get("gpu_speedup", defaults.gpu_speedup)),
                   bandwidth_mb_s=float(settings.get("bandwidth_mb_s", defaults.bandwidth_mb_s)))


def forecast_run(config: Mapping, rows: Mapping[str, Mapping], targets: Iterable[str], model: pd.DataFrame,
                 cluster: Cluster, listings: Mapping[str, str] | None = None) -> dict:
    """The forecast of a run: ``rows`` its registry (dataset -> row), ``targets`` the benchmark path of every
    job (common.smk benchmark_targets()), ``listings`` dataset -> results/geo_files/{dataset}.tsv where one
    exists. Returns the per-job table, the summary per job class, the wall time and the dataset sizes."""
    from .methods import all_methods

    registry = all_methods()
    preprocess = config.get("preprocess") or {}
    sizes = {d: dataset_size(row, preprocess, (listings or {}).get(d)) for d, row in rows.items()}
    targets = list(targets)
    pairs = {(p["dataset"], p["method"]) for p in map(parse_benchmark_path, targets) if p["method"] in registry}
    epochs = {(d, m): epoch_budget(m, run_params(config, d, m), sizes[d]["cells"]) for d, m in pairs}
    uses_gpu = {m: registry[m].uses_gpu for _, m in pairs}
    jobs = run_jobs(targets, sizes, epochs, uses_gpu)
    fams = families()
    predicted = predict_jobs(model, jobs, fams)
    placed = place_jobs(predicted, cluster, config.get("threads") or {},
                        {m: registry[m].resources.max_threads for _, m in pairs})
    wall = schedule(placed, cluster)
    size_table = pd.DataFrame([{"dataset": d, **s} for d, s in sizes.items()])
    sources = placed.loc[placed["class"].str.startswith("train"), "source"].value_counts().to_dict()
    return {"jobs": placed, "summary": summarise(placed), "wall_s": wall, "sizes": size_table, "sources": sources}


def forecast_table(result: dict, cluster: Cluster) -> pd.DataFrame:
    """The summary as written to results/forecast.tsv: the cluster and the predicted wall time on every row."""
    table = result["summary"].copy()
    table["cores"], table["gpus"] = cluster.cores, cluster.gpus
    table["wall_hours_on_cluster"] = round(result["wall_s"] / 3600, 2)
    return table
