"""The full-study config (config/paper.yaml + config/paper_datasets.tsv) and the look-before-download rule
list_geo_files.

PAPER_DATASETS below is the paper's dataset table (modality, accession, samples used), written out here so
that the registry is checked against an independent record. A registry row is VERIFIED where public evidence
of the series' files was found (its notes cite the address) and UNVERIFIED otherwise (layout classified at run
time, pattern auto); what is checked here is that the rows are the paper's accessions, that they validate,
that they say what they assume and cite what they rely on, and that the samples they name add up to the
paper's sample counts. config/paper_analyses*.yaml (the papers' own analyses) are checked the same light way.

The list_geo_files test runs the real snakemake CLI against the project's GEO test server on 127.0.0.1
(tests/geo_server.py): GSE999001 is a CONSTRUCTED series (real pancreas counts, made-up accession and SOFT
text) and GSE105845 a REAL family SOFT whose listed RAW.tar is not served.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from geo_server import constructed_gsms, sample_dir, series_dir
from livaebench.comparisons import configured_comparisons, paper_comparisons
from livaebench.config import load_registry, parse_samples, validate_config
from livaebench.methods import all_methods, check_method_params, get_method
from workflow_helpers import REPO, snakemake, write_config, write_registry

SCHEMAS = REPO / "workflow" / "schemas"

# The paper's dataset table: modality, accession (a GSM range for one entry; PRJEB37166 is ENA, not GEO),
# number of samples used.
PAPER_DATASETS = """
rna GSE115571 1;rna GSE130148 1;rna GSE142653 1;rna GSE145929 2;rna GSE165784 1;rna GSE189070 1;rna GSE213740 1
rna GSE225948 1;rna GSE247719 2;rna GSE275119 1;rna GSE132188 1;rna GSE253355 1;rna GSE167597 1;rna GSE144024 1
rna GSE192857 1;rna GSE255019 1;rna GSE226131 1;rna GSE165844 1;rna GSE141259 1;rna GSE95753 1;rna GSE226824 1
rna PRJEB37166 1;rna GSE148215 1;rna GSE120446 1;rna GSE120505 1;rna GSE117988 2;rna GSE120575 1;rna GSE124310 1
rna GSE138709 1;rna GSE149655 1;rna GSE163558 1;rna GSE168181 1;rna GSE189357 1;rna GSE225857 1;rna GSE228499 1
rna GSE283205 1;rna GSE148218 1;rna GSE262288 1;rna GSE155109 2;rna GSE123813 2;rna GSE143423 2;rna GSE123902 1
rna GSE225600 1;rna GSE235787 1;rna GSE222002 1;rna GSE98638 1;rna GSE222369 1;rna GSE183904 1;rna GSE132509 1
atac GSE174367 1;atac GSE198730 2;atac GSE206767 1;atac GSE168026 1;atac GSE175621 4;atac GSE178988 3
atac GSE192856 2;atac GSE192947 7;atac GSE199556 2;atac GSE200813 6;atac GSE201213 3;atac GSE205549 4
atac GSE211087 8;atac GSE215758 1;atac GSE220026 2;atac GSE225801 1;atac GSE226067 5;atac GSE226108 4
atac GSE232002 2;atac GSE241714 3;atac GSE241745 7;atac GSE243004 4;atac GSE247157 6;atac GSE252843 3
atac GSM8248668-GSM8248676 9;atac GSE272265 2;atac GSE274934 5;atac GSE277242 1;atac GSE278419 2
atac GSE284492 3;atac GSE286575 1;atac GSE292194 3;atac GSE294221 6;atac GSE297712 1
"""
# The registered variants that are livae itself (λ = 10, k = 2, d = 10): livae stands for those sweep points.
LIVAE_ALIASES = {"livae_lambda10", "livae_k2", "livae_d10"}


def paper_table() -> list[tuple[str, str, int]]:
    entries = [e.split() for e in re.split(r"[;\n]", PAPER_DATASETS) if e.strip()]
    return [(modality, accession, int(n)) for modality, accession, n in entries]


@pytest.fixture(scope="module")
def paper():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config = validate_config(config, SCHEMAS / "config.schema.yaml", source="config/paper.yaml")
    registry = load_registry(REPO / config["datasets"], SCHEMAS / "datasets.schema.yaml")
    return config, registry


def test_paper_table_as_transcribed():
    table = paper_table()
    assert len(table) == 83 and len({a for _, a, _ in table}) == 83
    assert sum(m == "rna" for m, _, _ in table) == 49 and sum(m == "atac" for m, _, _ in table) == 34
    assert sum(n for m, _, n in table if m == "rna") == 55 and sum(n for m, _, n in table if m == "atac") == 115


def test_paper_config_validates_and_plans_every_comparison(paper):
    config, registry = paper
    assert config["datasets"] == "config/paper_datasets.tsv"
    methods = {name: get_method(name) for name in config["methods"]}  # all registered
    check_method_params(config["method_params"])
    comparisons = configured_comparisons(config)
    assert config["paper_comparisons"] == "all" and set(comparisons) == set(paper_comparisons())
    # Every method the paper's figures use, and nothing else (livae stands for its aliases).
    used = {m for spec in paper_comparisons().values() for m in [spec["reference"], *spec["baselines"]]}
    assert set(methods) == used and not LIVAE_ALIASES & set(methods)
    assert LIVAE_ALIASES <= set(all_methods())
    # Every family has its reference and all its baselines on datasets of its modality.
    for name, spec in comparisons.items():
        modality = spec["modality"]
        rows = registry if modality == "any" else registry[registry["modality"] == modality]
        if spec.get("batch_only"):
            rows = rows[rows["batch_key"] != ""]
        assert len(rows), name
        for method in [spec["reference"], *spec["baselines"]]:
            assert set(rows["modality"]) <= set(methods[method].modalities), (name, method)


def test_paper_registry_has_the_papers_geo_accessions(paper):
    _, registry = paper
    expected = {}
    for modality, accession, n in paper_table():
        if accession.startswith("GSE"):
            expected[accession] = (modality, n)
        elif accession.startswith("GSM"):  # the nine samples the paper lists as one entry: one row each
            first, last = (int(a[3:]) for a in accession.split("-"))
            expected.update({f"GSM{k}": (modality, 1) for k in range(first, last + 1)})
    assert set(registry["accession"]) == set(expected)  # PRJEB37166 (ENA) is left out
    assert (registry["modality"] == "rna").sum() == 48 and (registry["modality"] == "atac").sum() == 42
    assert (registry["source"] == "geo").all()
    assert list(registry.index) == [f"{m}_{a}" for m, a in zip(registry["modality"], registry["accession"])]
    for row in registry.itertuples():
        modality, n = expected[row.accession]
        assert row.modality == modality, row.dataset
        # Every row says whether it is verified and what it assumes: samples, pattern, orientation, keys.
        assert row.notes.startswith(("VERIFIED", "UNVERIFIED")), row.dataset
        for word in ("Assumed:", "orientation", "label_key", "batch_key"):
            assert word in row.notes, (row.dataset, word)
        if row.accession.startswith("GSE"):
            assert f"Paper uses {n} sample{'s' if n > 1 else ''} of this series" in row.notes, row.dataset
        samples = parse_samples(row.samples)
        if row.notes.startswith("VERIFIED"):
            assert "https://" in row.notes, row.dataset  # the evidence's address
        else:  # no evidence: the classifier, not a guess, and no samples picked
            assert row.pattern == "auto" and not samples and "pattern auto" in row.notes, row.dataset
        assert row.pattern == "auto" or re.compile(row.pattern), row.dataset
        assert row.orientation in ("auto", "genes_by_cells"), row.dataset
        assert not samples or len(samples) == n, row.dataset  # the paper's samples, all of them
        assert row.label_key == "pseudo:kmeans"  # no per-cell labels in a file the workflow reads
        assert row.batch_key == ("sample" if n >= 2 else ""), row.dataset
    # The sample totals of the paper's table survive in the notes (the GSM entries: one sample each).
    used = {m: sum(int(re.search(r"Paper uses (\d+) sample", notes)[1]) for notes in
                   registry.loc[(registry["modality"] == m) & registry["accession"].str.startswith("GSE"), "notes"])
            for m in ("rna", "atac")}
    assert used == {"rna": 54, "atac": 106}  # + PRJEB37166 (1 RNA sample) and the 9 GSM rows = 55 / 115


def test_paper_registry_scatac_rows_name_the_papers_samples(paper):
    """Every scATAC-seq row is verified from the authors' file inventory: a series row lists the paper's GSMs,
    or selects the series-level files the paper read by a pattern; no GSM is listed twice, and with the nine
    GSM rows the samples add up to the paper's 115."""
    _, registry = paper
    atac = registry[registry["modality"] == "atac"]
    assert atac["notes"].str.startswith("VERIFIED").all()
    listed, series_level = [], 0
    table = {a: n for _, a, n in paper_table()}
    for row in atac[atac["accession"].str.startswith("GSE")].itertuples():
        samples = parse_samples(row.samples)
        if samples:
            assert row.pattern == "auto", row.dataset
            listed += samples
        else:
            assert row.pattern != "auto" and row.pattern.startswith(f"^{row.accession}_"), row.dataset
            series_level += table[row.accession]
    assert len(listed) == len(set(listed))
    assert len(listed) + series_level + 9 == 115


