"""Hostile input on the GEO path: URLs and redirects to other origins (hosts, ports, schemes), unsafe
or oversized names, control characters from the server, oversized or trickling transfers, and hostile
archives. Each is refused with its own one-line message, and no byte the server chose reaches a message
or the log unescaped.

Everything runs against the real HTTP server of tests/geo_server.py. The series are CONSTRUCTED
(``add_series``: made-up accessions and SOFT text) and the hostile archives are built here byte by byte;
the one well-formed archive holds real counts (10x triplets of resources/pancreas.h5ad cells).
"""
from __future__ import annotations

import gzip
import io
import logging
import tarfile
import time
import urllib.parse

import pytest

from geo_server import HOSTILE_STATUS_LINE, add_series, constructed_gsms, sample_dir, serve
from livaebench.data.geo import assemble_geo, fetch_geo, list_geo_files
from livaebench.errors import InputError

ACC = "GSE990002"
DATA = b"gene,c1,c2\ng1,1,0\ng2,0,3\n" * 200



def fetch(server, tmp_path, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("progress", False)
    return fetch_geo(ACC, tmp_path / "dl", dataset="geo_sec", base_url=server.base_url,
                     cache_dir=tmp_path / "cache", **kw)


def one_line(err, *words, fix: str = ""):
    msg = str(err.value)
    assert "\n" not in msg and "'geo_sec'" in msg and "Fix: " in msg, msg
    for word in words:
        assert word in msg, (word, msg)
    assert fix in msg.split("Fix: ", 1)[1], msg
    return msg


def suppl_path(server, name: str) -> str:
    return f"/series/GSE990nnn/{ACC}/suppl/{name}"


def port(server) -> int:
    return urllib.parse.urlsplit(server.base_url).port


def other_host(server, path: str) -> str:
    """The same server under another host name: 'localhost' instead of '127.0.0.1'."""
    return f"http://localhost:{port(server)}/moved{path}"


# ------------------------------------------------------------------------------------- hosts
@pytest.mark.parametrize("url, fix", [
    ("https://files.example.org/x/counts.csv.gz", "add 'files.example.org' to geo.allowed_hosts"),
    ("ftp://ftp.example.org/pub/counts.csv.gz", "only http(s) URLs"),
    ("file:///etc/counts.csv", "only http(s) URLs"),
])
def test_url_on_another_host_is_refused(site, tmp_path, url, fix):
    add_series(site.root, ACC, {"own.csv": DATA}, urls=[url])
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path)
    one_line(err, url, fix=fix)
    assert [t["path"].rsplit("/", 1)[1] for t in site.transfers] == [f"{ACC}_family.soft.gz"]  # nothing else
    assert not (tmp_path / "dl").exists()


def test_allowed_host_is_fetched(site, tmp_path):
    add_series(site.root, ACC, {"own.csv": DATA})
    url = other_host(site, suppl_path(site, "own.csv"))
    add_series(site.root, ACC, urls=[url])  # the SOFT now lists only the copy on the other host name
    fetch(site, tmp_path, allowed_hosts=[f"localhost:{port(site)}"])
    assert (tmp_path / "dl" / "own.csv").read_bytes() == DATA
    assert site.transfers[-1]["host"].startswith("localhost:")


def test_redirect_to_another_host_is_refused(site, tmp_path):
    add_series(site.root, ACC, {"own.csv": DATA})
    target = other_host(site, suppl_path(site, "own.csv"))
    site.faults["own.csv"] = f"redirect={target}"
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path)
    one_line(err, "redirect", target, fix=f"add 'localhost:{port(site)}' to geo.allowed_hosts")
    assert not any(t["host"].startswith("localhost") for t in site.transfers)


def test_headers_do_not_follow_a_redirect_to_another_allowed_host(site, tmp_path):
    add_series(site.root, ACC, {"own.csv": DATA})
    site.faults["own.csv"] = "truncate_once"
    with pytest.raises(InputError):
        fetch(site, tmp_path, retries=0)
    site.transfers.clear()
    site.faults["own.csv"] = f"redirect={other_host(site, suppl_path(site, 'own.csv'))}"
    fetch(site, tmp_path, allowed_hosts=[f"localhost:{port(site)}"])
    assert (tmp_path / "dl" / "own.csv").read_bytes() == DATA
    first, second = site.transfers
    assert first["host"].startswith("127.0.0.1") and first["range"] and first["if_range"]
    assert second["host"].startswith("localhost") and second["range"] is None and second["if_range"] is None
    assert second["status"] == 200


