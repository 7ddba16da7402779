"""GEO layouts recognised from the listing (``pattern: auto``), through the workflow (snakemake CLI).

A local server (tests/geo_server.py) serves ten CONSTRUCTED series: accessions, SOFT text and counts are
made up (seeded), but each series has the file names and structure of a real GEO layout:

- per-sample 10x triplets (Cell Ranger 2 ``_genes.tsv.gz``) plus the series' ``_RAW.tar`` and its
  ``filelist.txt``, as GSE125065 (``GSM3562050_AJ17001_barcodes.tsv.gz`` ...); ``samples`` picks two of three;
- per-sample ``_filtered_feature_bc_matrix.h5`` and ``_raw_feature_bc_matrix.h5`` (GSM7500359_hbca_c50_...);
- a ``_RAW.tar`` of per-sample triplets whose samples list no files of their own, with GEO's filelist.txt,
  and the same without filelist.txt (members read from the tar's headers by ranged requests);
- a series-level dense ``_counts.txt.gz`` beside a metadata and a normalized table;
- a series ``_adata.h5ad.h5`` beside per-sample ``_counts.tar.gz`` (GSE132188's layout);
- a featureCounts table (``# Program:featureCounts`` line, Geneid..Length columns) and its summary;
- per-sample kallisto-bustools output (``cells_x_genes.mtx.gz``, ``.barcodes.txt.gz``, ``.genes.txt.gz``);
- an ``.rds``-only series (Seurat object + cell metadata), and one with two series count tables.

One snakemake run (``--keep-going``) writes every ``results/geo_files/{dataset}.tsv`` and
``results/data/{dataset}/counts.h5ad``: each listing shows the kind of every file and the choice, each
readable layout assembles to exactly the counts served, and the last two stop with one line that lists
what was found and the registry value to set.
"""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from geo_server import (add_layout_series, dense_text, gz, h5ad_bytes, kb_files, serve, tar_bytes, tenx_h5_bytes,
                        triplet_files)
from workflow_helpers import snakemake, write_config

GENES = [f"Gene{i}" for i in range(40)]
REGISTRY = ["dataset", "modality", "source", "accession", "label_key", "batch_key", "pattern", "samples"]


def counts(seed: int, n_cells: int = 30) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    x = rng.poisson(2, size=(n_cells, len(GENES)))
    x[:, 0] += 1  # no empty cell
    barcodes = ["".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(n_cells)]
    return x, barcodes


def gsms(acc: str, n: int) -> list[str]:
    return [f"GSM{acc[3:]}{i:02d}" for i in range(1, n + 1)]


def per_sample(acc: str, n: int, files) -> tuple[dict, dict]:
    """{gsm: {name: bytes}} from files(gsm, i, counts, barcodes), and the expected cells x genes per gsm."""
    out, expected = {}, {}
    for i, gsm in enumerate(gsms(acc, n), start=1):
        x, bc = counts(int(acc[3:]) + i)
        out[gsm] = files(gsm, i, x, bc)
        expected[gsm] = (x, bc)
    return out, expected


