"""Count tables as the common quantifiers write them, read by livaebench.data.io.read_counts.

Each test writes a small file in its tool's real layout (header names, comment and summary lines, file
names, matrix orientation, taken from the tools' documentation and output writers) and compares the
matrix read (cells x genes, every value) with the hand-written input. The tools' annotation columns and
summary rows are recognised by their names, never by "numeric means a cell", and each drop is logged.
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from livaebench.data.io import find_mtx_sets, read_counts, validate_counts
from livaebench.errors import InputError

GENES = ["ENSMUSG00000051951", "ENSMUSG00000089699", "ENSMUSG00000102343", "ENSMUSG00000025900",
         "ENSMUSG00000025902"]
SYMBOLS = ["Xkr4", "Gm1992", "Gm37381", "Rp1", "Sox17"]
BARCODES = ["AAACCTGAGAAGGCCT-1", "AAACCTGAGACAGACC-1", "AAACCTGAGATAGTCA-1"]
# The hand-written counts, cells x genes (3 x 5); every file below encodes this matrix.
COUNTS = np.array([[0, 3, 0, 1, 7],
                   [2, 0, 0, 0, 1],
                   [0, 11, 4, 0, 0]])


def dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def check(adata, cells, genes, counts=COUNTS):
    """The exact matrix: names of both axes and every value; then it passes the workflow's validation."""
    assert list(adata.obs_names) == list(cells)
    assert list(adata.var_names) == list(genes)
    np.testing.assert_array_equal(dense(adata.X), counts)
    validate_counts(adata, dataset="t", source="test")


def info_lines(caplog, fragment: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if fragment in r.getMessage()]


def tsv(rows) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


# ------------------------------------------------------------------------------------ featureCounts
BAMS = [f"/data/star/SRR51644{36 + i}.Aligned.sortedByCoord.out.bam" for i in range(3)]
PROGRAM = ('# Program:featureCounts v2.0.3; Command:"featureCounts" "-T" "4" "-a" "gencode.vM25.annotation.gtf" '
           '"-o" "counts.txt" ' + " ".join(f'"{b}"' for b in BAMS))
# Single-exon genes: Start, End and Length are all plain numbers (what used to become three extra cells).
SINGLE_EXON = [("chr1", 3205901, 3216968, "-", 11068), ("chr1", 3466587, 3513553, "+", 46967),
               ("chr1", 3531795, 3533105, "+", 1311), ("chr1", 4344146, 4360314, "-", 16169),
               ("chr1", 4490931, 4497354, "-", 6424)]
# GENCODE meta-features: several exons, each field a ';' list (text among numbers in the same column).
MULTI_EXON = [("chr1;chr1;chr1", "3205901;3206523;3213439", "3207317;3215632;3216968", "-;-;-", 6094)] + SINGLE_EXON[1:]


def featurecounts_text(annotation, *, program=True, extra=None) -> str:
    head = ["Geneid", "Chr", "Start", "End", "Strand", "Length"] + (["gene_name"] if extra else []) + BAMS
    rows = [[g, *a, *([extra[k]] if extra else []), *COUNTS[:, k]] for k, (g, a) in enumerate(zip(GENES, annotation))]
    return (PROGRAM + "\n" if program else "") + tsv([head, *rows])


@pytest.mark.parametrize("annotation, program, extra", [
    (SINGLE_EXON, True, None), (MULTI_EXON, True, None), (SINGLE_EXON, False, None), (MULTI_EXON, True, SYMBOLS)],
    ids=["single-exon", "meta-features", "no-program-line", "extra-attributes"])
def test_featurecounts_annotation_columns_are_dropped_not_cells(tmp_path, caplog, annotation, program, extra):
    path = tmp_path / "counts.txt"
    path.write_text(featurecounts_text(annotation, program=program, extra=extra))
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(path, dataset="fc")
    check(got, BAMS, GENES)  # 3 cells: Start/End/Length are not read as cells
    assert list(got.var.columns) == (["gene_name"] if extra else [])
    if extra:
        assert list(got.var["gene_name"]) == SYMBOLS
    (line,) = info_lines(caplog, "dropped its gene annotation columns")
    assert "'Chr', 'Start', 'End', 'Strand', 'Length' (not counts)" in line
    assert ("program line skipped" in line) == program
    assert info_lines(caplog, "read as genes_by_cells (featureCounts writes genes in rows)")