def test_paper_registry_header_counts_its_rows(paper):
    _, registry = paper
    head = (REPO / "config" / "paper_datasets.tsv").read_text().splitlines()[0]
    verified = int(registry["notes"].str.startswith("VERIFIED").sum())
    assert f"{len(registry)} rows, {verified} VERIFIED and {len(registry) - verified} UNVERIFIED" in head
    assert verified >= 45  # every scATAC-seq row and three scRNA-seq rows


def test_paper_registry_says_what_is_left_out():
    text = (REPO / "config" / "paper_datasets.tsv").read_text()
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert any("PRJEB37166" in line for line in comments)
    assert "#" not in "".join(line for line in text.splitlines() if not line.startswith("#"))  # no cut values


@pytest.mark.workflow
def test_paper_config_plans_a_dataset_chain_through_snakemake():
    """The config as snakemake reads it (schema, registry, methods, comparisons): one scRNA-seq chain and one
    listing planned; the whole study's plan is benchmarks/dag_scale.py's job (tens of seconds)."""
    targets = ["results/metrics/rna_GSE132188/livae/seed0.tsv", "results/geo_files/atac_GSM8248668.tsv"]
    result = subprocess.run([sys.executable, "-m", "snakemake", *targets, "-n", "--forceall", "--configfile",
                             "config/paper.yaml"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, re.M))
    assert counts == {"fetch_geo": "1", "assemble_counts": "1", "preprocess": "1", "train_model": "1", "embed": "1",
                      "evaluate": "1", "list_geo_files": "1", "total": "7"}


