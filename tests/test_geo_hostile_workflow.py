"""Hostile and broken GEO servers through the workflow (snakemake CLI, rules fetch_geo and list_geo_files).

One snakemake run (``--keep-going``) fetches eight CONSTRUCTED series (tests/geo_server.py: made-up
accessions and SOFT text, seeded counts) from a local server, one per class of fault:

- another origin of the allowed host: a listed URL on another port, a redirect to another port;
- a length that must be learnt: a bgzip file and a tar whose transfers (no Content-Length) stop exactly
  where the container still reads as whole, and a server that tells no length at all;
- names and bytes chosen by the server: an overlong file name, a name with terminal escape sequences
  and NUL, a status line with escape sequences.

Each refused dataset ends its log with one line naming it and the fix; the cut containers are resumed
and arrive whole; no log line and nothing on the console carries a control byte the server sent.
"""
from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from geo_server import add_series, counts_csv, serve, tar_bytes
from workflow_helpers import snakemake, write_config, write_registry

SUPPL = "ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE990nnn/{acc}/suppl/{name}"
HOSTILE = ("\x1b[", "\x1b]", "\x00", "\x07")  # escape sequences (CSI, OSC), NUL, bell


def table(seed: int) -> bytes:
    return counts_csv(seed, rows=3000, cols=8)


@pytest.mark.workflow
def test_hostile_servers_through_the_workflow(tmp_path):
    root = tmp_path / "geo_root"
    first = gzip.compress(table(0))
    bgzip = first + gzip.compress(table(1))
    tar = tar_bytes({"a.csv": table(2), "b.csv": table(3)})
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        tar_cut = t.getmembers()[1].offset  # the second member's header: the first reads as a whole archive
    with serve(root) as site, serve(root) as other:
        other_url = other.base_url + "/series/GSE990nnn/{acc}/suppl/redirected.csv"
        cases = {  # dataset -> (accession, files served, URLs listed verbatim, fault)
            "port_listed": ("GSE990021", {}, [other_url.format(acc="GSE990021")], None),
            "port_redirect": ("GSE990022", {"redirected.csv": table(4)}, [],
                              f"redirect={other_url.format(acc='GSE990022')}"),
            "bgzip_cut": ("GSE990023", {"bgzip.csv.gz": bgzip}, [], f"cut_at={len(first)}"),
            "tar_cut": ("GSE990024", {"counts.tar": tar}, [], f"cut_at={tar_cut}"),
            "unknown_length": ("GSE990025", {"no_length.csv.gz": first}, [], "no_length_no_range"),
            "long_name": ("GSE990026", {}, [SUPPL.format(acc="GSE990026", name="GSM1_" + "x" * 300 + ".csv")], None),
            "control_name": ("GSE990027", {}, [SUPPL.format(acc="GSE990027", name="GSM1_\x1b[2J\x1b[31mred\x00.csv")],
                             None),
            "hostile_status": ("GSE990028", {"status.csv": table(5)}, [], "hostile_status"),
        }
        rows = []
        for dataset, (acc, files, urls, fault) in cases.items():
            add_series(root, acc, files, urls=urls)
            if fault:
                site.faults[next(iter(files))] = fault
            rows.append(dict(dataset=dataset, modality="rna", source="geo", accession=acc, label_key=""))
        registry = write_registry(tmp_path / "datasets.tsv", rows)
        config = write_config(tmp_path, datasets=str(registry), methods=["pca"], paper_comparisons=[],
                              geo={"base_url": site.base_url, "retries": 1, "timeout": 10})
        result = snakemake(tmp_path, config, "--cores", "1", "--keep-going", "results/geo_files/control_name.tsv",
                           *(f"results/downloads/{d}" for d in cases))
        transfers = [(t["path"].rsplit("/", 1)[1], t["range"], t["status"]) for t in site.transfers]
        assert not other.transfers  # the other port was never contacted
    assert result.returncode != 0

    logs = {d: (tmp_path / f"logs/fetch_geo/{d}.log").read_text() for d in cases}
    for text in [*logs.values(), (tmp_path / "logs/list_geo_files/control_name.log").read_text(),
                 result.stdout, result.stderr]:
        assert not any(seq in text for seq in HOSTILE), [seq for seq in HOSTILE if seq in text]

    def last_line(dataset: str, *words: str) -> None:
        line = logs[dataset].strip().splitlines()[-1]
        for word in ["ERROR", f"'{dataset}'", "Fix:", *words]:
            assert word in line, (word, line)
        assert not (tmp_path / "results/downloads" / dataset).exists()

    port = other.base_url.rsplit(":", 1)[1]
    last_line("port_listed", other_url.format(acc="GSE990021"), "another port", f"add '127.0.0.1:{port}'",
              "geo.allowed_hosts (it takes host or host:port)")
    last_line("port_redirect", "redirect", other_url.format(acc="GSE990022"), "another port",
              f"add '127.0.0.1:{port}'")
    last_line("unknown_length", "no_length.csv.gz", "without a length", "geo.base_url")
    last_line("long_name", "longer than the file system allows", "narrow the pattern")
    last_line("control_name", "control characters in its file name", "\\x1b[2J", "narrow the pattern")
    last_line("hostile_status", "status.csv", "BadStatusLine", "\\x1b[2J", "rerun")

    # The cut containers: the server was asked for the length, the rest was fetched by Range, the file is whole.
    for dataset, name, whole, cut in [("bgzip_cut", "bgzip.csv.gz", bgzip, len(first)),
                                      ("tar_cut", "counts.tar", tar, tar_cut)]:
        assert (tmp_path / "results/downloads" / dataset / name).read_bytes() == whole
        assert [t[1:] for t in transfers if t[0] == name] == [(None, 200), ("bytes=0-0", 206), (f"bytes={cut}-", 206)]
    listing = (tmp_path / "results/geo_files/control_name.tsv").read_text()
    assert "GSM1_\\x1b[2J\\x1b[31mred\\x00.csv" in listing and "control characters" in listing