def test_featurecounts_with_only_length_kept(tmp_path, caplog):
    """A featureCounts table trimmed to Geneid, Length and the counts (``cut -f1,6-``), as often on GEO."""
    path = tmp_path / "GSE999_counts.tsv"
    path.write_text(tsv([["Geneid", "Length", *BAMS]]
                        + [[g, a[-1], *COUNTS[:, k]] for k, (g, a) in enumerate(zip(GENES, SINGLE_EXON))]))
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        check(read_counts(path, dataset="fc"), BAMS, GENES)
    (line,) = info_lines(caplog, "dropped its gene annotation columns")
    assert line.endswith("columns 'Length' (not counts)")


def test_featurecounts_gzipped_and_its_summary_and_a_wrong_orientation(tmp_path):
    path = tmp_path / "GSE999_featureCounts.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(featurecounts_text(SINGLE_EXON))
    check(read_counts(path, dataset="fc"), BAMS, GENES)
    with pytest.raises(InputError) as err:
        read_counts(path, dataset="fc", orientation="cells_by_genes")
    assert "is a featureCounts table, which has genes in rows" in str(err.value)
    # featureCounts' .summary beside the counts: the read-assignment statistics, not a matrix
    summary = tmp_path / "counts_summary.txt"
    summary.write_text(tsv([["Status", *BAMS], ["Assigned", 120, 98, 143], ["Unassigned_Unmapped", 3, 5, 1],
                            ["Unassigned_NoFeatures", 40, 22, 31], ["Unassigned_Ambiguity", 4, 0, 2]]))
    with pytest.raises(InputError) as err:
        read_counts(summary, dataset="fc")
    assert "featureCounts' read-assignment summary" in str(err.value)
    assert "Fix: point the registry path" in str(err.value)


# -------------------------------------------------------------------------------------- htseq-count
HTSEQ_SUMMARY = [("__no_feature", [10234, 8870, 9120]), ("__ambiguous", [512, 430, 601]),
                 ("__too_low_aQual", [87, 90, 65]), ("__not_aligned", [2301, 1988, 2460]),
                 ("__alignment_not_unique", [15002, 14120, 16333])]


def test_htseq_count_one_file_per_cell_drops_its_summary_rows(tmp_path, caplog):
    """htseq-count's classic output: no header, gene id and count, five summary rows at the end."""
    path = tmp_path / "SRR5164437.htseq.counts.txt"
    cell = 1  # the second cell of COUNTS
    path.write_text(tsv([(g, COUNTS[cell, k]) for k, g in enumerate(GENES)]
                        + [(name, values[cell]) for name, values in HTSEQ_SUMMARY]))
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(path, dataset="hts")
    check(got, ["column_1"], GENES, COUNTS[[cell]])
    (line,) = info_lines(caplog, "dropped htseq-count's summary rows")
    assert ("__no_feature (8870 in all), __ambiguous (430 in all), __too_low_aQual (90 in all), "
            "__not_aligned (1988 in all), __alignment_not_unique (14120 in all)") in line
    assert info_lines(caplog, "read as genes_by_cells (htseq-count writes genes in rows)")


def test_htseq_count_one_column_whose_first_count_is_0_or_1_is_data_not_a_header(tmp_path):
    """A lone 0 or 1 on line 1 is no '0..k-1 / 1..k' column numbering: the first gene must not be lost."""
    for cell, first in ((0, 0), (2, 1)):
        counts = COUNTS[[cell]].copy()
        counts[0, 0] = first
        path = tmp_path / f"cell{cell}.txt"
        path.write_text(tsv([(g, counts[0, k]) for k, g in enumerate(GENES)]
                            + [(name, values[cell]) for name, values in HTSEQ_SUMMARY]))
        check(read_counts(path, dataset="hts"), ["column_1"], GENES, counts)


def test_htseq_count_several_files_with_header_and_additional_attribute(tmp_path, caplog):
    """htseq-count 2: several BAMs, --with-header (empty first field) and --additional-attr gene_name,
    whose column is unnamed in the header and empty on the summary rows."""
    path = tmp_path / "htseq_counts.tsv"
    rows = [["", "", *BAMS]]
    rows += [[g, s, *COUNTS[:, k]] for k, (g, s) in enumerate(zip(GENES, SYMBOLS))]
    rows += [[name, "", *values] for name, values in HTSEQ_SUMMARY]
    path.write_text(tsv(rows))
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(path, dataset="hts")
    check(got, BAMS, GENES)
    assert list(got.var["annotation_1"]) == SYMBOLS
    (line,) = info_lines(caplog, "dropped htseq-count's summary rows")
    assert "__no_feature (28224 in all)" in line and "__alignment_not_unique (45455 in all)" in line
    with pytest.raises(InputError) as err:
        read_counts(path, dataset="hts", orientation="cells_by_genes")
    assert "is a htseq-count table, which has genes in rows" in str(err.value)