# ------------------------------------------------------------------------------------- the papers' own analyses
def _analyses_config(name: str) -> tuple[dict, dict, "pd.DataFrame"]:
    """(the file as written, the config snakemake runs: config.yaml updated by it and validated, the registry)."""
    from snakemake.utils import update_config

    raw = yaml.safe_load((REPO / "config" / name).read_text())
    merged = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(merged, raw)  # what --configfile does on top of the Snakefile's configfile
    config = validate_config(merged, SCHEMAS / "config.schema.yaml", source=f"config/{name}")
    return raw, config, load_registry(REPO / config["datasets"], SCHEMAS / "datasets.schema.yaml")


def test_paper_analyses_config_runs_livae_interpretability_and_unicoord_time_course():
    raw, config, registry = _analyses_config("paper_analyses.yaml")
    assert config["datasets"] == "config/paper_analyses_datasets.tsv"
    analyses = config["analyses"]
    assert analyses["interpretability"]["datasets"] == ["rna_GSE277292"] and "livae" in config["methods"]
    assert registry.loc["rna_GSE277292", "accession"] == "GSE277292"
    assert analyses["unicoord"]["datasets"] == ["rna_GSE122662"]
    assert registry.loc["rna_GSE122662", "accession"] == "GSE122662"
    # The day is the supervised continuous coordinate; interpolation moves it by the paper's ± 0.5 day.
    assert raw["dataset_method_params"]["rna_GSE122662"]["unicoord"]["continuous_keys"] == ["day"]
    unicoord = analyses["unicoord"]
    assert unicoord["interpolation"]["key"] == "day" and unicoord["interpolation"]["jitter"] == 0.5
    assert set(raw["analyses"]["unicoord"]["reconfiguration"]["continuous"]) == {"day"}
    # Restoration compares the day column as text (add_stage: astype(str)): each stage's name is its day so
    # written, and the quarter days 0-18 are all there, the held-out one included.
    restoration = raw["analyses"]["unicoord"]["restoration"]
    assert restoration["key"] == "day" and restoration["heldout"] in restoration["stages"]
    assert all(name == str(float(day)) for name, day in restoration["stages"].items())
    assert {str(q / 4) for q in range(73)} == set(restoration["stages"])