# ----------------------------------------------------------------------------------- origins
@pytest.fixture
def other_port(site):
    """The same tree served on a second port of the same host (127.0.0.1)."""
    with serve(site.root) as srv:
        yield srv


@pytest.mark.parametrize("how", ["listed", "redirect", "bare_host_entry", "other_scheme"])
def test_other_port_or_scheme_of_an_allowed_host_is_refused(site, other_port, tmp_path, how):
    """An origin is scheme + host + port: the GEO host's other port, or its https, is another origin."""
    add_series(site.root, ACC, {"own.csv": DATA})
    target = f"{other_port.base_url}{suppl_path(site, 'own.csv')}"
    if how == "other_scheme":
        target = f"https://127.0.0.1:{port(site)}{suppl_path(site, 'own.csv')}"
    if how == "redirect":
        site.faults["own.csv"] = f"redirect={target}"
    else:
        add_series(site.root, ACC, urls=[target])  # the SOFT lists only the copy on the other origin
    extra = ["127.0.0.1"] if how == "bare_host_entry" else []  # a bare host allows its default ports only
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, allowed_hosts=extra)
    entry = f"127.0.0.1:{port(site) if how == 'other_scheme' else port(other_port)}"
    one_line(err, target, "another port or scheme", *(["redirect"] if how == "redirect" else []),
             fix=f"add '{entry}' to geo.allowed_hosts (it takes host or host:port)")
    assert not other_port.transfers and not (tmp_path / "dl").exists()


def test_other_port_listed_in_allowed_hosts_is_fetched(site, other_port, tmp_path):
    add_series(site.root, ACC, {"own.csv": DATA})
    add_series(site.root, ACC, urls=[f"{other_port.base_url}{suppl_path(site, 'own.csv')}"])
    fetch(site, tmp_path, allowed_hosts=[f"127.0.0.1:{port(other_port)}"])
    assert (tmp_path / "dl" / "own.csv").read_bytes() == DATA
    assert [t["status"] for t in other_port.transfers] == [200]


@pytest.mark.parametrize("entry", ["example.org/path", "example.org:http", "ftp://example.org", "user@example.org"])
def test_malformed_allowed_hosts_entry_is_refused(site, tmp_path, entry):
    add_series(site.root, ACC, {"own.csv": DATA})
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, allowed_hosts=[entry])
    msg = str(err.value)
    assert "\n" not in msg and "geo.allowed_hosts" in msg and repr(entry) in msg and "Fix: write each" in msg


# ------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", [".hidden.csv", "..", "a%2F..%2Fb.csv", "x..csv", "manifest.tsv", "a.csv.part"])
def test_unsafe_file_name_is_refused(site, tmp_path, name):
    add_series(site.root, ACC, urls=[f"ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE990nnn/{ACC}/suppl/{name}"])
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path)
    one_line(err, "unsafe file name", fix="narrow the pattern")
    assert len(site.transfers) == 1  # only the SOFT


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def geo_log(monkeypatch):
    """Every line the GEO code logs, formatted as a log file would hold it."""
    handler = _Records()
    logger = logging.getLogger("livaebench.data")
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def assert_escaped(*texts):
    """No control character (terminal escapes, NUL, CR) in what reaches a message or the log."""
    for text in texts:
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in text), repr(text)


SUPPL = f"ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE990nnn/{ACC}/suppl"
LONG_NAME = "GSM1_" + "x" * 300 + "_matrix.mtx.gz"


@pytest.mark.parametrize("url, problem", [
    (f"{SUPPL}/{LONG_NAME}", "longer than the file system allows"),
    (f"{SUPPL}/GSM1_\x1b[31mred\x1b[0m_matrix.mtx.gz", "control characters in its file name"),
    (f"{SUPPL}/GSM1_nul\x00.csv", "control characters in its file name"),
    (f"{SUPPL}/\x1b]0;owned\x07\x1b[2J/GSM1_counts.csv", "control characters"),  # in a folder of the URL
])
def test_overlong_or_control_character_names_are_refused_escaped(site, tmp_path, geo_log, url, problem):
    add_series(site.root, ACC, urls=[url])
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path)
    msg = one_line(err, problem, fix="narrow the pattern")
    assert_escaped(msg, *geo_log)
    assert "\\x1b" in msg or "\\x00" in msg or "x" * 300 not in msg  # shown escaped, long names cut
    assert len(site.transfers) == 1  # only the SOFT