# ---------------------------------------------------------------------------------------- STARsolo
def write_starsolo(folder: Path, counts=COUNTS, barcodes=BARCODES) -> None:
    """STARsolo's Solo.out/Gene/{raw,filtered}: 10x names, genes x cells, an integer Matrix Market file."""
    folder.mkdir(parents=True)
    (folder / "barcodes.tsv").write_text("".join(b + "\n" for b in barcodes))
    (folder / "features.tsv").write_text(tsv([(g, s, "Gene Expression") for g, s in zip(GENES, SYMBOLS)]))
    coo = sp.coo_matrix(counts.T)
    entries = sorted(zip(coo.col, coo.row, coo.data))  # STARsolo writes cell by cell
    (folder / "matrix.mtx").write_text(
        "%%MatrixMarket matrix coordinate integer general\n%\n"
        f"{counts.shape[1]} {counts.shape[0]} {coo.nnz}\n" + "".join(f"{g + 1} {c + 1} {v}\n" for c, g, v in entries))


def test_starsolo_gene_filtered_and_the_folders_around_it(tmp_path, caplog):
    solo = tmp_path / "Solo.out"
    write_starsolo(solo / "Gene" / "filtered")
    raw_barcodes = BARCODES + ["AAACCTGAGCAATATG-1"]
    write_starsolo(solo / "Gene" / "raw", np.vstack([COUNTS, [[0, 0, 1, 0, 0]]]), raw_barcodes)
    (solo / "Gene" / "raw" / "UniqueAndMult-EM.mtx").write_text("%%MatrixMarket matrix coordinate real general\n"
                                                                "5 4 1\n1 1 0.5\n")
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(solo / "Gene" / "filtered", dataset="solo")
    check(got, BARCODES, SYMBOLS)
    assert list(got.var["gene_ids"]) == GENES
    assert info_lines(caplog, "read as STARsolo output (genes x cells)")
    # the .mtx path itself reads its set; the multi-mapper estimates beside raw's matrix are named as not read
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        raw = read_counts(solo / "Gene" / "raw" / "matrix.mtx", dataset="solo")
    assert raw.shape == (4, 5) and info_lines(caplog, "not read: UniqueAndMult-EM.mtx")
    for folder, listed in [(solo / "Gene", "filtered, raw"), (solo, "Gene/filtered, Gene/raw")]:
        with pytest.raises(InputError) as err:
            read_counts(folder, dataset="solo")
        assert f"its subfolders {listed} do" in str(err.value)
        assert f"e.g. {solo / 'Gene' / 'filtered'}: the called cells" in str(err.value)
    velocyto = solo / "Velocyto" / "filtered"
    write_starsolo(velocyto)
    for part in ("spliced", "unspliced", "ambiguous"):
        (velocyto / f"{part}.mtx").write_text((velocyto / "matrix.mtx").read_text())
    (velocyto / "matrix.mtx").unlink()
    with pytest.raises(InputError) as err:
        read_counts(velocyto, dataset="solo")
    assert "STARsolo's velocyto matrices" in str(err.value) and "Solo.out/Gene/filtered" in str(err.value)