def test_paper_analyses_hcc_config_reuses_unicoord_as_a_reference():
    from livaebench.labels import as_categories

    raw, config, registry = _analyses_config("paper_analyses_hcc.yaml")
    assert config["analyses"]["unicoord"]["datasets"] == ["rna_GSE151530"]
    assert config["analyses"]["interpretability"]["datasets"] == []
    assert registry.loc["rna_GSE151530", "accession"] == "GSE151530"
    assert config["analyses"]["unicoord"]["reference"]["query"] is None  # held-out cells as the query
    # Restoration on the pseudo-labels: every category KMeans can make (k = latent_dim) has a stage.
    restoration = raw["analyses"]["unicoord"]["restoration"]
    categories = as_categories(np.arange(config["latent_dim"]), config["latent_dim"]).categories
    assert set(categories) <= set(restoration["stages"]) and restoration["heldout"] in categories


def test_paper_analyses_registry_rows_say_what_they_assume():
    text = (REPO / "config" / "paper_analyses_datasets.tsv").read_text()
    _, _, registry = _analyses_config("paper_analyses.yaml")
    assert list(registry.index) == ["rna_GSE277292", "rna_GSE122662", "rna_GSE151530"]
    for row in registry.itertuples():
        assert row.source == "geo" and row.pattern == "auto" and row.notes.startswith("UNVERIFIED"), row.dataset
        assert "Assumed:" in row.notes and row.label_key == "pseudo:kmeans", row.dataset
    # The sources that are not GEO are documented rows for the user to complete: a whole row each, commented.
    comments = [line for line in text.splitlines() if line.startswith("#")]
    for source in ("hECA", "E-MTAB-8077", "DiffVAE"):
        assert any(source in line for line in comments), source
    header = next(line for line in text.splitlines() if line.startswith("dataset\t")).split("\t")
    rows = [line[2:].split("\t") for line in comments if line.startswith("# rna_")]
    assert len(rows) == 3 and all(len(fields) == len(header) for fields in rows)
    assert all(dict(zip(header, fields))["source"] == "file" for fields in rows)


