"""The shipped study (config/study.yaml, config/study_datasets.tsv): its data, its subsample, its plan.

The data files are checked against resources/SHA256SUMS; the stratified subsample against hand-computed
allocations; the per-modality method lists and the symbol-keyed skips by planning the real study with
snakemake (a dry run: no job runs).
"""
from __future__ import annotations

import hashlib
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from livaebench.config import load_registry, runs_on, validate_config
from livaebench.data.assemble import stratified_rows, subsample_cells
from livaebench.methods import all_methods
from workflow_helpers import REPO, RESOURCES, snakemake

SCHEMAS = REPO / "workflow" / "schemas"
STUDY = REPO / "config" / "study.yaml"


def test_shipped_data_match_their_checksums():
    listed = dict(reversed(line.split("  ", 1)) for line in (RESOURCES / "SHA256SUMS").read_text().splitlines())
    shipped = sorted(p.name for p in RESOURCES.glob("*.h5ad"))
    assert sorted(listed) == shipped and len(shipped) == 9
    for name, digest in listed.items():
        assert hashlib.sha256((RESOURCES / name).read_bytes()).hexdigest() == digest, name


def test_stratified_allocation_is_hamilton_rounding():
    strata = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    rows = stratified_rows(strata, 11, seed=0)
    # shares 5.5, 3.3, 2.2 -> floors 5, 3, 2; the one row left goes to the largest remainder (a)
    assert pd.Series(strata[rows]).value_counts().to_dict() == {"a": 6, "b": 3, "c": 2}
    assert np.all(np.diff(rows) > 0)  # sorted, no repeats
    assert np.array_equal(rows, stratified_rows(strata, 11, seed=0))
    assert not np.array_equal(rows, stratified_rows(strata, 11, seed=1))
    # a stratum too small for a proportional cell keeps one only through the remainders
    tiny = np.array(["x"] * 97 + ["y"] * 3)
    assert pd.Series(tiny[stratified_rows(tiny, 10, seed=0)]).value_counts().to_dict() == {"x": 10}


def test_subsample_keeps_label_and_batch_proportions():
    adata = ad.read_h5ad(RESOURCES / "cellbench.h5ad")
    sub = subsample_cells(adata, 300, seed=0, strata_keys=("cell_line", "batch"))
    assert sub.n_obs == 300
    full = adata.obs.groupby(["cell_line", "batch"], observed=True).size() * (300 / adata.n_obs)
    kept = sub.obs.groupby(["cell_line", "batch"], observed=True).size().reindex(full.index, fill_value=0)
    assert np.all(np.abs(kept - full) < 1.0)  # every stratum within one cell of its share
    assert subsample_cells(adata, 5000, seed=0) is adata  # fewer cells than max_cells: untouched


def test_methods_by_modality_are_normalised():
    config = yaml.safe_load(STUDY.read_text())
    config = validate_config(config, SCHEMAS / "config.schema.yaml", source="config/study.yaml")
    by_modality = config["methods_by_modality"]
    assert config["methods"] == list(dict.fromkeys(by_modality["rna"] + by_modality["atac"]))
    assert runs_on(config, "betavae", "rna") and not runs_on(config, "betavae", "atac")
    assert runs_on(config, "livae", "atac") and runs_on(config, "ctrl_random", "atac")  # controls: everywhere
    # the study runs every method of the paper's figures except the sweeps (its header says so)
    figures = {n for n, m in all_methods().items() if m.family not in ("control", "sweep", "unicoord", "diffvae")}
    assert figures == set(config["methods"])


def test_study_registry_covers_the_shipped_data():
    table = load_registry(REPO / "config" / "study_datasets.tsv", SCHEMAS / "datasets.schema.yaml")
    assert table["modality"].value_counts().to_dict() == {"rna": 6, "atac": 3}
    assert sorted(p.split("/")[-1] for p in table["path"]) == sorted(p.name for p in RESOURCES.glob("*.h5ad"))
    for row in table.itertuples():
        adata = ad.read_h5ad(REPO / row.path, backed="r")
        assert row.label_key in adata.obs, row.dataset
        assert not row.batch_key or row.batch_key in adata.obs, row.dataset


@pytest.fixture(scope="module")
def study_plan(tmp_path_factory):
    """A dry run of the study from a scratch directory, with interpretability asked on a dataset without
    gene symbols as well (it must be skipped with one line)."""
    work = tmp_path_factory.mktemp("study")
    config = yaml.safe_load(STUDY.read_text())
    config["datasets"] = str(REPO / "config" / "study_datasets.tsv")
    config["analyses"]["interpretability"]["datasets"] = ["pancreas", "worm_neuron"]
    config["analyses"]["interpretability"]["gene_sets"] = str(REPO / config["analyses"]["interpretability"]["gene_sets"])
    (work / "resources").symlink_to(RESOURCES)  # the registry's relative paths start at the working directory
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(work, path, "-n", "--quiet", "rules", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def _count(plan: str, rule: str) -> int:
    found = re.search(rf"^{rule}\s+(\d+)$", plan, re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_study_plans_each_method_on_its_modality(study_plan):
    config = validate_config(yaml.safe_load(STUDY.read_text()), SCHEMAS / "config.schema.yaml")
    n_rna, n_atac = len(config["methods_by_modality"]["rna"]), len(config["methods_by_modality"]["atac"])
    controls = 4
    runs = 6 * (n_rna + controls) + 3 * (n_atac + controls)
    assert _count(study_plan, "embed") == runs and _count(study_plan, "evaluate") == runs
    assert _count(study_plan, "preprocess") == 9
    assert _count(study_plan, "interpret_components") == 1
    skipped = [line for line in study_plan.splitlines() if "skipped on worm_neuron" in line]
    assert len(skipped) == 1 and "feature_names" in skipped[0]
