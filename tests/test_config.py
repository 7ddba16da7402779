"""Config validation and the dataset registry: defaults filled, bad keys and rows named in one line."""
from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from livaebench.config import load_registry, validate_config
from livaebench.errors import InputError

SCHEMAS = REPO / "workflow" / "schemas"


def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_are_filled():
    config = default_config()
    del config["threads"]
    validated = validate_config(config, SCHEMAS / "config.schema.yaml")
    assert validated["threads"] == {"train": 2, "embed": 2, "evaluate": 1}
    assert validated["comparisons"]["livae_vs_classical"]["modality"] == "any"


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(method="pca"), "method"),
    (lambda c: c["preprocess"].update(min_genes=-1), "preprocess.min_genes"),
    (lambda c: c.update(seeds=[]), "seeds"),
    (lambda c: c["comparisons"]["livae_vs_classical"].pop("reference"), "comparisons.livae_vs_classical"),
])
def test_bad_config_names_the_key(mutate, key):
    config = default_config()
    mutate(config)
    with pytest.raises(InputError) as err:
        validate_config(config, SCHEMAS / "config.schema.yaml")
    message = str(err.value)
    assert f"key '{key}" in message and "\n" not in message


def test_default_registry_loads():
    table = load_registry(REPO / "config" / "datasets.tsv", SCHEMAS / "datasets.schema.yaml")
    assert list(table.index) == ["pancreas", "cellbench", "atac_bmmc"]
    assert table.loc["atac_bmmc", "modality"] == "atac" and table.loc["cellbench", "batch_key"] == "batch"


@pytest.mark.parametrize("row, fragment", [
    ("ds1\trna\tgeo\t\t\tcell_type\n", "line 2 (dataset 'ds1')"),               # geo without accession
    ("ds1\trna\tfile\t\t\tcell_type\n", "line 2 (dataset 'ds1')"),              # file without path
    ("ds1\trna\tgeo\tGDS12\t\tcell_type\n", "column 'accession'"),              # not a GSE/GSM
    ("ds 1\trna\tfile\t\tx.h5ad\tcell_type\n", "column 'dataset'"),             # space in the id
])
def test_bad_registry_rows_are_named(tmp_path, row, fragment):
    path = tmp_path / "datasets.tsv"
    path.write_text("dataset\tmodality\tsource\taccession\tpath\tlabel_key\n" + row)
    with pytest.raises(InputError) as err:
        load_registry(path, SCHEMAS / "datasets.schema.yaml")
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_duplicate_and_unknown_columns(tmp_path):
    path = tmp_path / "datasets.tsv"
    path.write_text("dataset\tmodality\tsource\tpath\tlabel_key\nA\trna\tfile\tx\ty\nA\trna\tfile\tx\ty\n")
    with pytest.raises(InputError, match="listed twice: A"):
        load_registry(path, SCHEMAS / "datasets.schema.yaml")
    path.write_text("dataset\tmodality\tsource\tpath\tlabel_key\tcolour\nA\trna\tfile\tx\ty\tred\n")
    with pytest.raises(InputError, match="unknown column"):
        load_registry(path, SCHEMAS / "datasets.schema.yaml")