def build(root):
    """dataset -> (registry extras, expected: {batch: (counts, barcodes)} or the error's words, listing checks)."""
    cases = {}
    # 1. per-sample 10x triplets (Cell Ranger 2) + _RAW.tar + filelist.txt (GSE125065's layout)
    acc = "GSE991001"
    files, exp = per_sample(acc, 3, lambda g, i, x, bc: {f"{g}_AJ1700{i}_{k}": v for k, v in
                                                        triplet_files(x, bc, GENES, features_name="genes.tsv.gz").items()})
    members = {k: v for f in files.values() for k, v in f.items()}
    add_layout_series(root, acc, sample_files=files, series_files={f"{acc}_RAW.tar": tar_bytes(members)},
                      filelists={f"{acc}_RAW.tar": members})
    g = gsms(acc, 3)
    cases["tenx_samples"] = (dict(accession=acc, samples=f"{g[0]}-{g[1]}"), {s: exp[s] for s in g[:2]}, {
        f"{g[0]}_AJ17001_matrix.mtx.gz": ("10x part (matrix)", "yes"),
        f"{g[1]}_AJ17002_genes.tsv.gz": ("10x part (genes)", "yes"),
        f"{g[2]}_AJ17003_barcodes.tsv.gz": ("10x part (barcodes)", "no"),
        f"{acc}_RAW.tar": ("archive (members unknown)", "no")})
    # 2. per-sample filtered and raw Cell Ranger .h5 (GSM7500359_hbca_c50_filtered_feature_bc_matrix.h5)
    acc = "GSE991002"

    def h5s(g, i, x, bc):
        raw_x = np.vstack([x, np.zeros((5, len(GENES)), int)])  # raw: every barcode, empty droplets too
        raw_bc = bc + [f"TTTTTTTTTTTTTTT{k}-1" for k in range(5)]
        return {f"{g}_hbca_c5{i}_filtered_feature_bc_matrix.h5": tenx_h5_bytes(x, bc, GENES),
                f"{g}_hbca_c5{i}_raw_feature_bc_matrix.h5": tenx_h5_bytes(raw_x, raw_bc, GENES)}
    files, exp = per_sample(acc, 2, h5s)
    add_layout_series(root, acc, sample_files=files)
    g = gsms(acc, 2)
    cases["h5_samples"] = (dict(accession=acc), exp, {
        f"{g[0]}_hbca_c51_filtered_feature_bc_matrix.h5": ("10x HDF5", "yes"),
        f"{g[0]}_hbca_c51_raw_feature_bc_matrix.h5": ("10x HDF5", "no")})
    # 3./4. a _RAW.tar of per-sample triplets, the samples listing none of their own; with and without filelist.txt
    for dataset, acc, filelist, pick in [("raw_tar", "GSE991003", True, 2), ("raw_tar_index", "GSE991004", False, 0)]:
        files, exp = per_sample(acc, 2, lambda g, i, x, bc: {f"{g}_S{i}_{k}": v for k, v in
                                                            triplet_files(x, bc, GENES).items()})
        members = {k: v for f in files.values() for k, v in f.items()}
        add_layout_series(root, acc, series_files={f"{acc}_RAW.tar": tar_bytes(members)}, unlisted_samples=list(files),
                          filelists={f"{acc}_RAW.tar": members} if filelist else None)
        g = gsms(acc, 2)
        wanted = [g[pick - 1]] if pick else g
        cases[dataset] = (dict(accession=acc, samples=",".join(wanted) if pick else ""), {s: exp[s] for s in wanted}, {
            f"{acc}_RAW.tar": ("archive (6 members)", "yes"),
            f"{g[1]}_S2_matrix.mtx.gz": ("10x part (matrix)", "yes"),
            f"{g[0]}_S1_features.tsv.gz": ("10x part (features)", "no" if pick else "yes")})
    # 5. a series-level dense count table beside metadata and normalized values
    acc = "GSE991005"
    x, bc = counts(5, 50)
    add_layout_series(root, acc, unlisted_samples=gsms(acc, 2), series_files={
        f"{acc}_counts.txt.gz": gz(dense_text(x, bc, GENES)),
        f"{acc}_metadata.txt.gz": gz(("cell\tcluster\n" + "".join(f"{b}\t1\n" for b in bc)).encode()),
        f"{acc}_normalized_counts.txt.gz": gz(dense_text(x / x.sum(1, keepdims=True), bc, GENES))})
    cases["dense_series"] = (dict(accession=acc), {"": (x, bc)}, {
        f"{acc}_counts.txt.gz": ("dense table", "yes"), f"{acc}_metadata.txt.gz": ("metadata table", "no"),
        f"{acc}_normalized_counts.txt.gz": ("normalized table (not raw counts)", "no")})
    # 6. GSE132188's layout: the series' _adata.h5ad.h5 and per-sample _counts.tar.gz
    acc = "GSE991006"
    x, bc = counts(6, 40)
    files = {g: {f"{g}_E15_5_counts.tar.gz": gz(tar_bytes(triplet_files(*counts(60 + i), GENES)))}
             for i, g in enumerate(gsms(acc, 2))}
    add_layout_series(root, acc, sample_files=files, series_files={f"{acc}_adata.h5ad.h5": h5ad_bytes(x, bc, GENES)})
    cases["h5ad_series"] = (dict(accession=acc), {"": (x, bc)}, {
        f"{acc}_adata.h5ad.h5": ("h5ad", "yes"), f"{gsms(acc, 2)[0]}_E15_5_counts.tar.gz": ("archive (members unknown)", "no")})
    # 7. a featureCounts table (SMART-seq: one column per BAM) and its summary
    acc = "GSE991007"
    x, _ = counts(7, 6)
    bams = [f"/data/star/SRR51644{36 + i}.Aligned.sortedByCoord.out.bam" for i in range(6)]
    text = ['# Program:featureCounts v2.0.3; Command:"featureCounts" "-a" "genes.gtf" "-o" "counts.txt"',
            "\t".join(["Geneid", "Chr", "Start", "End", "Strand", "Length", *bams])]
    text += ["\t".join([gene, "chr1", str(1000 * k + 1), str(1000 * k + 900), "+", "900", *map(str, x[:, k])])
             for k, gene in enumerate(GENES)]
    add_layout_series(root, acc, unlisted_samples=gsms(acc, 1), series_files={
        f"{acc}_featureCounts.txt.gz": gz(("\n".join(text) + "\n").encode()),
        f"{acc}_featureCounts.txt.summary.gz": gz(b"Status\tA\nAssigned\t1\n")})
    cases["featurecounts"] = (dict(accession=acc), {"": (x, bams)}, {
        f"{acc}_featureCounts.txt.gz": ("dense table", "yes"),
        f"{acc}_featureCounts.txt.summary.gz": ("other (not a count matrix)", "no")})
    # 8. per-sample kallisto-bustools output
    acc = "GSE991008"
    files, exp = per_sample(acc, 2, lambda g, i, x, bc: {f"{g}_{k}": v for k, v in kb_files(x, bc, GENES).items()})
    add_layout_series(root, acc, sample_files=files)
    g = gsms(acc, 2)
    cases["kb_samples"] = (dict(accession=acc), exp, {
        f"{g[0]}_cells_x_genes.mtx.gz": ("kallisto-bustools part (matrix)", "yes"),
        f"{g[1]}_cells_x_genes.barcodes.txt.gz": ("kallisto-bustools part (barcodes)", "yes")})
    # 9. only an R object: unsupported
    acc = "GSE991009"
    add_layout_series(root, acc, unlisted_samples=gsms(acc, 2), series_files={
        f"{acc}_seurat_object.rds.gz": gz(b"X\n"), f"{acc}_cell_metadata.csv.gz": gz(b"cell,type\n")})
    cases["rds_only"] = (dict(accession=acc), ["cannot read", f"{acc}_seurat_object.rds.gz", "R object .rds",
                                               "convert the counts to .h5ad"],
                         {f"{acc}_seurat_object.rds.gz": ("unsupported format (R object .rds)", "no")})
    # 10. two series-level count tables: ambiguous
    acc = "GSE991010"
    add_layout_series(root, acc, unlisted_samples=gsms(acc, 2), series_files={
        f"{acc}_WT_counts.csv.gz": gz(dense_text(*counts(10), GENES, sep=",")),
        f"{acc}_KO_counts.csv.gz": gz(dense_text(*counts(11), GENES, sep=","))})
    cases["ambiguous"] = (dict(accession=acc), ["2 count matrices", f"{acc}_WT_counts.csv.gz",
                                                f"{acc}_KO_counts.csv.gz", "set the registry pattern",
                                                f"'^{acc}_KO_counts\\.csv\\.gz$'"],
                          {f"{acc}_KO_counts.csv.gz": ("dense table", "no")})
    return cases


