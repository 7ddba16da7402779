"""GEO downloads accept a file only when its completeness is proven, and resume only what provably
belongs to the same remote file. Every case runs against the real HTTP server of tests/geo_server.py.

The series here are CONSTRUCTED (``add_series``: a made-up accession and SOFT text) around real bytes:
a gzip of a table of seeded random counts, a tar of such files, an HDF5 file.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile

import h5py
import numpy as np
import pytest

from geo_server import add_series, counts_csv, tar_bytes
from livaebench.data.archives import container_state
from livaebench.data.geo import fetch_geo
from livaebench.errors import InputError

ACC = "GSE990001"


def counts_table(seed: int = 0, rows: int = 4000) -> bytes:
    return counts_csv(seed, rows=rows, cols=12)


def cut_containers() -> dict[str, tuple[bytes, int]]:
    """(whole file, a cut offset at which the container's own framing still reads as whole-ish)."""
    first = gzip.compress(counts_table(0))
    bgzip = first + gzip.compress(counts_table(1))  # two members, as bgzip writes its blocks
    tar = tar_bytes({"a.csv": counts_table(0), "b.csv": counts_table(1)})
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        a, b = t.getmembers()
    end_blocks = b.offset_data + -(-b.size // 512) * 512 + 1024  # the two zero blocks, before the padding
    return {"bgzip.csv.gz": (bgzip, len(first)), "member.tar": (tar, b.offset),
            "end_blocks.tar": (tar, end_blocks)}


def hdf5_bytes(tmp_path) -> bytes:
    path = tmp_path / "src.h5"
    with h5py.File(path, "w") as fh:
        fh["counts"] = np.random.default_rng(1).poisson(2, size=(300, 50))
    return path.read_bytes()


def publish(server, files: dict[str, bytes]):
    return add_series(server.root, ACC, files)


def fetch(server, tmp_path, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("progress", False)
    return fetch_geo(ACC, tmp_path / "dl", dataset="geo_int", base_url=server.base_url,
                     cache_dir=tmp_path / "cache", **kw)


def hits(server, name):
    return [(t["range"], t["status"]) for t in server.transfers if t["path"].endswith("/" + name)]


def one_line(err, *words, fix: str = ""):
    msg = str(err.value)
    assert "\n" not in msg and "'geo_int'" in msg and "Fix: " in msg, msg
    for word in words:
        assert word in msg, (word, msg)
    assert fix in msg.split("Fix: ", 1)[1], msg
    return msg


def cut_first_run(server, tmp_path, name):
    """A first run whose transfer of ``name`` is dropped halfway: fails, keeps its partial in the cache."""
    server.faults[name] = "truncate_once"
    with pytest.raises(InputError):
        fetch(server, tmp_path, pattern=name, retries=0)
    part = tmp_path / "cache" / f"{name}.part"
    assert part.is_file() and not (tmp_path / "dl").exists()
    server.transfers.clear()
    return part.stat().st_size


# ------------------------------------------------------------------------- proof of completeness
def test_cut_transfer_without_length_is_not_accepted(site, tmp_path):
    name, data = "counts.csv.gz", gzip.compress(counts_table())
    publish(site, {name: data})
    site.faults[name] = "no_length_cut_once"
    with pytest.raises(InputError) as err:  # without a retry the cut file must not pass as complete
        fetch(site, tmp_path, pattern=name, retries=0)
    one_line(err, name, "incomplete")
    assert not (tmp_path / "dl").exists()
    half = (tmp_path / "cache" / f"{name}.part").stat().st_size
    assert half == len(data) // 2
    fetch(site, tmp_path, pattern=name)  # the rerun resumes the cut file
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert hits(site, name)[-1] == (f"bytes={half}-", 206)


@pytest.mark.parametrize("kind", ["gz", "tar", "h5"])
def test_complete_file_without_length_is_measured_by_a_probe(site, tmp_path, kind):
    """The body ended with the connection: the server's answer to a one-byte Range request (it refuses
    HEAD) gives the length that proves the file whole."""
    data = {"gz": lambda: gzip.compress(counts_table()), "tar": lambda: tar_bytes({"a.csv": counts_table()}),
            "h5": lambda: hdf5_bytes(tmp_path)}[kind]()
    name = f"counts.{kind}"
    publish(site, {name: data})
    site.faults[name] = "no_length"
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert hits(site, name) == [(None, 200), ("bytes=0-0", 206)]


@pytest.mark.parametrize("kind", ["tar", "h5"])
def test_file_cut_where_it_still_parses_is_not_accepted(site, tmp_path, kind):
    """A tar cut at a member boundary reads as a shorter archive; an HDF5 file cut short still has its
    superblock. Served whole but short and without a length, the server gives their (short) length when
    asked, and their own check tells that they are damaged at the source."""
    if kind == "tar":
        full = tar_bytes({"a.csv": counts_table(0), "b.csv": counts_table(1)})
        with tarfile.open(fileobj=io.BytesIO(full)) as tar:
            cut = full[: tar.getmembers()[1].offset]  # the second member's header starts here
        with tarfile.open(fileobj=io.BytesIO(cut)) as tar:
            assert [m.name for m in tar.getmembers()] == ["a.csv"]  # tarfile alone is fooled
    else:
        full = hdf5_bytes(tmp_path)
        cut = full[: len(full) // 2]
    name = f"counts.{kind}"
    publish(site, {name: cut})
    site.faults[name] = "no_length"
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, pattern=name, retries=1)
    one_line(err, name, f"is {len(cut)} bytes on the server", "fails its own check", "truncated")
    assert not (tmp_path / "dl").exists()
    assert hits(site, name) == [(None, 200), ("bytes=0-0", 206)]  # the server tells its size


@pytest.mark.parametrize("name", sorted(cut_containers()))
def test_container_cut_at_a_member_boundary_is_not_accepted(site, tmp_path, name):
    """A transfer without a length that stops exactly at a member boundary: the container's own framing
    still reads as whole, but the length the server gives when asked shows the cut; the rerun resumes."""
    whole, cut = cut_containers()[name]
    assert 0 < cut < len(whole)
    (tmp_path / "prefix").write_bytes(whole[:cut])
    if name.endswith(".gz") or name.startswith("end_blocks"):
        assert container_state(tmp_path / "prefix", name) == "complete"  # the trap
    else:
        with tarfile.open(tmp_path / "prefix") as tar:
            assert [m.name for m in tar.getmembers()] == ["a.csv"]
    publish(site, {name: whole})
    site.faults[name] = f"cut_at={cut}"
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, pattern=name, retries=0)
    one_line(err, name, f"got {cut} of {len(whole)} bytes", fix="rerun")
    assert hits(site, name) == [(None, 200), ("bytes=0-0", 206)]
    assert (tmp_path / "cache" / f"{name}.part").stat().st_size == cut and not (tmp_path / "dl").exists()
    site.transfers.clear()
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == whole
    assert hits(site, name) == [(f"bytes={cut}-", 206)]


@pytest.mark.parametrize("name, data", [("counts.csv", counts_table()),
                                        ("counts.csv.gz", gzip.compress(counts_table()))])
def test_file_whose_length_cannot_be_learnt_is_refused(site, tmp_path, name, data):
    """No Content-Length, no HEAD, Range ignored: even a gzip that passes its own check is refused,
    since a bgzip cut at a member boundary would pass it too."""
    publish(site, {name: data})
    site.faults[name] = "no_length_no_range"
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, pattern=name)
    one_line(err, name, "without a length", "Content-Length", "Range", fix="geo.base_url")
    assert hits(site, name) == [(None, 200), ("bytes=0-0", 200)] and not (tmp_path / "dl").exists()
    assert not list((tmp_path / "cache").glob("*.part"))


def test_chunked_body_is_measured_and_a_cut_one_resumed(site, tmp_path):
    whole, cut = "whole.csv", "cut.csv"
    publish(site, {whole: counts_table(0), cut: counts_table(1)})
    site.faults.update({whole: "chunked", cut: "chunked_cut_once"})
    fetch(site, tmp_path, pattern=r"\.csv$")
    assert (tmp_path / "dl" / whole).read_bytes() == counts_table(0)
    assert (tmp_path / "dl" / cut).read_bytes() == counts_table(1)
    assert hits(site, whole) == [(None, 200), ("bytes=0-0", 206)]  # the length checked by a probe
    assert [r is not None for r, _ in hits(site, cut)] == [False, True]  # the cut one was resumed


def test_chunked_body_ended_early_is_not_accepted(site, tmp_path):
    """A chunked body properly ended by its last chunk, but shorter than the length the server gives."""
    name, data = "counts.csv.gz", gzip.compress(counts_table())
    publish(site, {name: data})
    site.faults[name] = "chunked_short_once"
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == data
    half = len(data) // 2
    assert hits(site, name) == [(None, 200), ("bytes=0-0", 206), (f"bytes={half}-", 206)]


def test_chunked_body_from_a_server_that_tells_no_length_is_accepted(site, tmp_path):
    """No HEAD, Range ignored: the last chunk is the only proof of the end, and a sufficient one."""
    publish(site, {"counts.csv": counts_table()})
    site.faults["counts.csv"] = "chunked_no_range"
    fetch(site, tmp_path, pattern="counts.csv")
    assert (tmp_path / "dl" / "counts.csv").read_bytes() == counts_table()
    assert hits(site, "counts.csv") == [(None, 200), ("bytes=0-0", 200)]


# ------------------------------------------------------------------------ trust in a resume answer
@pytest.mark.parametrize("fault", ["no_content_range_once", "wrong_range_start_once"])
def test_untrusted_resume_answer_restarts_from_zero(site, tmp_path, fault):
    name, data = "counts.csv.gz", gzip.compress(counts_table())
    publish(site, {name: data})
    half = cut_first_run(site, tmp_path, name)
    site.faults[name] = fault
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert hits(site, name) == [(f"bytes={half}-", 206), (None, 200)]


def test_changed_remote_file_is_not_resumed(site, tmp_path):
    """The partial's sidecar holds the ETag; If-Range makes the server send the new file whole."""
    name, old, new = "counts.csv.gz", gzip.compress(counts_table(0)), gzip.compress(counts_table(7))
    suppl = publish(site, {name: old})
    cut_first_run(site, tmp_path, name)
    etag = json.loads((tmp_path / "cache" / f"{name}.part.json").read_text())["etag"]
    (suppl / name).write_bytes(new)  # the remote file changes between the runs
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == new
    [request] = [t for t in site.transfers if t["path"].endswith(name)]
    assert request["if_range"] == etag and request["status"] == 200 and request["sent"] == len(new)


def test_changed_file_from_a_server_ignoring_if_range_restarts(site, tmp_path):
    name, old, new = "counts.csv.gz", gzip.compress(counts_table(0)), gzip.compress(counts_table(7))
    suppl = publish(site, {name: old})
    half = cut_first_run(site, tmp_path, name)
    (suppl / name).write_bytes(new)
    site.faults[name] = "ignore_if_range"  # answers 206 with the new file's ETag
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == new
    assert hits(site, name) == [(f"bytes={half}-", 206), (None, 200)]


def test_partial_without_its_identity_restarts_from_zero(site, tmp_path):
    name, data = "counts.csv.gz", gzip.compress(counts_table())
    publish(site, {name: data})
    cut_first_run(site, tmp_path, name)
    (tmp_path / "cache" / f"{name}.part.json").unlink()
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert hits(site, name) == [(None, 200)]


def test_partial_that_is_already_whole_is_not_fetched_again(site, tmp_path):
    """Killed after the last byte but before the rename: the server's 416 confirms the size."""
    name, data = "counts.csv.gz", gzip.compress(counts_table())
    publish(site, {name: data})
    cut_first_run(site, tmp_path, name)
    (tmp_path / "cache" / f"{name}.part").write_bytes(data)
    fetch(site, tmp_path, pattern=name)
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert hits(site, name) == [(f"bytes={len(data)}-", 416)]


def test_progress_of_a_transfer_is_logged(site, tmp_path, monkeypatch):
    """Long downloads report progress lines in the log (here every chunk: the interval is set to 0)."""
    import logging

    from livaebench.data import http_transfer

    data = np.random.default_rng(3).bytes(300_000)
    publish(site, {"counts.bin": data})
    monkeypatch.setattr(http_transfer, "PROGRESS_INTERVAL", 0.0)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("livaebench.data")
    monkeypatch.setattr(logger, "level", logging.INFO)
    logger.addHandler(handler)
    try:
        fetch(site, tmp_path, pattern="counts.bin", progress=True)
    finally:
        logger.removeHandler(handler)
    lines = [r.getMessage() for r in records]
    assert any(line.startswith("counts.bin: ") and "of 0.3 MB (" in line and "MB/s" in line for line in lines), lines
    assert (tmp_path / "dl" / "counts.bin").read_bytes() == data
