"""The parts of GEO layout recognition on their own: the registry's samples column, file kinds, the choice
rules, GEO's filelist.txt, the tar index by ranged requests, and assembly with pattern auto."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from geo_server import filelist_text, serve, tar_bytes, triplet_files
from livaebench.config import load_registry, parse_samples
from livaebench.data.geo import assemble_geo, tar_index
from livaebench.data.geo_layout import Entry, LayoutError, name_kind, parse_filelist, plan
from livaebench.data.url_policy import allowed_origins
from livaebench.errors import InputError
from workflow_helpers import REPO

SCHEMA = REPO / "workflow" / "schemas" / "datasets.schema.yaml"


# --------------------------------------------------------------------------------- samples column
def test_parse_samples_ranges_and_errors():
    assert parse_samples("") == []
    assert parse_samples("GSM8248668-GSM8248676") == [f"GSM{n}" for n in range(8248668, 8248677)]
    assert parse_samples("GSM1, GSM5-GSM6,GSM9") == ["GSM1", "GSM5", "GSM6", "GSM9"]
    for bad, words in [("GSE1", "not a GSM id"), ("GSM9-GSM3", "must go up"), ("GSM1-GSM5000", "at most 1000"),
                       ("GSM1,,GSM2", "not a GSM id"), ("GSM2,GSM1-GSM3", "GSM2 listed twice")]:
        with pytest.raises(ValueError, match=words):
            parse_samples(bad)


def registry(tmp_path, **row) -> pd.DataFrame:
    base = dict(dataset="d", modality="rna", source="geo", accession="GSE1", label_key="")
    base.update(row)
    path = tmp_path / "datasets.tsv"
    path.write_text("\t".join(base) + "\n" + "\t".join(base.values()) + "\n")
    return load_registry(path, SCHEMA)


def test_registry_samples_column(tmp_path):
    table = registry(tmp_path, samples="GSM10-GSM12")
    assert table.loc["d", "samples"] == "GSM10-GSM12" and table.loc["d", "batch_key"] == "sample"
    assert registry(tmp_path, samples="GSM10").loc["d", "batch_key"] == ""  # one sample: no batches
    assert registry(tmp_path, samples="GSM10,GSM11", batch_key="donor").loc["d", "batch_key"] == "donor"
    assert registry(tmp_path, pattern="auto").loc["d", "pattern"] == "auto"
    for row, words in [(dict(samples="GSM10-GSM9"), "column 'samples': range 'GSM10-GSM9' must go up"),
                       (dict(samples="10,11"), "column 'samples': '10' is not a GSM id"),
                       (dict(accession="GSM5", samples="GSM5"), "the accession is a sample"),
                       (dict(source="file", accession="", path=str(SCHEMA), samples="GSM5"), "source is 'file'")]:
        with pytest.raises(InputError) as err:
            registry(tmp_path, **row)
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


# ------------------------------------------------------------------------------------- kinds, choice
@pytest.mark.parametrize("name, kind", [
    ("GSM3562050_AJ17001_matrix.mtx.gz", "mtx without its label files"),
    ("GSM7500359_hbca_c50_filtered_feature_bc_matrix.h5", "10x HDF5"),
    ("GSM7500359_hbca_c50_molecule_info.h5", "other (not a count matrix)"),
    ("GSE132188_adata.h5ad.h5", "h5ad"), ("GSE1_adata.h5ad.gz", "h5ad"),
    ("GSE1_counts.txt.gz", "dense table"), ("GSE1_featureCounts.txt.gz", "dense table"),
    ("GSE1_TPM.csv.gz", "normalized table (not raw counts)"), ("GSE1_log2_norm.tsv", "normalized table (not raw counts)"),
    ("GSE1_cell_metadata.csv.gz", "metadata table"), ("GSE1_Annotation.txt", "metadata table"),
    ("GSE1_RAW.tar", "archive (members unknown)"), ("GSM1_E15_5_counts.tar.gz", "archive (members unknown)"),
    ("GSE1_seurat_object.rds.gz", "unsupported format (R object .rds)"), ("GSE1.loom", "unsupported format (loom)"),
    ("GSE1_obj.RData", "unsupported format (R data .RData)"), ("GSE1_obj.h5Seurat", "unsupported format (Seurat .h5seurat)"),
    ("GSM1_quants_mat.gz", "unsupported format (alevin binary EDS matrix)"), ("filelist.txt", "GEO file list"),
    ("GSE1_peaks.bed.gz", "other (not a count matrix)")])
def test_name_kinds(name, kind):
    assert name_kind(name) == kind


def choose(files, samples, wanted=None, members=None):
    entries = [Entry(n, s) for n, s in files]
    choice = plan(entries, series_samples=samples, wanted=wanted, members=members)
    return choice, {(e.archive, e.name): e for e in entries}


def test_choice_rules():
    s = ["GSM1", "GSM2"]
    triplets = [(f"{g}_{p}", g) for g in s for p in ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz")]
    # a 10x .h5 beats the triplet of the same output; filtered beats raw
    files = triplets + [(f"{g}_{v}_feature_bc_matrix.h5", g) for g in s for v in ("filtered", "raw")]
    choice, e = choose(files, s)
    assert [u.entries[0].name for u in choice.units] == ["GSM1_filtered_feature_bc_matrix.h5",
                                                         "GSM2_filtered_feature_bc_matrix.h5"]
    assert "raw matrix" in e[("", "GSM1_raw_feature_bc_matrix.h5")].note
    assert "HDF5 of the same output" in e[("", "GSM2_matrix.mtx.gz")].note
    # the _RAW.tar is not looked into when every sample lists its own files
    asked = []
    choice, e = choose(triplets + [("GSE1_RAW.tar", "")], s, members=lambda a: asked.append(a) or [])
    assert not asked and not e[("", "GSE1_RAW.tar")].selected and choice.layout == "per-sample 10x triplet (2 samples)"
    # per-sample matrices beat a series table; a selected sample without counts is an error naming the fix
    choice, e = choose(triplets + [("GSE1_counts.csv.gz", "")], s, wanted=["GSM2"])
    assert [x.sample for x in choice.units] == ["GSM2"] and "per-sample matrices are preferred" in \
        e[("", "GSE1_counts.csv.gz")].note
    with pytest.raises(LayoutError, match="samples GSM3 have no count matrix") as err:
        choose(triplets, s + ["GSM3"])
    assert "GSM1,GSM2" in err.value.fix
    # a series table cannot be cut by samples; two tables for one sample are ambiguous
    with pytest.raises(LayoutError, match="cannot select cells from it"):
        choose([("GSE1_counts.csv.gz", "")], s, wanted=["GSM1"])
    with pytest.raises(LayoutError, match="sample GSM1 offers 2 count matrices") as err:
        choose([("GSM1_a.csv.gz", "GSM1"), ("GSM1_b.csv.gz", "GSM1")], ["GSM1"])
    assert "'b\\.csv\\.gz$'" in err.value.fix or "'a\\.csv\\.gz$'" in err.value.fix


# ------------------------------------------------------------------------------- member lists
GSE125065_FILELIST = """Archive/File\tName\tTime\tSize\tType
Archive\tGSE125065_RAW.tar\t01/15/2019 12:55:11\t61061120\tTAR
File\tGSM3562050_AJ17001_barcodes.tsv.gz\t01/14/2019 14:53:56\t14793\tTSV
File\tGSM3562050_AJ17001_genes.tsv.gz\t01/14/2019 14:53:57\t222705\tTSV
File\tGSM3562050_AJ17001_matrix.mtx.gz\t01/14/2019 14:54:03\t27825957\tMTX
"""


def test_parse_filelist_real_format():
    # the format of GSE125065's filelist.txt (its first sample's lines, as quoted in public code)
    assert parse_filelist(GSE125065_FILELIST) == {"GSE125065_RAW.tar": [
        ("GSM3562050_AJ17001_barcodes.tsv.gz", 14793), ("GSM3562050_AJ17001_genes.tsv.gz", 222705),
        ("GSM3562050_AJ17001_matrix.mtx.gz", 27825957)]}
    members = {"a.txt": b"1", "b.txt": b"22"}
    assert parse_filelist(filelist_text("X_RAW.tar", members)) == {"X_RAW.tar": [("a.txt", 1), ("b.txt", 2)]}


def test_tar_index_by_ranged_requests(tmp_path):
    long = "GSM1_" + "n" * 150 + "_matrix.mtx.gz"  # over tar's 100 characters: a GNU long-name header
    members = {"GSM1_barcodes.tsv.gz": b"x" * 700, long: b"y" * 10, "GSM2_genes.tsv.gz": b""}
    (tmp_path / "suppl").mkdir()
    (tmp_path / "suppl" / "a.tar").write_bytes(tar_bytes(members))
    with serve(tmp_path) as site:
        url = f"{site.base_url}/suppl/a.tar"
        allowed = allowed_origins([site.base_url])
        assert tar_index(url, allowed=allowed, timeout=10) == [(n, len(d)) for n, d in members.items()]
        assert all(t["range"] for t in site.transfers) and sum(t["sent"] for t in site.transfers) < 3000
        site.faults["a.tar"] = "ignore_range"  # a server without ranges: unknown, the body is not read
        assert tar_index(url, allowed=allowed, timeout=10) is None


def test_assemble_auto_keeps_the_chosen_samples_of_a_raw_tar(tmp_path):
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(12)]
    members, expected = {}, {}
    for i, gsm in enumerate(["GSM11", "GSM12", "GSM13"]):
        x = rng.poisson(2, size=(5, len(genes))) + 1
        bc = [f"{'ACGT'[i]}{'A' * 14}{k}-1" for k in range(5)]
        members.update({f"{gsm}_{k}": v for k, v in triplet_files(x, bc, genes).items()})
        expected[gsm] = (x, bc)
    members["GSM12_filtered_feature_bc_matrix.h5.md5"] = b"0"  # another file in the tar: not read
    data = tar_bytes(members)
    (tmp_path / "GSE1_RAW.tar").write_bytes(data)
    pd.DataFrame({"file": ["GSE1_RAW.tar"], "sample": [""], "url": ["u"], "bytes": [len(data)]}).to_csv(
        tmp_path / "manifest.tsv", sep="\t", index=False)
    pd.DataFrame({"sample": list(expected), "sample_title": ["a", "b", "c"]}).to_csv(
        tmp_path / "samples.tsv", sep="\t", index=False)
    adata = assemble_geo(tmp_path, dataset="t", pattern="auto", samples="GSM11,GSM13")
    want = [f"{g}_{b}" for g in ("GSM11", "GSM13") for b in expected[g][1]]
    assert list(adata.obs_names) == want and list(adata.obs["sample"].cat.categories) == ["GSM11", "GSM13"]
    np.testing.assert_array_equal(adata[:, genes].X.toarray(), np.vstack([expected["GSM11"][0], expected["GSM13"][0]]))
    # a regex pattern reads every sample of the tar, as before
    shutil.rmtree(tmp_path / "GSE1_RAW.tar.extracted")
    assert assemble_geo(tmp_path, dataset="t", pattern=r"_RAW\.tar$").n_obs == 15


def test_member_names_a_server_chose_are_escaped_in_the_choice():
    hostile = ["GSM1_\x1b[2J\x1b[31ma.csv.gz", "GSM1_\x00b.csv.gz"]
    with pytest.raises(LayoutError) as err:
        choose([("GSE1_RAW.tar", "")], ["GSM1"], members=lambda a: [(n, 1) for n in hostile])
    text = f"{err.value.problem} {err.value.fix}"
    assert "sample GSM1 offers 2 count matrices" in text and "\\x1b[2J" in text
    assert not any(c in text for c in "\x1b\x00")


def test_samples_the_series_lacks_are_one_line_errors(server, tmp_path):
    from livaebench.data.geo import fetch_geo

    for samples, words in [("GSM99900101,GSM12345", "samples GSM12345 are not samples of this record (it has "
                                                    "GSM99900101, GSM99900102)"),
                           ("GSM5-GSM1", "samples: range 'GSM5-GSM1' must go up")]:
        with pytest.raises(InputError) as err:
            fetch_geo("GSE999001", tmp_path / "d", dataset="t", base_url=server.base_url, samples=samples,
                      progress=False)
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not (tmp_path / "d" / "manifest.tsv").exists()


def test_alevin_sets_and_incomplete_triplets():
    s = ["GSM1"]
    choice, e = choose([("GSM1_quants_mat.mtx.gz", "GSM1"), ("GSM1_quants_mat_rows.txt.gz", "GSM1"),
                        ("GSM1_quants_mat_cols.txt.gz", "GSM1"), ("GSM1_quants_mat.gz", "GSM1")], s)
    assert choice.layout == "per-sample alevin mtx set (1 sample)"
    assert e[("", "GSM1_quants_mat_cols.txt.gz")].kind == "alevin part (genes)"
    assert e[("", "GSM1_quants_mat.gz")].kind == "unsupported format (alevin binary EDS matrix)"
    # a triplet missing its barcodes is no matrix: the sample has none
    with pytest.raises(LayoutError, match="no count matrix recognised"):
        choose([("GSM1_matrix.mtx.gz", "GSM1"), ("GSM1_features.tsv.gz", "GSM1")], s)