# ------------------------------------------------------------------------------- kallisto-bustools
def write_bustools(folder: Path, prefix="cells_x_genes", variants=("",), names=True, gz=False) -> None:
    """kb count's counts_unfiltered/: PREFIX[.variant].mtx is cells x genes, with PREFIX's label files."""
    folder.mkdir(parents=True, exist_ok=True)
    op = (lambda p: gzip.open(p, "wt")) if gz else (lambda p: open(p, "wt"))
    z = ".gz" if gz else ""
    coo = sp.coo_matrix(COUNTS)
    body = ("%%MatrixMarket matrix coordinate real general\n%\n"
            f"{COUNTS.shape[0]} {COUNTS.shape[1]} {coo.nnz}\n"
            + "".join(f"{r + 1} {c + 1} {v}\n" for r, c, v in zip(coo.row, coo.col, coo.data)))
    for variant in variants:
        with op(folder / f"{prefix}{variant}.mtx{z}") as fh:
            fh.write(body)
    with op(folder / f"{prefix}.barcodes.txt{z}") as fh:
        fh.write("".join(b.split("-")[0] + "\n" for b in BARCODES))  # kb writes bare barcodes
    with op(folder / f"{prefix}.genes.txt{z}") as fh:
        fh.write("".join(g + "\n" for g in GENES))
    if names:
        with op(folder / f"{prefix}.genes.names.txt{z}") as fh:
            fh.write("".join(s + "\n" for s in SYMBOLS))


def test_kallisto_bustools_cells_x_genes(tmp_path, caplog):
    folder = tmp_path / "counts_unfiltered"
    write_bustools(folder)
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(folder, dataset="kb")
    check(got, [b.split("-")[0] for b in BARCODES], SYMBOLS)  # cells in rows, as kb writes them
    assert list(got.var["gene_ids"]) == GENES
    assert info_lines(caplog, "cells_x_genes.mtx read as kallisto-bustools output (cells x genes)")
    with pytest.raises(InputError) as err:
        read_counts(folder, dataset="kb", orientation="genes_by_cells")
    assert "does not apply to a 10x directory or other .mtx matrix set" in str(err.value)
    # GEO copies: a GSM prefix on every name, gzipped, no names file (ids become the gene names)
    geo = tmp_path / "geo"
    write_bustools(geo, prefix="GSM4567890_cells_x_genes", names=False, gz=True)
    check(read_counts(geo, dataset="kb"), [b.split("-")[0] for b in BARCODES], GENES)
    # a copy someone wrote genes x cells: the label files' lengths (3 barcodes, 5 genes) decide, logged
    (folder / "cells_x_genes.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n5 3 15\n" + "".join(
        f"{g + 1} {c + 1} {COUNTS[c, g]}\n" for g in range(5) for c in range(3)))
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        check(read_counts(folder, dataset="kb"), [b.split("-")[0] for b in BARCODES], SYMBOLS)
    assert info_lines(caplog, "stores genes x cells (not the kallisto-bustools layout); read transposed")
    (folder / "cells_x_genes.genes.names.txt").write_text("Xkr4\n")
    with pytest.raises(InputError) as err:
        read_counts(folder, dataset="kb")
    assert "lists 1 names for 5 genes" in str(err.value)


def test_kallisto_bustools_nac_matrices_share_their_label_files(tmp_path):
    folder = tmp_path / "counts_unfiltered"
    write_bustools(folder, variants=(".mature", ".nascent", ".ambiguous", ".total"))
    sets = find_mtx_sets(sorted(folder.iterdir()))
    assert sorted(s.matrix.name for s in sets) == [f"cells_x_genes.{v}.mtx" for v in
                                                   ("ambiguous", "mature", "nascent", "total")]
    assert {s.cells.name for s in sets} == {"cells_x_genes.barcodes.txt"}
    with pytest.raises(InputError) as err:
        read_counts(folder, dataset="kb")
    assert "holds 4 count matrices" in str(err.value)
    assert "Fix: point the registry path at the one .mtx" in str(err.value)
    check(read_counts(folder / "cells_x_genes.total.mtx", dataset="kb"), [b.split("-")[0] for b in BARCODES], SYMBOLS)
    # kb's parent folder: the filtered and unfiltered count folders are named in the error
    write_bustools(tmp_path / "counts_filtered")
    with pytest.raises(InputError) as err:
        read_counts(tmp_path, dataset="kb")
    assert "its subfolders counts_filtered, counts_unfiltered do" in str(err.value)


