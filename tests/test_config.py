"""Config validation and the dataset registry: defaults filled, bad keys and rows named in one line."""
from __future__ import annotations

import pytest
import yaml

from conftest import REPO, RESOURCES
from livaebench.config import REGISTRY_COLUMNS, check_name, load_registry, preprocess_options, validate_config
from livaebench.errors import InputError

SCHEMAS = REPO / "workflow" / "schemas"


def default_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["comparisons"] = {"mine": {"reference": "livae", "baselines": ["pca"]}}  # one own family to check
    return config


def test_default_config_is_valid_and_defaults_are_filled():
    config = default_config()
    del config["threads"]
    validated = validate_config(config, SCHEMAS / "config.schema.yaml")
    assert validated["threads"] == {"train": 1, "embed": 1, "evaluate": 1}
    assert validated["comparisons"]["mine"]["modality"] == "any"


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(method="pca"), "method"),
    (lambda c: c["preprocess"].update(min_genes=-1), "preprocess.min_genes"),
    (lambda c: c.update(seeds=[]), "seeds"),
    (lambda c: c["comparisons"]["mine"].pop("reference"), "comparisons.mine"),
])
def test_bad_config_names_the_key(mutate, key):
    config = default_config()
    mutate(config)
    with pytest.raises(InputError) as err:
        validate_config(config, SCHEMAS / "config.schema.yaml")
    message = str(err.value)
    assert f"key '{key}" in message and "\n" not in message


def test_default_registry_loads(monkeypatch):
    monkeypatch.chdir(REPO)  # its relative paths start at the working directory, as in a snakemake run
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
    (tmp_path / "x").touch()
    path.write_text(f"dataset\tmodality\tsource\tpath\tlabel_key\nA\trna\tfile\t{tmp_path / 'x'}\ty\n"
                    f"A\trna\tfile\t{tmp_path / 'x'}\ty\n")
    with pytest.raises(InputError, match="line 3 .*'A'.*listed twice"):
        load_registry(path, SCHEMAS / "datasets.schema.yaml")
    path.write_text("dataset\tmodality\tsource\tpath\tlabel_key\tcolour\nA\trna\tfile\tx\ty\tred\n")
    with pytest.raises(InputError, match="unknown column"):
        load_registry(path, SCHEMAS / "datasets.schema.yaml")



# ------------------------------------------------------------------ names that become paths
@pytest.mark.parametrize("name", ["pancreas", "GSE132188", "a.b-c_d", "x" * 100, "7up"])
def test_check_name_accepts_plain_names(name):
    assert check_name("method", name) == name


@pytest.mark.parametrize("name", [
    "ok\n",                 # '^...$' with re.search lets a trailing newline through; fullmatch does not
    "a..b", "..", ".hidden", "-flag", "_x", "a/b", "a\\b", "a b", "", "x" * 101, "naïve", "a\x00b", 7, None,
])
def test_check_name_rejects_unsafe_names_in_one_line(name):
    with pytest.raises(InputError) as err:
        check_name("comparison", name)
    msg = str(err.value)
    assert msg.startswith("comparison name ") and "\n" not in msg and "Fix: use 1-100 letters" in msg


def write_rows(tmp_path, header: list[str], *rows: list[str], raw: str | None = None):
    path = tmp_path / "datasets.tsv"
    text = raw if raw is not None else "\n".join("\t".join(r) for r in [header, *rows]) + "\n"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def load(path):
    return load_registry(path, SCHEMAS / "datasets.schema.yaml")


PANCREAS = str(RESOURCES / "pancreas.h5ad")
HEADER = ["dataset", "modality", "source", "path", "label_key", "notes"]


def test_registry_values_are_read_exactly_as_written(tmp_path):
    """'#' inside a value, 'NA'/'None'/'nan' label keys: kept verbatim (pandas' comment= and NA parsing are
    not used); comment and blank lines are skipped; \r\n endings and a UTF-8 BOM are accepted."""
    lines = ["\ufeff" + "\t".join(HEADER),
             "# a comment line",
             "\t".join(["p1", "rna", "file", PANCREAS, "NA", "sample #3 # not a comment"]),
             "",
             "\t".join(["p2", "rna", "file", PANCREAS, "None", "  spaces kept in notes  "]),
             "\t".join(["p3", "rna", "file", PANCREAS, "nan"])]  # trailing empty cells omitted
    table = load(write_rows(tmp_path, HEADER, raw="\r\n".join(lines) + "\r\n"))
    assert list(table.index) == ["p1", "p2", "p3"]
    assert table.loc["p1", "notes"] == "sample #3 # not a comment"
    assert table.loc["p1", "label_key"] == "NA" and table.loc["p2", "label_key"] == "None"
    assert table.loc["p3", "label_key"] == "nan" and table.loc["p3", "notes"] == ""
    assert table.loc["p2", "notes"] == "  spaces kept in notes  "
    assert all(isinstance(v, str) for v in table.to_numpy().ravel())
    assert list(table.columns) == REGISTRY_COLUMNS