@pytest.mark.workflow
def test_geo_layouts_recognised_listed_and_assembled(tmp_path):
    root = tmp_path / "geo_root"
    cases = build(root)
    lines = ["\t".join(REGISTRY)]
    for dataset, (extra, _, _) in cases.items():
        row = dict(dataset=dataset, modality="rna", source="geo", label_key="", **extra)
        lines.append("\t".join(row.get(c, "") for c in REGISTRY))
    (tmp_path / "datasets.tsv").write_text("\n".join(lines) + "\n")
    with serve(root) as site:
        config = write_config(tmp_path, datasets=str(tmp_path / "datasets.tsv"), methods=["pca"],
                              paper_comparisons=[], geo={"base_url": site.base_url, "retries": 0, "timeout": 10})
        result = snakemake(tmp_path, config, "--cores", "1", "--keep-going",
                           *(f"results/geo_files/{d}.tsv" for d in cases),
                           *(f"results/data/{d}/counts.h5ad" for d in cases), timeout=300)
        index_requests = [t for t in site.transfers if t["path"].endswith("GSE991004_RAW.tar")]
    assert result.returncode != 0  # the last two layouts stop, the others finish

    for dataset, (extra, expected, listing) in cases.items():
        table = pd.read_csv(tmp_path / f"results/geo_files/{dataset}.tsv", sep="\t", dtype=str, keep_default_na=False)
        rows = {r.file: (r.kind, r.selected) for r in table.itertuples()}
        for name, want in listing.items():
            assert rows.get(name) == want, (dataset, name, rows.get(name))
        log = (tmp_path / f"logs/list_geo_files/{dataset}.log").read_text()
        if isinstance(expected, list):  # a layout that cannot be read: one line, in the listing's log and at fetch
            assert "fetch_geo would stop" in log
            last = (tmp_path / f"logs/fetch_geo/{dataset}.log").read_text().strip().splitlines()[-1]
            for word in ["ERROR", f"'{dataset}'", "(pattern auto)", "Fix:", *expected]:
                assert word in last, (dataset, word, last)
            assert not (tmp_path / f"results/data/{dataset}/counts.h5ad").exists()
            continue
        assert "selected by the layout choice (pattern auto)" in log, log
        got = ad.read_h5ad(tmp_path / f"results/data/{dataset}/counts.h5ad")
        # the expected matrix: the served counts of the chosen samples, in sample order, GSM-prefixed cells
        names = [f"{s}_{b}" if s else b for s, (x, bc) in expected.items() for b in bc]
        want = np.vstack([x for x, _ in expected.values()])
        assert list(got.obs_names) == names, dataset
        order = [list(got.var_names).index(g) for g in GENES]
        np.testing.assert_array_equal(got.X.toarray()[:, order], want, err_msg=dataset)
        if len(expected) > 1:
            assert list(got.obs["sample"].cat.categories) == sorted(expected), dataset
            assert got.uns["livaebench"]["batch_key"] == ("sample" if extra.get("samples") else ""), dataset

    # what was downloaded: only the chosen files (the per-sample files, not the _RAW.tar beside them)
    downloads = tmp_path / "results/downloads"
    assert not (downloads / "tenx_samples/GSE991001_RAW.tar").exists()
    assert sorted(p.name for p in (downloads / "h5_samples").glob("*.h5")) == [
        f"{g}_hbca_c5{i}_filtered_feature_bc_matrix.h5" for i, g in enumerate(gsms("GSE991002", 2), start=1)]
    # the tar without filelist.txt: its member names came from its headers (512-byte ranges: six members and
    # the end block, once for the listing and once for fetch_geo); its whole body was sent once, to fetch_geo
    ranges = [t["range"] for t in index_requests]
    headers = [r for r in ranges if r and r != "bytes=0-0"]
    assert len(headers) == 14 and all(int(b) - int(a) == 511 for a, b in (r[6:].split("-") for r in headers))
    assert ranges.count(None) == 1