def test_listing_escapes_what_the_server_chose(site, tmp_path):
    """list_geo_files writes names and URLs as a table a user reads in a terminal: escaped, and marked."""
    add_series(site.root, ACC, urls=[f"{SUPPL}/GSM1_\x1b[2Jcounts.csv", f"{SUPPL}/{LONG_NAME}"])
    table = list_geo_files(ACC, dataset="geo_sec", base_url=site.base_url, backoff=0.01)
    assert list(table["file"]) == ["GSM1_\\x1b[2Jcounts.csv", LONG_NAME]
    assert_escaped(*table["file"], *table["url"], *table["note"])
    assert "control characters" in table["note"][0] and "longer than the file system allows" in table["note"][1]


def test_hostile_status_line_reaches_the_log_escaped(site, tmp_path, geo_log):
    add_series(site.root, ACC, {"own.csv": DATA})
    site.faults["own.csv"] = "hostile_status"
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, retries=1)
    msg = one_line(err, "own.csv", "stayed incomplete", "BadStatusLine", "\\x1b[2J", fix="rerun")
    assert_escaped(msg, *geo_log)
    assert any("\\x1b[31m" in line for line in geo_log)  # the retry line names the status line, escaped
    assert b"\x1b" in HOSTILE_STATUS_LINE


@pytest.mark.parametrize("sample", ["../evil", "GSM12/../x", "GSM1 x", "sample_1"])
def test_sample_name_that_is_not_a_gsm_is_refused(site, tmp_path, sample):
    add_series(site.root, ACC, {"own.csv": DATA}, samples=[sample])
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path)
    one_line(err, "not a GEO sample accession", fix="geo.base_url")


# --------------------------------------------------------------------------------- bounds
@pytest.mark.parametrize("fault", ["", "no_length"])
def test_download_over_the_byte_cap_is_stopped(site, tmp_path, fault):
    big = gzip.compress(DATA * 50)
    add_series(site.root, ACC, {"big.csv.gz": big})
    site.faults["big.csv.gz"] = fault
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, max_download_bytes=len(big) // 2)
    one_line(err, "big.csv.gz", "geo.max_download_bytes", fix="raise geo.max_download_bytes")
    part = tmp_path / "cache" / "big.csv.gz.part"
    assert not part.exists() or part.stat().st_size <= len(big) // 2


@pytest.mark.parametrize("fault", ["trickle", "trickle_headers"])
def test_trickling_server_hits_the_deadline(site, tmp_path, fault):
    """One byte every 50 ms (body, or header lines that never end): each read is well within the
    per-read timeout, so only the overall deadline stops the transfer."""
    add_series(site.root, ACC, {"slow.csv": DATA})
    site.faults["slow.csv"] = fault
    started = time.monotonic()
    with pytest.raises(InputError) as err:
        fetch(site, tmp_path, transfer_deadline=0.6, timeout=30)
    elapsed = time.monotonic() - started
    one_line(err, "slow.csv", "geo.transfer_deadline", fix="rerun to resume")
    assert elapsed < 5
    if fault == "trickle":
        assert 0 < (tmp_path / "cache" / "slow.csv.part").stat().st_size < len(DATA)  # kept for the rerun