# ------------------------------------------------------------------------------- alevin, alevin-fry
def write_alevin(folder: Path, *, salmon=True, genes=GENES, counts=COUNTS) -> None:
    """salmon alevin --dumpMtx: tab-separated quants_mat.mtx.gz with '%f' values (alevin-fry: plain
    quants_mat.mtx with spaces); cells x genes; rows/cols label files."""
    folder.mkdir(parents=True)
    coo = sp.coo_matrix(counts)
    sep = "\t" if salmon else " "
    header = sep.join(["%%MatrixMarket", "matrix", "coordinate", "real", "general"])
    body = (f"{header}\n{counts.shape[0]}{sep}{counts.shape[1]}{sep}{coo.nnz}\n"
            + "".join(f"{r + 1}{sep}{c + 1}{sep}{v:.6f}\n" for r, c, v in zip(coo.row, coo.col, coo.data)))
    if salmon:
        with gzip.open(folder / "quants_mat.mtx.gz", "wt") as fh:
            fh.write(body)
    else:
        (folder / "quants_mat.mtx").write_text(body)
    (folder / "quants_mat_rows.txt").write_text("".join(b.split("-")[0] + "\n" for b in BARCODES))
    (folder / "quants_mat_cols.txt").write_text("".join(g + "\n" for g in genes))


@pytest.mark.parametrize("salmon", [True, False], ids=["salmon-alevin-dumpMtx", "alevin-fry"])
def test_alevin_mtx_cells_x_genes(tmp_path, caplog, salmon):
    folder = tmp_path / "alevin"
    write_alevin(folder, salmon=salmon)
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(folder, dataset="alevin")
    check(got, [b.split("-")[0] for b in BARCODES], GENES)
    assert info_lines(caplog, "read as alevin output (cells x genes)")


def test_alevin_binary_eds_and_alevin_fry_usa_mode_are_refused_with_the_fix(tmp_path):
    folder = tmp_path / "alevin"
    folder.mkdir()
    with gzip.open(folder / "quants_mat.gz", "wb") as fh:  # EDS: per-cell bit flags then float32 values
        fh.write(bytes([0b10010000]) + np.array([2.0, 1.0], dtype=np.float32).tobytes())
    (folder / "quants_mat_rows.txt").write_text("AAACCTGAGAAGGCCT\n")
    (folder / "quants_mat_cols.txt").write_text("".join(g + "\n" for g in GENES))
    for path in (folder, folder / "quants_mat.gz"):
        with pytest.raises(InputError) as err:
            read_counts(path, dataset="alevin")
        message = str(err.value)
        assert "alevin's binary (EDS) count matrix" in message and "--dumpMtx" in message
        assert message.count("\n") == 0
    with pytest.raises(InputError) as err:  # the salmon output folder above alevin/ names it
        read_counts(tmp_path, dataset="alevin")
    assert "its subfolders alevin do" in str(err.value)
    usa = [*GENES, *(g + "-U" for g in GENES), *(g + "-A" for g in GENES)]
    write_alevin(tmp_path / "fry" / "alevin", salmon=False, genes=usa, counts=np.hstack([COUNTS, COUNTS, COUNTS]))
    with pytest.raises(InputError) as err:
        read_counts(tmp_path / "fry" / "alevin", dataset="fry")
    assert "alevin-fry USA-mode output (5 genes" in str(err.value) and "load_fry" in str(err.value)


# ------------------------------------------------------------------------------------------------ R
def test_r_write_csv_with_an_empty_first_header_cell(tmp_path, caplog):
    """write.csv(as.matrix(counts)): quoted names, the row-names column headed by ""."""
    path = tmp_path / "counts.csv"
    lines = ['"",' + ",".join(f'"{b}"' for b in BARCODES)]
    lines += [f'"{s}",' + ",".join(map(str, COUNTS[:, k])) for k, s in enumerate(SYMBOLS)]
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(path, dataset="r")
    check(got, BARCODES, SYMBOLS)
    assert info_lines(caplog, "read as genes_by_cells (column labels look like cell barcodes)")
    # the transposed export, write.csv(t(counts)): cells in rows
    lines = ['"",' + ",".join(f'"{s}"' for s in SYMBOLS)]
    lines += [f'"{b}",' + ",".join(map(str, COUNTS[i])) for i, b in enumerate(BARCODES)]
    path.write_text("\n".join(lines) + "\n")
    check(read_counts(path, dataset="r"), BARCODES, SYMBOLS)


def test_r_write_table_default_header_one_field_short(tmp_path):
    """write.table(counts): space-separated, quoted, and no header field above the row names."""
    path = tmp_path / "counts.txt"
    lines = [" ".join(f'"{b}"' for b in BARCODES)]
    lines += [f'"{s}" ' + " ".join(map(str, COUNTS[:, k])) for k, s in enumerate(SYMBOLS)]
    path.write_text("\n".join(lines) + "\n")
    check(read_counts(path, dataset="r"), BARCODES, SYMBOLS)