def test_pandas_would_have_mangled_the_same_registry(tmp_path):
    """Why the registry is not read with pandas: the old call truncated at '#' (and the like)."""
    import pandas as pd

    path = write_rows(tmp_path, HEADER, ["p1", "rna", "file", PANCREAS, "cell#type", "x"])
    old = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    assert old.loc[0, "label_key"] == "cell"  # silently cut
    assert load(path).loc["p1", "label_key"] == "cell#type"


@pytest.mark.parametrize("cells, fragment", [
    (["a..b", "rna", "file", PANCREAS, "x"], "column 'dataset': 'a..b' cannot be used in file paths"),
    ([".p", "rna", "file", PANCREAS, "x"], "column 'dataset': '.p'"),
    (["p1", "rna ", "file", PANCREAS, "x"], "column 'modality': value 'rna ' has leading or trailing whitespace"),
    (["p1", "rna", "file", " " + PANCREAS, "x"], "column 'path': value ' /"),
    (["p1", "rna", "file", f'"{PANCREAS}"', "x"], "column 'path': value '\"/"),
    (["p1", "rna", "file", PANCREAS, "x\x0b"], "column 'label_key': contains a control character"),
    (["p1", "RNA", "file", PANCREAS, "x"], "column 'modality': 'RNA' is not one of"),
    (["p1", "rna", "file", PANCREAS + ".missing", "x"], "column 'path'"),
])
def test_bad_values_are_named_with_line_and_column(tmp_path, cells, fragment):
    path = write_rows(tmp_path, HEADER[:5], ["p0", "rna", "file", PANCREAS, "x"], cells)
    with pytest.raises(InputError) as err:
        load(path)
    msg = str(err.value)
    assert "line 3 (dataset " in msg and fragment in msg and "Fix: " in msg and "\n" not in msg, msg


FULL = ["dataset", "modality", "source", "accession", "path", "label_key", "pattern", "orientation", "max_cells",
        "min_genes", "min_peaks", "min_cells", "max_mito_pct"]


def full_row(**values) -> list[str]:
    row = dict(dataset="d1", modality="rna", source="file", path=PANCREAS, label_key="")
    row.update(values)
    return [str(row.get(column, "")) for column in FULL]


@pytest.mark.parametrize("values, fragment", [
    (dict(pattern="_RAW\\.tar$"), "column 'pattern': is set but source is 'file'"),
    (dict(source="geo", path="", accession="GSE1", pattern="(unclosed"), "column 'pattern': '(unclosed' is not a valid regular"),
    (dict(source="geo", accession="GSE1"), "column 'path': is set but source is 'geo'"),
    (dict(source="geo", path="", accession="GSE1x"), "column 'accession'"),
    (dict(max_cells="0"), "column 'max_cells'"),
    (dict(max_cells="1e4"), "column 'max_cells'"),
    (dict(min_peaks="3"), "column 'min_peaks': applies to ATAC datasets"),
    (dict(modality="atac", min_genes="200"), "column 'min_genes': applies to RNA datasets"),
    (dict(min_genes="-1"), "column 'min_genes'"),
    (dict(min_cells="2.5"), "column 'min_cells'"),
    (dict(max_mito_pct="120"), "column 'max_mito_pct': '120' is not a percentage"),
    (dict(max_mito_pct="abc"), "column 'max_mito_pct'"),
    (dict(modality="atac", max_mito_pct="20"), "column 'max_mito_pct': applies to RNA datasets only"),
    (dict(orientation="rows"), "column 'orientation'"),
])
def test_options_are_type_checked_and_must_apply_to_the_row(tmp_path, values, fragment):
    path = write_rows(tmp_path, FULL, full_row(**values))
    with pytest.raises(InputError) as err:
        load(path)
    msg = str(err.value)
    assert "line 2 (dataset 'd1')" in msg and fragment in msg and "Fix: " in msg, msg


# ------------------------------------------------------------------------ pseudo-labels (label_key)
@pytest.mark.parametrize("value", ["pseudo:kmeans", "pseudo:kmeans:12", "pseudo:kmeans:2", "pseudo_kmeans"])
def test_pseudo_label_specs_are_accepted(tmp_path, value):
    """pseudo:kmeans (k = latent_dim) and pseudo:kmeans:K; 'pseudo_kmeans' is an ordinary column name."""
    assert load(write_rows(tmp_path, FULL, full_row(label_key=value))).loc["d1", "label_key"] == value


@pytest.mark.parametrize("values, fragment", [
    (dict(label_key="pseudo:kmean"), "column 'label_key': 'pseudo:kmean' is not a pseudo-label spec"),
    (dict(label_key="pseudo:leiden"), "column 'label_key': 'pseudo:leiden' is not a pseudo-label spec"),
    (dict(label_key="pseudo:kmeans:"), "is not a pseudo-label spec"),
    (dict(label_key="pseudo:kmeans:x"), "is not a pseudo-label spec"),
    (dict(label_key="pseudo:kmeans:-3"), "is not a pseudo-label spec"),
    (dict(label_key="Pseudo:KMeans"), "is not a pseudo-label spec"),
    (dict(label_key="pseudo:kmeans:1"), "column 'label_key': 'pseudo:kmeans:1' asks for k = 1 clusters"),
    (dict(label_key="pseudo:kmeans:0"), "asks for k = 0 clusters"),
])
def test_bad_pseudo_label_specs_are_one_line(tmp_path, values, fragment):
    path = write_rows(tmp_path, FULL, full_row(**values))
    with pytest.raises(InputError) as err:
        load(path)
    msg = str(err.value)
    assert "line 2 (dataset 'd1')" in msg and fragment in msg and "\n" not in msg, msg
    assert "Fix: write pseudo:kmeans" in msg or "Fix: write K >= 2" in msg, msg