# ------------------------------------------------------------------------------ archives
def _tar(*members: tuple[tarfile.TarInfo, bytes | None], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


HOSTILE_TARS = {
    "absolute": (lambda: _tar((_info("/tmp/evil.csv"), DATA)), "has an absolute path"),
    "dotdot": (lambda: _tar((_info("../evil.csv"), DATA)), "climbs out"),
    "nested_dotdot": (lambda: _tar((_info("a/../../evil.csv"), DATA)), "climbs out"),
    "symlink": (lambda: _tar((_info("GSM1_matrix.mtx.gz", tarfile.SYMTYPE, "/etc/passwd"), None)), "symbolic link"),
    "hardlink": (lambda: _tar((_info("a.csv"), DATA), (_info("b.csv", tarfile.LNKTYPE, "a.csv"), None)),
                 "hard link"),
    "device": (lambda: _tar((_info("dev", tarfile.CHRTYPE), None)), "device file"),
    "fifo": (lambda: _tar((_info("pipe", tarfile.FIFOTYPE), None)), "device file or pipe"),
    "control": (lambda: _tar((_info("GSM1_\x1b[2J.csv"), DATA)), "control characters in its name"),
    "long": (lambda: _tar((_info("d/" + "x" * 300 + ".csv"), DATA)), "longer than the file system allows"),
}


def _serve_and_fetch(site, tmp_path, name: str, data: bytes):
    add_series(site.root, ACC, {name: data})
    fetch(site, tmp_path)
    return tmp_path / "dl"


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused(site, tmp_path, case):
    build, problem = HOSTILE_TARS[case]
    dl = _serve_and_fetch(site, tmp_path, f"{ACC}_RAW.tar", build())
    with pytest.raises(InputError) as err:
        assemble_geo(dl, dataset="geo_sec")
    msg = one_line(err, f"{ACC}_RAW.tar", "unsafe archive", problem, fix="do not use this file")
    assert "truncated" not in msg
    assert_escaped(msg)
    _assert_nothing_extracted(dl, tmp_path)


def _assert_nothing_extracted(dl, tmp_path):
    assert sorted(p.name for p in dl.iterdir()) == sorted(
        [f"{ACC}_RAW.tar" if (dl / f"{ACC}_RAW.tar").exists() else f"{ACC}_RAW.tar.gz",
         f"{ACC}_family.soft.gz", "manifest.tsv", "samples.tsv"])
    assert not (tmp_path / "evil.csv").exists() and not (dl.parent / "evil.csv").exists()


def test_archive_over_the_member_cap_is_refused(site, tmp_path):
    data = _tar(*[(_info(f"f{i}.csv"), b"x") for i in range(30)])
    dl = _serve_and_fetch(site, tmp_path, f"{ACC}_RAW.tar", data)
    with pytest.raises(InputError) as err:
        assemble_geo(dl, dataset="geo_sec", max_archive_members=20)
    one_line(err, "more than 20 members", "geo.max_archive_members", fix="raise geo.max_archive_members")
    _assert_nothing_extracted(dl, tmp_path)


def test_tar_gz_bomb_is_refused(site, tmp_path):
    """A small .tar.gz whose one member of zeros is far over the extraction cap."""
    data = _tar((_info("GSM1_matrix.mtx"), bytes(8 << 20)), mode="w:gz")
    assert len(data) < 100_000
    dl = _serve_and_fetch(site, tmp_path, f"{ACC}_RAW.tar.gz", data)
    with pytest.raises(InputError) as err:
        assemble_geo(dl, dataset="geo_sec", max_extract_bytes=1 << 20)
    msg = one_line(err, "extracts to more than 1048576 bytes", "geo.max_extract_bytes")
    assert "truncated" not in msg
    _assert_nothing_extracted(dl, tmp_path)


def test_gzip_bomb_is_refused(site, tmp_path):
    """A gzip'd dense table that decompresses to far more than the cap (zeros after a header)."""
    name = "GSE990002_counts.csv.gz"
    data = gzip.compress(b"gene,c1\n" + bytes(8 << 20))
    dl = _serve_and_fetch(site, tmp_path, name, data)
    with pytest.raises(InputError) as err:
        assemble_geo(dl, dataset="geo_sec", max_extract_bytes=1 << 20)
    one_line(err, name, "decompresses to more than 1048576 bytes", "gzip bomb", fix="raise geo.max_extract_bytes")


def test_well_formed_archive_within_the_caps_assembles(server, tmp_path, pancreas):
    """The caps leave a genuine GEO _RAW.tar alone (the session server's constructed series)."""
    gsms = constructed_gsms("GSE999001")
    files = {f"{g}_{p}": (sample_dir(server.root, g) / "suppl" / f"{g}_{p}").read_bytes()
             for g in gsms for p in ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz")}
    size = sum(len(v) for v in files.values())
    fetch_geo("GSE999001", tmp_path / "dl", dataset="geo_sec", base_url=server.base_url, pattern=r"_RAW\.tar$",
              cache_dir=tmp_path / "cache", progress=False)
    adata = assemble_geo(tmp_path / "dl", dataset="geo_sec", max_archive_members=len(files),
                         max_extract_bytes=max(size, 10 * max(len(gzip.decompress(v)) for v in files.values())))
    assert adata.n_obs == 200 and adata.n_vars == pancreas.n_vars