@pytest.mark.workflow
@pytest.mark.parametrize("name, targets, expected", [
    ("paper_analyses.yaml", ["results/analyses/interpretability/rna_GSE277292/enrichment.tsv",
                             "results/analyses/unicoord/rna_GSE122662/restoration/restoration.tsv"],
     {"fetch_geo": "2", "assemble_counts": "2", "preprocess": "2", "train_model": "1", "embed": "1",
      "interpret_components": "1", "unicoord_split": "1", "unicoord_train": "1", "unicoord_restoration": "1",
      "total": "12"}),
    ("paper_analyses_hcc.yaml", ["results/analyses/unicoord/rna_GSE151530/reference/confusion.tsv"],
     {"fetch_geo": "1", "assemble_counts": "1", "preprocess": "1", "unicoord_split": "1", "unicoord_train": "1",
      "unicoord_reference": "1", "total": "6"}),
])
def test_paper_analyses_configs_plan_offline(name, targets, expected):
    """The analyses' chains as snakemake plans them from the GEO rows, without the network (a dry run
    downloads nothing)."""
    result = subprocess.run([sys.executable, "-m", "snakemake", *targets, "-n", "--forceall", "--configfile",
                             f"config/{name}"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert dict(re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, re.M)) == expected


# ------------------------------------------------------------------------------------- list_geo_files
@pytest.mark.workflow
def test_list_geo_files_lists_sizes_and_selection_without_downloading(server, tmp_path):
    server.clear()  # other tests of the session downloaded these files in full
    acc, gsms = "GSE999001", constructed_gsms("GSE999001")
    work = tmp_path / "work"
    work.mkdir()
    registry = write_registry(work / "datasets.tsv", [
        dict(dataset="geo_series", modality="rna", source="geo", accession=acc, label_key="", batch_key="sample",
             pattern=r"^GSM\d+_(barcodes|features|matrix)"),
        dict(dataset="geo_real", modality="rna", source="geo", accession="GSE105845", label_key="",
             pattern=r"_RAW\.tar$"),
        dict(dataset="geo_none", modality="rna", source="geo", accession=acc, label_key="", pattern=r"\.h5$"),
    ])
    config = write_config(work, datasets=str(registry), methods=["pca"], paper_comparisons=[],
                          geo={"base_url": server.base_url, "retries": 0, "timeout": 10})
    run = snakemake(work, config, "--cores", "1", "geo_files")
    assert run.returncode == 0, run.stderr[-3000:]

    # One row per supplementary file (series and samples), sizes equal to the served files.
    table = pd.read_csv(work / "results/geo_files/geo_series.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["file", "sample", "url", "bytes", "kind", "archive", "selected", "note"]
    served = {f"{acc}_RAW.tar": series_dir(server.root, acc) / "suppl" / f"{acc}_RAW.tar",
              f"{acc}_counts.csv.gz": series_dir(server.root, acc) / "suppl" / f"{acc}_counts.csv.gz"}
    for gsm in gsms:
        for part in ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"):
            served[f"{gsm}_{part}"] = sample_dir(server.root, gsm) / "suppl" / f"{gsm}_{part}"
    assert sorted(table["file"]) == sorted(served)
    for row in table.itertuples():
        assert int(row.bytes) == served[row.file].stat().st_size, row.file
        assert row.url.startswith(server.base_url + "/") and row.url.endswith("/" + row.file)
        assert row.sample == ("" if row.file.startswith(acc) else row.file.split("_")[0])
        assert row.selected == ("yes" if row.file.startswith("GSM") else "no"), row.file
        kind = {"barcodes": "10x part (barcodes)", "features": "10x part (features)", "matrix": "10x part (matrix)",
                "RAW": "archive (members unknown)", "counts": "dense table"}  # named by the listing alone
        assert row.kind == kind[re.split(r"[_.]", row.file)[1]], row.file
    # Nothing but the SOFT texts was downloaded: the test server refuses HEAD, so each size came from a
    # one-byte ranged GET.
    for name in served:
        assert server.sent(name) == 2, name  # one byte for each of the two rows naming GSE999001
    assert {t["range"] for t in server.transfers if "/suppl/" in t["path"]} == {"bytes=0-0"}
    assert not (work / "results/downloads").exists()

    log = (work / "logs/list_geo_files/geo_series.log").read_text()
    assert "8 supplementary files; 6 selected" in log
    assert re.search(r"yes\s+177\.3 kB\s+GSM99900102\s+GSM99900102_matrix\.mtx\.gz", log), log
    assert re.search(r"no\s+399\.4 kB\s+\(series\)\s+GSE999001_RAW\.tar", log), log

    # A real SOFT whose file is missing on the mirror: listed, selected, size unknown with the reason.
    real = pd.read_csv(work / "results/geo_files/geo_real.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert real[["file", "selected"]].values.tolist() == [["GSE105845_RAW.tar", "yes"]]
    assert real["bytes"].tolist() == ["NA"] and "HTTP 404" in real["note"][0]
    # A pattern that selects nothing: the listing still comes, with a warning that fetch_geo would stop.
    none = pd.read_csv(work / "results/geo_files/geo_none.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert set(none["selected"]) == {"no"} and len(none) == 8
    assert "the pattern selects no file" in (work / "logs/list_geo_files/geo_none.log").read_text()

    # A changed pattern re-lists (a params change), a local-file row is refused with one line.
    write_registry(registry, [
        dict(dataset="geo_series", modality="rna", source="geo", accession=acc, label_key="", batch_key="sample",
             pattern=r"_RAW\.tar$"),
        dict(dataset="local", modality="rna", source="file", path=REPO / "resources/pancreas.h5ad",
             label_key="clusters"),
    ])
    again = snakemake(work, config, "--cores", "1", "--keep-going", "results/geo_files/geo_series.tsv",
                      "results/geo_files/local.tsv")
    assert again.returncode != 0
    table = pd.read_csv(work / "results/geo_files/geo_series.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert table.loc[table["selected"] == "yes", "file"].tolist() == [f"{acc}_RAW.tar"]
    last = (work / "logs/list_geo_files/local.log").read_text().strip().splitlines()[-1]
    assert "ERROR" in last and "'local'" in last and "not a GEO dataset" in last and "Fix:" in last