def test_pseudo_labels_are_not_batches(tmp_path):
    path = write_rows(tmp_path, FULL + ["batch_key"], full_row() + ["pseudo:kmeans"])
    with pytest.raises(InputError, match="column 'batch_key': 'pseudo:kmeans': pseudo-labels are for label_key only"):
        load(path)


@pytest.mark.parametrize("raw, fragment", [
    ("dataset\tmodality\tsource\tpath\tlabel_key\nd1\trna\tfile\t{p}\tx\textra\n", "line 2: has 6 tab-separated fields"),
    ("dataset,modality,source,path,label_key\nd1,rna,file,{p},x\n", "not tab-separated"),
    ("dataset\tmodality\tdataset\nd1\trna\td1\n", "dataset appear twice"),
    ("# only a comment\n\n", "is empty"),
    ("dataset\tmodality\tsource\tpath\tlabel_key\nd1\trna\tfile\t{p}\tx\nD1\trna\tfile\t{p}\tx\n", "listed twice"),
])
def test_registry_shape_errors(tmp_path, raw, fragment):
    path = write_rows(tmp_path, [], raw=raw.format(p=PANCREAS))
    with pytest.raises(InputError) as err:
        load(path)
    assert fragment in str(err.value) and "Fix: " in str(err.value), str(err.value)


def test_registry_not_utf8(tmp_path):
    path = write_rows(tmp_path, [], raw=b"dataset\tmodality\n\xff\xfe\n")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        load(path)


def test_trailing_tabs_are_empty_cells(tmp_path):
    path = write_rows(tmp_path, [], raw=f"dataset\tmodality\tsource\tpath\tlabel_key\t\nd1\trna\tfile\t{PANCREAS}\tx\t\t\n")
    assert load(path).loc["d1", "label_key"] == "x"


# ------------------------------------------------------------------------ per-dataset QC thresholds
CONFIG_QC = {"min_genes": 200, "min_peaks": 1, "min_cells": 3, "n_features_rna": 5000, "n_features_atac": 10000,
             "max_mito_pct": None}


def test_registry_qc_columns_override_the_config(tmp_path):
    path = write_rows(tmp_path, FULL, full_row(dataset="panel", min_genes="20", max_mito_pct="12.5"),
                      full_row(dataset="peaks", modality="atac", min_peaks="50", min_cells="7"),
                      full_row(dataset="plain"))
    table = load(path)
    panel = preprocess_options(table.loc["panel"].to_dict(), CONFIG_QC)
    assert panel == {"n_features": 5000, "min_genes": 20, "min_cells": 3, "max_mito_pct": 12.5,
                     "overrides": {"min_genes": 20, "max_mito_pct": 12.5}, "skipped": []}
    peaks = preprocess_options(table.loc["peaks"].to_dict(), CONFIG_QC)
    assert peaks == {"n_features": 10000, "min_genes": 50, "min_cells": 7, "max_mito_pct": None,
                     "overrides": {"min_peaks": 50, "min_cells": 7}, "skipped": []}
    plain = preprocess_options(table.loc["plain"].to_dict(), CONFIG_QC)
    assert plain == {"n_features": 5000, "min_genes": 200, "min_cells": 3, "max_mito_pct": None, "overrides": {},
                     "skipped": []}


def test_mito_cap_is_skipped_with_a_line_where_features_are_not_symbols(tmp_path):
    path = write_rows(tmp_path, [*FULL, "feature_names"], [*full_row(dataset="worm", max_mito_pct="20"), "placeholder"],
                      [*full_row(dataset="human", max_mito_pct="20"), ""])
    table = load(path)
    worm = preprocess_options(table.loc["worm"].to_dict(), CONFIG_QC)
    assert worm["max_mito_pct"] is None and len(worm["skipped"]) == 1
    assert "max_mito_pct=20 skipped" in worm["skipped"][0] and "placeholder" in worm["skipped"][0]
    assert preprocess_options(table.loc["human"].to_dict(), CONFIG_QC)["max_mito_pct"] == 20.0
    with pytest.raises(InputError, match="feature_names"):
        load(write_rows(tmp_path, [*FULL, "feature_names"], [*full_row(dataset="x"), "names"]))


def test_preprocess_options_recheck_a_hand_made_row():
    with pytest.raises(InputError, match="registry column 'min_genes'"):
        preprocess_options({"dataset": "d", "modality": "rna", "source": "file", "min_genes": "lots"}, CONFIG_QC)
