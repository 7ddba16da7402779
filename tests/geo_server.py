"""A real local HTTP server laid out like GEO's FTP-over-HTTPS tree, for tests of the GEO path.

``serve(root)`` starts a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a thread and returns
``(base_url, shutdown)``; it is also a context manager that shuts the server down on exit:

    with serve(root) as (base_url, shutdown):
        fetch_geo("GSE999001", dest, dataset="x", base_url=base_url)

The returned object also carries
- ``faults``: a dict file name -> fault, changeable while the server runs (faults ending in ``_once``
  apply to one request and are then dropped):
  ``truncate_once`` / ``truncate_always`` (announce the full length, send half, drop the connection),
  ``error_once`` (503), ``ignore_range`` (answer a Range request with the whole file),
  ``no_length`` (no Content-Length, the whole body, connection closed), ``no_length_cut`` /
  ``no_length_cut_once`` (no Content-Length, half the body), ``chunked`` / ``chunked_cut_once``
  (HTTP/1.1 chunked encoding, whole / cut before the last chunk), ``chunked_short_once`` (half the body,
  properly ended by the last chunk), ``chunked_no_range`` (chunked, Range ignored), ``no_content_range_once`` (a 206
  without Content-Range), ``wrong_range_start_once`` (a 206 from byte 0 whatever was asked),
  ``ignore_if_range`` (answer 206 even when If-Range no longer matches), ``no_validators`` (no ETag or
  Last-Modified), ``trickle`` (the body one byte every TRICKLE_DELAY seconds), ``trickle_headers`` (the
  same for the header lines, which never end), ``redirect=URL`` (302 to URL), ``no_length_no_range``
  (no Content-Length and Range ignored: the length cannot be learnt), ``cut_at=N`` (once: no
  Content-Length, the first N bytes of the body, connection closed), ``hostile_status`` (a status line
  holding a terminal escape sequence and a NUL);
- ``requests``: a list of (path, Range header, status) for every request;
- ``transfers``: a list of dicts (path, host, range, if_range, status, sent) for every request, where
  ``sent`` counts the body bytes that went out; ``sent(name)`` sums them for one file name.

Beyond the stdlib ``SimpleHTTPRequestHandler`` the handler supports ``Range: bytes=a-[b]`` (206 with
Content-Range, 416 when unsatisfiable), ETag (a hash of the content), Last-Modified and ``If-Range``
(a validator that no longer matches gets the whole file), GEO's sample query page
``/query/acc.cgi?acc=GSM...`` (served from ``{root}/query/{GSM}.txt``) and ``/moved/...``, the same tree
without faults (a redirect target).

``build_constructed_series`` writes a CONSTRUCTED single-cell series into such a tree: the counts are
real (cells and genes of ``resources/pancreas.h5ad``), but the series, its accession, its samples, their
characteristics and the SOFT text are made up here, because no real GEO series is small enough to ship.
``add_series`` writes a minimal constructed series that lists given files and URLs verbatim (for hostile
input). ``add_real_soft`` serves a real SOFT family file (gzipped, as GEO does).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile
import threading
import time
import urllib.parse
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp


def range_dir(accession: str) -> str:
    return re.sub(r"\d{1,3}$", "nnn", accession)


# ------------------------------------------------------------------------------------------- server
ONCE = ("truncate_once", "error_once", "no_length_cut_once", "chunked_cut_once", "chunked_short_once",
        "no_content_range_once", "wrong_range_start_once")
TRICKLE_DELAY = 0.05  # seconds between the bytes of a trickling answer
# A status line that would clear the screen and colour the terminal red if shown as it is.
HOSTILE_STATUS_LINE = b"HTTP/1.0 2\x1b[2J\x1b[31m00\x00 OK"



class _GeoHandler(SimpleHTTPRequestHandler):
    """Static files with byte ranges, validators (ETag, Last-Modified, If-Range) and fault injection."""

    faults: dict = {}
    requests: list = []
    transfers: list = []

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _record(self, status: int) -> dict:
        """Log the request before answering it; the answer's byte count is added while it is sent."""
        self.requests.append((self.path, self.headers.get("Range"), int(status)))
        entry = {"path": urllib.parse.urlsplit(self.path).path, "host": self.headers.get("Host"),
                 "range": self.headers.get("Range"), "if_range": self.headers.get("If-Range"),
                 "status": int(status), "sent": 0}
        self.transfers.append(entry)
        return entry

    def do_HEAD(self):
        self.send_error(HTTPStatus.NOT_IMPLEMENTED)

    def _local(self) -> tuple[Path, bool]:
        """(file asked for, whether faults apply): /moved/... serves the same tree without faults."""
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path.endswith("/query/acc.cgi"):
            acc = urllib.parse.parse_qs(parsed.query).get("acc", [""])[0]
            return Path(self.directory) / "query" / (f"{acc}.txt" if re.fullmatch(r"GSM\d+", acc) else "-"), True
        moved = parsed.path.startswith("/moved/")
        path = parsed.path[len("/moved"):] if moved else parsed.path
        return Path(self.translate_path(path)), not moved

    def _fault(self, name: str) -> str:
        fault = self.faults.get(name, "")
        if fault in ONCE or fault.startswith("cut_at="):
            self.faults.pop(name, None)
        return fault

    def do_GET(self):
        local, faulty = self._local()
        if not local.is_file():
            self._record(404)
            return self.send_error(HTTPStatus.NOT_FOUND)
        fault = self._fault(local.name) if faulty else ""
        if fault.startswith("redirect="):
            self._record(302)
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", fault.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if fault == "error_once":
            self._record(503)
            return self.send_error(HTTPStatus.SERVICE_UNAVAILABLE)
        if fault == "trickle_headers":
            return self._trickle_headers()
        if fault == "hostile_status":
            self._record(200)
            self.wfile.write(HOSTILE_STATUS_LINE + b"\r\n\r\n")
            self.close_connection = True
            return
        data = local.read_bytes()
        etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        modified = formatdate(local.stat().st_mtime, usegmt=True)
        answer = self._range(len(data), etag, modified, fault)
        if answer is None:
            return
        start, end, status = answer
        self._send(data, start, end, status, fault, etag, modified)

    def _trickle_headers(self) -> None:
        """An answer whose header lines arrive one byte every TRICKLE_DELAY seconds, without end."""
        self._record(200)
        try:
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            for _ in range(int(60 / TRICKLE_DELAY)):
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(TRICKLE_DELAY)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    def _range(self, size: int, etag: str, modified: str, fault: str):
        """(first byte, last byte, status) of the answer; None when a 416 was sent."""
        header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if not header or fault in ("ignore_range", "no_length_no_range", "chunked_no_range"):
            return 0, size - 1, HTTPStatus.OK
        if if_range and if_range not in (etag, modified) and fault != "ignore_if_range":
            return 0, size - 1, HTTPStatus.OK  # the file changed: the whole of it
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
        if not m or int(m[1]) >= size:
            self._record(416)
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if fault.startswith("wrong_range_start"):
            return 0, size - 1, HTTPStatus.PARTIAL_CONTENT
        return int(m[1]), (min(int(m[2]), size - 1) if m[2] else size - 1), HTTPStatus.PARTIAL_CONTENT

    def _send(self, data: bytes, start: int, end: int, status, fault: str, etag: str, modified: str) -> None:
        body = data[start:end + 1]
        cut = fault in ("truncate_once", "truncate_always", "no_length_cut_once", "no_length_cut", "chunked_cut_once")
        # Announce the full length (or none), send about half, then drop the connection: a real cut transfer.
        payload = body[: max(1, len(body) // 2)] if cut or fault == "chunked_short_once" else body
        if fault.startswith("cut_at="):  # a cut at a chosen byte (a member boundary of a container)
            payload, cut = body[: int(fault.split("=", 1)[1])], True
        chunked = fault.startswith("chunked")
        if chunked:
            self.protocol_version = "HTTP/1.1"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
        elif not fault.startswith(("no_length", "cut_at=")):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if fault != "no_validators":
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
        if status == HTTPStatus.PARTIAL_CONTENT and not fault.startswith("no_content_range"):
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        entry = self._record(status)
        self.end_headers()
        self._write(payload, entry, chunked=chunked, last=not cut, trickle=fault == "trickle")
        self.close_connection = True

    def _write(self, payload: bytes, entry: dict, *, chunked: bool, last: bool, trickle: bool) -> None:
        """Send the body, counting the bytes of content that went out in ``entry['sent']``."""
        try:
            if trickle:
                for i in range(len(payload)):
                    self.wfile.write(payload[i:i + 1])
                    self.wfile.flush()
                    entry["sent"] += 1
                    time.sleep(TRICKLE_DELAY)
            elif chunked:
                half = len(payload) // 2
                for piece in (payload[:half], payload[half:]):
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        entry["sent"] += len(piece)
                if last:
                    self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(payload)
                entry["sent"] += len(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class Served(tuple):
    """``(base_url, shutdown)`` that is also a context manager and exposes faults/requests/transfers."""

    def __new__(cls, base_url, shutdown, faults, requests, transfers=None):
        obj = super().__new__(cls, (base_url, shutdown))
        obj.base_url, obj.shutdown, obj.faults, obj.requests = base_url, shutdown, faults, requests
        obj.transfers = [] if transfers is None else transfers
        return obj

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False

    def sent(self, name: str) -> int:
        """Bytes of ``name`` (a file name) served so far, all requests together."""
        return sum(t["sent"] for t in self.transfers if t["path"].rsplit("/", 1)[-1] == name)

    def clear(self) -> None:
        self.faults.clear()
        self.requests.clear()
        self.transfers.clear()


def serve(root, *, faults: dict | None = None) -> Served:
    """Serve ``root`` on 127.0.0.1 at a free port; returns (base_url, shutdown) (a context manager too)."""
    faults = {} if faults is None else faults
    requests: list = []
    transfers: list = []
    handler = type("Handler", (_GeoHandler,), {"faults": faults, "requests": requests, "transfers": transfers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    server.daemon_threads = True
    # A short poll interval lets shutdown() return quickly (tests start many servers).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="geo-test-server",
                              daemon=True)
    thread.start()
    done = threading.Event()

    def shutdown() -> None:
        if not done.is_set():
            done.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    return Served(f"http://127.0.0.1:{server.server_address[1]}", shutdown, faults, requests, transfers)


# ------------------------------------------------------------------------------------ tree content
def series_dir(root, accession: str) -> Path:
    return Path(root) / "series" / range_dir(accession) / accession


def sample_dir(root, gsm: str) -> Path:
    return Path(root) / "samples" / range_dir(gsm) / gsm


def add_real_soft(root, soft_file, accession: str) -> Path:
    """Serve a real (plain-text) SOFT family file gzipped, where GEO keeps it."""
    dest = series_dir(root, accession) / "soft" / f"{accession}_family.soft.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(soft_file, "rb") as src, gzip.open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
    return dest


def _gz_bytes(data: bytes) -> bytes:
    # mtime=0 keeps the archives byte-identical between builds
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def _triplet_bytes(counts: sp.csr_matrix, barcodes, genes) -> dict[str, bytes]:
    mtx = io.BytesIO()
    scipy.io.mmwrite(mtx, sp.coo_matrix(counts.T), field="integer")  # 10x: features x barcodes
    features = "".join(f"{g}\t{g}\tGene Expression\n" for g in genes)
    return {
        "barcodes.tsv.gz": _gz_bytes("".join(f"{b}\n" for b in barcodes).encode()),
        "features.tsv.gz": _gz_bytes(features.encode()),
        "matrix.mtx.gz": _gz_bytes(mtx.getvalue()),
    }


SERIES_SAMPLES_CHARACTERISTICS = ("tissue: embryonic pancreas", "developmental stage: E15.5")


def build_constructed_series(root, source_h5ad, accession: str = "GSE999001", n_samples: int = 2,
                             cells_per_sample: int = 100) -> None:
    """Write a constructed single-cell GEO series under ``root`` (see the module docstring).

    Sample i (GSM ids ``GSM{accession digits}{i+1:02d}``) gets ``cells_per_sample`` consecutive cells of
    ``source_h5ad`` (rows i*cells_per_sample ...) with all its genes, as a 10x triplet
    ``{GSM}_{part}``; the series offers them again in ``{accession}_RAW.tar`` and a series-level dense
    matrix ``{accession}_counts.csv.gz`` (genes x cells, cells named ``{GSM}_{barcode}``). The family SOFT
    lists series and sample supplementary files with GEO's own ftp:// URLs; a sample text for each GSM
    is served at the accession query page. Characteristics: tissue, developmental stage, replicate.
    """
    import anndata as ad

    root = Path(root)
    src = ad.read_h5ad(source_h5ad)
    counts = sp.csr_matrix(src.X)
    genes = list(src.var_names)
    digits = accession[3:]
    gsms = [f"GSM{digits}{i + 1:02d}" for i in range(n_samples)]
    sdir = series_dir(root, accession)
    (sdir / "suppl").mkdir(parents=True, exist_ok=True)
    (sdir / "soft").mkdir(parents=True, exist_ok=True)
    (root / "query").mkdir(parents=True, exist_ok=True)
    ftp = "ftp://ftp.ncbi.nlm.nih.gov/geo"

    tar_members: dict[str, bytes] = {}
    dense_cols, dense_blocks = [], []
    sample_sections = []
    for i, gsm in enumerate(gsms):
        rows = slice(i * cells_per_sample, (i + 1) * cells_per_sample)
        barcodes = list(src.obs_names[rows])
        parts = _triplet_bytes(counts[rows], barcodes, genes)
        gdir = sample_dir(root, gsm) / "suppl"
        gdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"^SAMPLE = {gsm}",
            f"!Sample_title = pancreas E15.5 replicate {i + 1} (constructed)",
            f"!Sample_geo_accession = {gsm}",
            "!Sample_status = Public on Jan 01 2024",
            "!Sample_type = SRA",
            "!Sample_channel_count = 1",
            "!Sample_source_name_ch1 = embryonic pancreas",
            "!Sample_organism_ch1 = Mus musculus",
            *(f"!Sample_characteristics_ch1 = {c}" for c in SERIES_SAMPLES_CHARACTERISTICS),
            f"!Sample_characteristics_ch1 = replicate: rep{i + 1}",
            "!Sample_platform_id = GPL21103",
            f"!Sample_series_id = {accession}",
        ]
        for k, (part, data) in enumerate(sorted(parts.items()), start=1):
            name = f"{gsm}_{part}"
            (gdir / name).write_bytes(data)
            tar_members[name] = data
            lines.append(f"!Sample_supplementary_file_{k} = {ftp}/samples/{range_dir(gsm)}/{gsm}/suppl/{name}")
        lines.append("!Sample_data_row_count = 0")
        sample_sections.append(lines)
        (root / "query" / f"{gsm}.txt").write_text("\n".join(lines) + "\n")
        dense_cols += [f"{gsm}_{b}" for b in barcodes]
        dense_blocks.append(counts[rows].T.toarray())

    with tarfile.open(sdir / "suppl" / f"{accession}_RAW.tar", "w") as tar:
        for name, data in tar_members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (sdir / "suppl" / "filelist.txt").write_text(filelist_text(f"{accession}_RAW.tar", tar_members))
    dense = np.hstack(dense_blocks)
    text = io.StringIO()
    text.write("gene," + ",".join(dense_cols) + "\n")
    for g, row in zip(genes, dense):
        text.write(g + "," + ",".join(map(str, row.tolist())) + "\n")
    (sdir / "suppl" / f"{accession}_counts.csv.gz").write_bytes(_gz_bytes(text.getvalue().encode()))

    head = [
        "^DATABASE = GeoMiame",
        "!Database_name = Gene Expression Omnibus (GEO)",
        f"^SERIES = {accession}",
        "!Series_title = Constructed test series: subsets of the pancreas E15.5 counts (not a real GEO series)",
        f"!Series_geo_accession = {accession}",
        "!Series_status = Public on Jan 01 2024",
        "!Series_type = Expression profiling by high throughput sequencing",
        *(f"!Series_sample_id = {g}" for g in gsms),
        f"!Series_supplementary_file = {ftp}/series/{range_dir(accession)}/{accession}/suppl/{accession}_RAW.tar",
        f"!Series_supplementary_file = {ftp}/series/{range_dir(accession)}/{accession}/suppl/{accession}_counts.csv.gz",
        "!Series_platform_id = GPL21103",
        "^PLATFORM = GPL21103",
        "!Platform_title = Illumina HiSeq 4000 (Mus musculus)",
        "!Platform_geo_accession = GPL21103",
        "!Platform_data_row_count = 0",
    ]
    soft = "\n".join(head + [line for sec in sample_sections for line in sec]) + "\n"
    (sdir / "soft" / f"{accession}_family.soft.gz").write_bytes(_gz_bytes(soft.encode()))


def add_series(root, accession: str, files: dict[str, bytes] | None = None, *, urls=(), samples=()) -> Path:
    """A minimal CONSTRUCTED series: its SOFT lists ``files`` (written to its suppl folder, listed with
    GEO's ftp:// URLs), then ``urls`` verbatim, and bare sample sections named ``samples`` verbatim."""
    sdir = series_dir(root, accession)
    (sdir / "suppl").mkdir(parents=True, exist_ok=True)
    (sdir / "soft").mkdir(parents=True, exist_ok=True)
    ftp = f"ftp://ftp.ncbi.nlm.nih.gov/geo/series/{range_dir(accession)}/{accession}/suppl"
    listed = []
    for name, data in (files or {}).items():
        (sdir / "suppl" / name).write_bytes(data)
        listed.append(f"{ftp}/{name}")
    lines = [f"^SERIES = {accession}", "!Series_title = Constructed test series (not a real GEO series)",
             f"!Series_geo_accession = {accession}",
             *(f"!Series_sample_id = {s}" for s in samples),
             *(f"!Series_supplementary_file = {u}" for u in [*listed, *urls])]
    for sample in samples:
        lines += [f"^SAMPLE = {sample}", f"!Sample_title = sample {sample}", f"!Sample_geo_accession = {sample}",
                  "!Sample_data_row_count = 0"]
    path = sdir / "soft" / f"{accession}_family.soft.gz"
    path.write_bytes(_gz_bytes(("\n".join(lines) + "\n").encode()))
    return sdir / "suppl"


# ------------------------------------------------------------------ layouts of real series, constructed
# File names and structures as real GEO series have them (each builder names its model); the counts,
# accessions and SOFT text are made up.
def filelist_text(archive: str, members: dict[str, bytes]) -> str:
    """GEO's filelist.txt beside a _RAW.tar (the format of e.g. GSE125065's): an Archive line, then its Files."""
    stamp = "01/14/2019 14:53:56"
    kinds = {"gz": "GZ", "tsv": "TSV", "mtx": "MTX", "h5": "H5", "txt": "TXT", "csv": "CSV"}
    lines = ["Archive/File\tName\tTime\tSize\tType",
             f"Archive\t{archive}\t{stamp}\t{sum(len(d) for d in members.values())}\tTAR"]
    for name, data in members.items():
        ext = name[:-3].rsplit(".", 1)[-1] if name.endswith(".gz") else name.rsplit(".", 1)[-1]
        lines.append(f"File\t{name}\t{stamp}\t{len(data)}\t{kinds.get(ext, ext.upper())}")
    return "\n".join(lines) + "\n"


def counts_csv(seed: int = 0, rows: int = 4000, cols: int = 12) -> bytes:
    """A headerless gene x cell CSV of Poisson counts (gene ids g0, g1, ...), seeded."""
    values = np.random.default_rng(seed).poisson(3, size=(rows, cols))
    return "".join(f"g{i}," + ",".join(map(str, row)) + "\n" for i, row in enumerate(values)).encode()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return _gz_bytes(data)


def triplet_files(counts, barcodes, genes, *, features_name: str = "features.tsv.gz") -> dict[str, bytes]:
    """A 10x triplet (Cell Ranger 3: features.tsv.gz; Cell Ranger 2: genes.tsv.gz) of a cells x genes matrix."""
    parts = _triplet_bytes(sp.csr_matrix(counts), barcodes, genes)
    if features_name != "features.tsv.gz":
        parts[features_name] = gz("".join(f"{g}\t{g}\n" for g in genes).encode())
        del parts["features.tsv.gz"]
    return parts


def kb_files(counts, barcodes, genes, prefix: str = "cells_x_genes") -> dict[str, bytes]:
    """kallisto-bustools' count output (cells x genes Matrix Market, one label per line)."""
    mtx = io.BytesIO()
    scipy.io.mmwrite(mtx, sp.coo_matrix(counts), field="integer")
    return {f"{prefix}.mtx.gz": gz(mtx.getvalue()),
            f"{prefix}.barcodes.txt.gz": gz("".join(f"{b}\n" for b in barcodes).encode()),
            f"{prefix}.genes.txt.gz": gz("".join(f"{g}\n" for g in genes).encode())}


def tenx_h5_bytes(counts, barcodes, genes) -> bytes:
    """A Cell Ranger 3 filtered_feature_bc_matrix.h5 (features x barcodes, CSC)."""
    import h5py

    X = sp.csc_matrix(sp.csr_matrix(counts).T)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        m = f.create_group("matrix")
        m["data"], m["indices"], m["indptr"] = X.data.astype(np.int32), X.indices, X.indptr
        m["shape"] = np.array(X.shape, dtype=np.int32)
        m["barcodes"] = np.array(barcodes, dtype="S")
        ft = m.create_group("features")
        ft["id"] = np.array([f"ENSMUSG{i:011d}" for i in range(len(genes))], dtype="S")
        ft["name"] = np.array(genes, dtype="S")
        ft["feature_type"] = np.array(["Gene Expression"] * len(genes), dtype="S")
        ft["genome"] = np.array(["mm10"] * len(genes), dtype="S")
    return buf.getvalue()


def h5ad_bytes(counts, barcodes, genes) -> bytes:
    import tempfile

    import anndata as ad
    import pandas as pd

    adata = ad.AnnData(X=sp.csr_matrix(counts).astype(np.float32), obs=pd.DataFrame(index=list(barcodes)),
                       var=pd.DataFrame(index=list(genes)))
    with tempfile.TemporaryDirectory() as tmp:
        adata.write_h5ad(Path(tmp) / "a.h5ad")
        return (Path(tmp) / "a.h5ad").read_bytes()


def dense_text(counts, barcodes, genes, sep: str = "\t", corner: str = "gene") -> bytes:
    """A genes x cells table as written by R/pandas: a header of cell names, one row per gene."""
    dense = sp.csr_matrix(counts).toarray().T
    lines = [sep.join([corner, *barcodes])] + [sep.join([g, *map(str, row)]) for g, row in zip(genes, dense)]
    return ("\n".join(lines) + "\n").encode()


def add_layout_series(root, accession: str, *, series_files: dict[str, bytes] | None = None,
                      sample_files: dict[str, dict[str, bytes]] | None = None, unlisted_samples=(),
                      filelists: dict[str, dict[str, bytes]] | None = None) -> None:
    """A CONSTRUCTED series with per-sample and series files listed in its SOFT as GEO lists them.

    ``sample_files``: GSM -> {file name: bytes} (in the GSM's suppl folder and in its SOFT section);
    ``unlisted_samples``: GSMs with a SOFT section but no files listed (their files are only in an archive);
    ``filelists``: archive name -> members, written as GEO's filelist.txt in the series' suppl folder.
    """
    series_files, sample_files = series_files or {}, sample_files or {}
    sdir = series_dir(root, accession)
    for sub in ("suppl", "soft"):
        (sdir / sub).mkdir(parents=True, exist_ok=True)
    ftp = "ftp://ftp.ncbi.nlm.nih.gov/geo"
    gsms = [*sample_files, *[g for g in unlisted_samples if g not in sample_files]]
    lines = [f"^SERIES = {accession}", "!Series_title = Constructed test series (not a real GEO series)",
             f"!Series_geo_accession = {accession}", *(f"!Series_sample_id = {g}" for g in gsms)]
    for name, data in series_files.items():
        (sdir / "suppl" / name).write_bytes(data)
        lines.append(f"!Series_supplementary_file = {ftp}/series/{range_dir(accession)}/{accession}/suppl/{name}")
    for archive, members in (filelists or {}).items():
        (sdir / "suppl" / "filelist.txt").write_text(filelist_text(archive, members))
    for i, gsm in enumerate(gsms, start=1):
        lines += [f"^SAMPLE = {gsm}", f"!Sample_title = sample {i} (constructed)", f"!Sample_geo_accession = {gsm}",
                  f"!Sample_characteristics_ch1 = replicate: rep{i}", f"!Sample_series_id = {accession}"]
        gdir = sample_dir(root, gsm) / "suppl"
        for k, (name, data) in enumerate(sample_files.get(gsm, {}).items(), start=1):
            gdir.mkdir(parents=True, exist_ok=True)
            (gdir / name).write_bytes(data)
            lines.append(f"!Sample_supplementary_file_{k} = {ftp}/samples/{range_dir(gsm)}/{gsm}/suppl/{name}")
        if not sample_files.get(gsm):
            lines.append("!Sample_supplementary_file_1 = NONE")
        lines.append("!Sample_data_row_count = 0")
    (sdir / "soft" / f"{accession}_family.soft.gz").write_bytes(_gz_bytes(("\n".join(lines) + "\n").encode()))


def constructed_gsms(accession: str = "GSE999001", n_samples: int = 2) -> list[str]:
    return [f"GSM{accession[3:]}{i + 1:02d}" for i in range(n_samples)]


__all__ = ["Served", "add_layout_series", "add_real_soft", "add_series", "build_constructed_series",
           "constructed_gsms", "dense_text", "filelist_text", "h5ad_bytes", "kb_files", "serve", "series_dir",
           "sample_dir", "range_dir", "counts_csv", "tar_bytes", "tenx_h5_bytes", "triplet_files"]

if __name__ == "__main__":  # manual use: python tests/geo_server.py ROOT SOURCE_H5AD
    import sys

    build_constructed_series(sys.argv[1], sys.argv[2])
    with serve(sys.argv[1]) as (url, _):
        print(url, flush=True)
        while os.path.exists(sys.argv[1]):
            time.sleep(1)
