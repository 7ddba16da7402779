"""GEO series/samples -> downloaded supplementary files -> one raw-count AnnData.

``fetch_geo`` downloads the SOFT text of a series (GSE) or sample (GSM) itself, from a configurable
base URL laid out like GEO's FTP-over-HTTPS tree, parses it with GEOparse and downloads the
supplementary files the registry's pattern selects. ``assemble_geo`` turns the downloaded files into one
AnnData.

Downloads are built to survive faults and hostile servers:

- Every file is first written to ``{name}.part`` in a cache folder outside the download folder (the
  workflow's output, which Snakemake deletes when a job fails), next to a JSON sidecar holding the
  remote file's identity (URL, ETag, Last-Modified, total size). A later attempt or run resumes it with
  ``Range`` + ``If-Range``; an answer that cannot be trusted (a 206 without a valid Content-Range, a
  range that starts elsewhere, another ETag) restarts the file from zero.
- A file is accepted only when its completeness is proven: by the announced size (Content-Length or the
  Content-Range total), by chunked framing that ended properly, or by the container's own check (gzip
  CRC over the whole stream, the tar end-of-archive blocks, HDF5's stored end of file).
- Complete files move into the download folder only when all of them are there; ``manifest.tsv`` is
  written last, so a manifest means a complete download.
- Only http(s) URLs on the GEO host (the host of ``base_url``, and of the sample query page) or on hosts
  listed in ``allowed_hosts`` are fetched, redirects included; headers of a request never follow a
  redirect to another host. Bytes per dataset, the time per transfer and, when assembling, the size and
  member count of archives are capped.

GEOparse is used only to parse: it builds its own download URLs (always NCBI), which would make the
base URL impossible to change and the download impossible to test against a mirror.
"""
from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import re
import shutil
import socket
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anndata as ad
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError
from ..results import write_tsv_atomic
from .io import (CORRUPT_ERRORS, _DENSE_RE, _one_line, _read_10x_h5, _read_dense, group_10x_files,
                 read_10x_triplet, read_h5ad_checked)

log = logging.getLogger("livaebench.data")

GEO_BASE = "https://ftp.ncbi.nlm.nih.gov/geo"
# A GSM has no SOFT file on the FTP tree; NCBI serves it from the accession query page.
NCBI_QUERY = "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi"
# GEO writes supplementary URLs with its own host; these prefixes are mapped onto base_url.
_GEO_PREFIXES = ("ftp://ftp.ncbi.nlm.nih.gov/geo", "https://ftp.ncbi.nlm.nih.gov/geo",
                 "http://ftp.ncbi.nlm.nih.gov/geo")
_ACC_RE = re.compile(r"(GSE|GSM)\d+")
_SAMPLE_RE = re.compile(r"GSM\d+")
_GSM_RE = re.compile(r"^(GSM\d+)")
# A supplementary file name becomes a path: a plain basename of safe characters, no leading dot.
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_TAR_RE = re.compile(r"\.(tar|tar\.gz|tgz)$")
_RESERVED_NAMES = {"manifest.tsv", "samples.tsv"}  # written by fetch_geo itself
REDOWNLOAD_FIX = "delete it and rerun to download again"
MANIFEST_COLUMNS = ["file", "sample", "url", "bytes"]

# Defaults of the geo.* config keys (the schema repeats them).
DEFAULT_MAX_DOWNLOAD_BYTES = 50 * 10**9
DEFAULT_MAX_EXTRACT_BYTES = 200 * 10**9
DEFAULT_MAX_ARCHIVE_MEMBERS = 100_000
DEFAULT_TRANSFER_DEADLINE = 6 * 3600.0
DEFAULT_CACHE_DIR = "results/downloads/.partial"
PROGRESS_INTERVAL = 30.0  # seconds between progress lines of one transfer
_CHUNK = 1 << 16


def _what(dataset: str, source) -> str:
    return f"dataset '{dataset}' ({source})"


def _shown(text: str, limit: int = 80) -> str:
    """A name from a remote file, quoted on one line and cut to a readable length."""
    shown = ascii(str(text))
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def geo_range_dir(accession: str) -> str:
    """GEO groups accessions in directories named after all but the last three digits: GSE132188 -> GSE132nnn."""
    return re.sub(r"\d{1,3}$", "nnn", accession)


def map_geo_url(url: str, base_url: str) -> str:
    """Rewrite a URL on GEO's own host onto ``base_url`` (other URLs are returned unchanged)."""
    for prefix in _GEO_PREFIXES:
        if url.startswith(prefix + "/"):
            return base_url.rstrip("/") + url[len(prefix):]
    return url


def _query_url(base_url: str, query_url: str | None) -> str:
    if query_url is not None:
        return query_url
    base = base_url.rstrip("/")
    return NCBI_QUERY if base == GEO_BASE else f"{base}/query/acc.cgi"


def soft_location(accession: str, base_url: str = GEO_BASE, query_url: str | None = None) -> tuple[str, str]:
    """(URL, local file name) of the SOFT text of a GSE (family file) or GSM (accession query).

    ``query_url`` defaults to NCBI's query page when ``base_url`` is GEO's own, else to
    ``{base_url}/query/acc.cgi`` (a mirror serves GSM texts there).
    """
    base = base_url.rstrip("/")
    if accession.startswith("GSE"):
        return (f"{base}/series/{geo_range_dir(accession)}/{accession}/soft/{accession}_family.soft.gz",
                f"{accession}_family.soft.gz")
    return f"{_query_url(base_url, query_url)}?acc={accession}&targ=self&form=text&view=full", f"{accession}.txt"


def fetch_options(geo: dict, dataset: str | None = None) -> dict:
    """Keyword arguments of :func:`fetch_geo` from the workflow's ``geo:`` config (missing keys: defaults).

    With ``dataset``, ``cache_dir`` is that dataset's folder under ``geo.cache_dir``.
    """
    options = dict(base_url=geo.get("base_url", GEO_BASE), retries=geo.get("retries", 4),
                   timeout=geo.get("timeout", 60), allowed_hosts=tuple(geo.get("allowed_hosts") or ()),
                   max_download_bytes=geo.get("max_download_bytes", DEFAULT_MAX_DOWNLOAD_BYTES),
                   transfer_deadline=geo.get("transfer_deadline", DEFAULT_TRANSFER_DEADLINE))
    if dataset is not None:
        options["cache_dir"] = Path(geo.get("cache_dir") or DEFAULT_CACHE_DIR) / dataset
    return options


def extract_limits(geo: dict) -> dict:
    """Keyword arguments of :func:`assemble_geo` (archive caps) from the workflow's ``geo:`` config."""
    return dict(max_extract_bytes=geo.get("max_extract_bytes", DEFAULT_MAX_EXTRACT_BYTES),
                max_archive_members=geo.get("max_archive_members", DEFAULT_MAX_ARCHIVE_MEMBERS))


# ----------------------------------------------------------------------------------- URL policy
def _host(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def allowed_hosts_for(base_url: str, query_url: str | None = None, extra=()) -> frozenset[str]:
    """Hosts a download may contact: that of ``base_url``, of the sample query page, and ``extra``."""
    hosts = {_host(base_url), _host(_query_url(base_url, query_url))}
    hosts.update(str(h).strip().lower() for h in extra)
    return frozenset(h for h in hosts if h)


def _url_problem(url: str, allowed: frozenset[str]) -> str | None:
    """Why ``url`` may not be fetched, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if _host(url) not in allowed:
        return f"is on host '{_host(url)}', which is neither the GEO host nor listed in geo.allowed_hosts"
    return None


def _refusal_fix(url: str) -> str:
    host = _host(url)
    if host and urllib.parse.urlsplit(url).scheme in ("http", "https"):
        return f"add '{host}' to geo.allowed_hosts if you trust that host, or narrow the pattern to leave the file out"
    return "only http(s) URLs are fetched: narrow the pattern to leave the file out"


def check_url(url: str, allowed: frozenset[str], *, what: str) -> None:
    """Raise a one-line InputError when ``url`` is not an http(s) URL on an allowed host."""
    problem = _url_problem(url, allowed)
    if problem:
        raise InputError(what, f"refused to fetch {url}: it {problem}", _refusal_fix(url))


class _Refused(Exception):
    """A redirect to a URL that may not be fetched."""

    def __init__(self, url: str, problem: str):
        super().__init__(url, problem)
        self.url, self.problem = url, problem


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to allowed hosts (never from https to http); headers stay with their host."""

    def __init__(self, allowed: frozenset[str]):
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        problem = _url_problem(newurl, self.allowed)
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if problem is None and old.scheme == "https" and new.scheme != "https":
            problem = "downgrades https to plain http"
        if problem:
            raise _Refused(newurl, problem)
        request = super().redirect_request(req, fp, code, msg, headers, newurl)
        if request is not None and _host(newurl) != _host(req.full_url):
            for key in [k for k in request.headers if k.lower() != "user-agent"]:
                del request.headers[key]  # Range, If-Range: meant for the first host only
        return request


# --------------------------------------------------------------------------- transfer deadline
class _Deadline:
    """An overall time limit of one transfer, retries included.

    A timer shuts down the sockets of the transfer when the time is up, wherever the transfer is blocked
    (connecting, reading headers, reading the body), so a server that trickles bytes cannot hold a job.
    """

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._end = time.monotonic() + self.seconds
        self._expired = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._expired.is_set() or time.monotonic() >= self._end

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def adopt(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
        if self._expired.is_set():
            self._shut(sock)

    def forget(self) -> None:
        with self._lock:
            self._sockets.clear()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self._expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _Watched:
    """Mixin for urllib's HTTP(S) handlers: hands every connected socket to the transfer's deadline."""

    def __init__(self, deadline: _Deadline, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        deadline = self._deadline

        class Connection(http_class):
            def connect(self):
                super().connect()
                deadline.adopt(self.sock)

        return super().do_open(Connection, req, **kwargs)


class _WatchedHTTP(_Watched, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_Watched, urllib.request.HTTPSHandler):
    pass


def _opener(allowed: frozenset[str], deadline: _Deadline) -> urllib.request.OpenerDirector:
    """An opener for http(s) only (no file:, ftp: or data: handlers), with guarded redirects."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _GuardedRedirects(allowed),
                    urllib.request.HTTPErrorProcessor(), _WatchedHTTP(deadline), _WatchedHTTPS(deadline)):
        opener.add_handler(handler)
    return opener


# ------------------------------------------------------------------------------ byte budget
class DownloadBudget:
    """The bytes one dataset may download in all (``geo.max_download_bytes``)."""

    def __init__(self, limit: int, what: str):
        self.limit, self.what, self.used = int(limit), what, 0

    def room(self) -> int:
        return self.limit - self.used

    def add(self, size: int) -> None:
        self.used += int(size)

    def exceeded(self, name: str, size: int) -> InputError:
        return InputError(self.what, f"{name} would bring the download past geo.max_download_bytes "
                          f"({self.limit} bytes in all; {self.used} already downloaded, {name} needs {size})",
                          "raise geo.max_download_bytes if the dataset is that large, or narrow the pattern")


# ---------------------------------------------------------------------------- completeness
def gunzipped_size(path: Path, limit: int | None = None) -> int:
    """Bytes a gzip file decompresses to, reading the whole stream (which checks every member's CRC).

    Stops counting past ``limit`` (returns a value above it). Raises EOFError for a stream that ends
    early, ``gzip.BadGzipFile``/``zlib.error``/OSError for corrupted data.
    """
    total = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if limit is not None and total > limit:
                break
    return total


def _gzip_state(path: Path) -> str:
    try:
        gunzipped_size(path)
    except EOFError:
        return "short"
    except (gzip.BadGzipFile, zlib.error, OSError):
        return "corrupt"
    return "complete"


def _tar_state(path: Path) -> str:
    """A plain tar is complete when the two zero blocks that end an archive follow its last member."""
    end = 0
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                end = member.offset_data + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    except (tarfile.TarError, OSError):
        return "short"
    with open(path, "rb") as fh:
        fh.seek(end)
        tail = fh.read(2 * tarfile.BLOCKSIZE)
    return "complete" if len(tail) == 2 * tarfile.BLOCKSIZE and not tail.strip(b"\0") else "short"


def _hdf5_state(path: Path) -> str:
    import h5py

    try:  # HDF5 compares the end of file stored in its superblock with the real size
        with h5py.File(path, "r"):
            return "complete"
    except OSError:
        return "short"


def container_state(path: Path, name: str) -> str | None:
    """'complete', 'short' or 'corrupt' by the file format's own check; None when the format has none."""
    lower = name.lower()
    if lower.endswith((".gz", ".tgz")):
        return _gzip_state(path)
    if lower.endswith(".tar"):
        return _tar_state(path)
    if lower.endswith((".h5", ".h5ad", ".hdf5")):
        return _hdf5_state(path)
    return None


# -------------------------------------------------------------------------------------- download
class _NotFound(Exception):
    pass


_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first byte, last byte, total or None) of a valid Content-Range header, else None."""
    m = _CONTENT_RANGE_RE.fullmatch((value or "").strip())
    if not m:
        return None
    start, end, total = int(m[1]), int(m[2]), (None if m[3] == "*" else int(m[3]))
    if end < start or (total is not None and end >= total):
        return None
    return start, end, total


def _content_length(resp) -> int | None:
    value = (resp.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _identity(resp, total: int | None) -> dict:
    return {"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified"), "total": total}


def _same_remote(stored: dict, answer: dict) -> bool:
    """True when at least one validator was compared and none differs."""
    pairs = [(stored.get(k), answer.get(k)) for k in ("etag", "last_modified", "total")]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    return bool(pairs) and all(a == b for a, b in pairs)


def _if_range(stored: dict) -> str | None:
    etag = stored.get("etag")
    if etag and not etag.startswith("W/"):  # weak ETags are not allowed in If-Range
        return etag
    return stored.get("last_modified")


class _Progress:
    """Progress lines in the log, at most one every ``interval`` seconds."""

    def __init__(self, name: str, total: int | None, enabled: bool, interval: float | None = None):
        self.name, self.total, self.enabled = name, total, enabled
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.started = self.last = time.monotonic()
        self.first: int | None = None

    def update(self, size: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = size
        if not self.enabled or now - self.last < self.interval:
            return
        self.last = now
        rate = (size - self.first) / max(now - self.started, 1e-9) / 1e6
        of = f" of {self.total / 1e6:.1f} MB ({100 * size / self.total:.0f}%)" if self.total else ""
        log.info("%s: %.1f MB%s at %.2f MB/s", self.name, size / 1e6, of, rate)


@dataclass
class _Transfer:
    """One file: its attempts, its partial file and sidecar, and the checks that make it complete."""

    url: str
    dest: Path
    what: str
    opener: urllib.request.OpenerDirector
    deadline: _Deadline
    budget: DownloadBudget
    timeout: float
    progress: bool
    part: Path = field(init=False)
    sidecar: Path = field(init=False)

    def __post_init__(self):
        self.part = self.dest.with_name(self.dest.name + ".part")
        self.sidecar = self.dest.with_name(self.dest.name + ".part.json")

    # -- the partial file and what it belongs to
    def _stored(self) -> dict:
        try:
            stored = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) and stored.get("url") == self.url else {}

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)

    def _resumable(self) -> tuple[int, dict]:
        """(offset to resume at, stored identity); a partial file that cannot be tied to the remote file is dropped."""
        size = self.part.stat().st_size if self.part.exists() else 0
        stored = self._stored()
        total = stored.get("total")
        known = any(stored.get(k) is not None for k in ("etag", "last_modified", "total"))
        if size and known and (total is None or size <= total):
            return size, stored
        self.discard()
        return 0, {}

    def _start_fresh(self, resp, total: int | None) -> None:
        # The old partial goes first: a sidecar must never describe bytes of another remote version.
        self.discard()
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps({"url": self.url, **_identity(resp, total)}))
        os.replace(tmp, self.sidecar)

    # -- one attempt
    def attempt(self) -> str | None:
        """Run one request; None when the file is complete, else why the attempt failed."""
        offset, stored = self._resumable()
        headers = {"User-Agent": "livaebench"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if _if_range(stored):
                headers["If-Range"] = _if_range(stored)
        self.deadline.forget()
        timeout = max(min(self.timeout, self.deadline.remaining()), 0.01)
        with self.opener.open(urllib.request.Request(self.url, headers=headers), timeout=timeout) as resp:
            start, total, problem = self._plan(resp, offset, stored)
            if problem:
                return problem
            self._receive(resp, start, total)
            return self._verdict(total, framed=bool(getattr(resp, "chunked", False)))

    def _plan(self, resp, offset: int, stored: dict) -> tuple[int, int | None, str | None]:
        """(offset the body starts at, total size or None, problem) for a response."""
        if resp.status != 206:  # a full answer: start over (also when If-Range found the file changed)
            if offset:
                log.info("%s: the server sent the whole file (changed, or no range support); starting over",
                         self.dest.name)
            total = _content_length(resp)
            self._start_fresh(resp, total)
            return 0, total, None
        rng = _content_range(resp.headers.get("Content-Range"))
        if rng is None or not offset:
            self.discard()
            return 0, None, "HTTP 206 without a valid Content-Range; restarting from zero"
        start, _, total = rng
        if start != offset:
            self.discard()
            return 0, None, f"server resumed at byte {start} instead of {offset}; restarting from zero"
        if not _same_remote(stored, _identity(resp, total if total is not None else stored.get("total"))):
            self.discard()
            return 0, None, "the remote file changed since the partial download; restarting from zero"
        return start, total if total is not None else stored.get("total"), None

    def _receive(self, resp, start: int, total: int | None) -> None:
        name, room = self.dest.name, self.budget.room()
        if total is not None and total > room:
            raise self.budget.exceeded(name, total)
        log.info("downloading %s (%s bytes%s)", self.url, total if total is not None else "?",
                 f", resuming at {start}" if start else "")
        bar = _Progress(name, total, self.progress)
        with open(self.part, "r+b" if start else "wb") as fh:
            fh.seek(start)
            fh.truncate()
            size = start
            while chunk := resp.read1(_CHUNK):
                size += len(chunk)
                if size > room:
                    raise self.budget.exceeded(name, size)
                if self.deadline.expired:
                    break
                fh.write(chunk)
                bar.update(size)
        if self.deadline.expired:
            raise self.too_slow()

    def _verdict(self, total: int | None, framed: bool) -> str | None:
        size = self.part.stat().st_size
        if total is not None:
            if size == total:
                return None
            if size > total:
                self.discard()
            return f"got {size} of {total} bytes"
        if framed:  # chunked transfer encoding: its last chunk proves the end
            return None
        state = container_state(self.part, self.dest.name)
        if state == "complete":
            return None
        if state == "corrupt":
            self.discard()
            return f"{self.dest.name} arrived without a length and fails its own check; restarting from zero"
        if state == "short":
            return f"transfer ended after {size} bytes without a length and {self.dest.name} is incomplete"
        self.discard()
        raise InputError(self.what, f"{self.url} was sent without a length (no Content-Length) and "
                         f"{self.dest.name} has no internal check, so a transfer cut short cannot be detected",
                         "use a GEO mirror (geo.base_url) whose server announces file sizes")

    # -- errors
    def too_slow(self) -> InputError:
        size = self.part.stat().st_size if self.part.exists() else 0
        return InputError(self.what, f"transfer of {self.url} did not finish within geo.transfer_deadline "
                          f"({self.deadline.seconds:g} s; {size} bytes so far)",
                          "rerun to resume it, or raise geo.transfer_deadline for a slow connection")

    def http_error(self, exc: urllib.error.HTTPError) -> str | None:
        """What an HTTP error means: a problem to retry, None (complete), or an exception."""
        exc.close()
        if exc.code == 404:
            raise _NotFound(self.url) from None
        if exc.code == 416:  # the partial may be whole already, else it is no prefix of the file
            size = self.part.stat().st_size if self.part.exists() else 0
            if size and (exc.headers.get("Content-Range") or "").strip() == f"bytes */{size}":
                return self._whole_on_server(size)
            self.discard()
            return "HTTP 416 on resume; restarting from zero"
        if exc.code in (408, 429) or exc.code >= 500:
            return f"HTTP {exc.code}"
        raise InputError(self.what, f"download of {self.url} failed with HTTP {exc.code}",
                         "check the accession and the GEO base URL") from None

    def _whole_on_server(self, size: int) -> str | None:
        """The server says its file has exactly the partial's ``size`` bytes: complete, unless the file
        (which then arrived without a length) fails its own check, i.e. it is damaged at the source."""
        if self._stored().get("total") == size or container_state(self.part, self.dest.name) in ("complete", None):
            return None
        self.discard()
        raise InputError(self.what, f"{self.url} is {size} bytes on the server and {self.dest.name} fails its own "
                         "check there (truncated or corrupted at the source)",
                         "check the GEO mirror (geo.base_url), or narrow the pattern to leave the file out")

    def safe_attempt(self) -> str | None:
        if self.deadline.expired:
            raise self.too_slow()
        try:
            return self.attempt()
        except urllib.error.HTTPError as exc:
            return self.http_error(exc)
        except _Refused as exc:
            raise InputError(self.what, f"refused to follow the redirect of {self.url} to {exc.url}: it {exc.problem}",
                             _refusal_fix(exc.url)) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, IncompleteRead
            if self.deadline.expired:
                raise self.too_slow() from None
            return _one_line(exc)

    def finish(self) -> int:
        size = self.part.stat().st_size
        os.replace(self.part, self.dest)
        self.sidecar.unlink(missing_ok=True)
        self.budget.add(size)
        log.info("downloaded %s (%d bytes)", self.dest.name, size)
        return size


def download(url: str, dest: Path, *, what: str, retries: int = 4, backoff: float = 1.0, timeout: float = 60,
             progress: bool = True, allowed_hosts=None, budget: DownloadBudget | None = None,
             deadline: float = DEFAULT_TRANSFER_DEADLINE) -> int:
    """Download ``url`` to ``dest`` via ``dest.part`` (+ ``dest.part.json``); return the size in bytes.

    ``allowed_hosts`` (default: the host of ``url``) bounds the URL and its redirects; ``budget`` the
    bytes; ``deadline`` the seconds of all attempts together (``timeout`` bounds each network read).
    Attempts wait backoff * 2**(attempt-1) seconds. HTTP 404 raises _NotFound; anything else that
    cannot succeed raises a one-line InputError.
    """
    dest = Path(dest)
    allowed = frozenset(allowed_hosts) if allowed_hosts is not None else frozenset({_host(url)})
    check_url(url, allowed, what=what)
    clock = _Deadline(deadline)
    transfer = _Transfer(url, dest, what, _opener(allowed, clock), clock,
                         budget or DownloadBudget(DEFAULT_MAX_DOWNLOAD_BYTES, what), timeout, progress)
    problem = ""
    try:
        for attempt in range(retries + 1):
            if attempt:
                delay = min(backoff * 2 ** (attempt - 1), clock.remaining())
                log.info("%s: attempt %d/%d failed (%s); retrying in %.2g s", dest.name, attempt, retries + 1,
                         problem, delay)
                time.sleep(delay)
            problem = transfer.safe_attempt()
            if problem is None:
                return transfer.finish()
    finally:
        clock.cancel()
    attempts = f"{retries + 1} attempt{'s' if retries else ''}"
    raise InputError(what, f"download of {url} stayed incomplete after {attempts} ({problem})",
                     f"check the network or the GEO mirror (base_url) and rerun; {transfer.part.name} is resumed")


# --------------------------------------------------------------------------------------- parsing
def _parse_soft(path: Path, accession: str, *, dataset: str):
    import GEOparse

    try:
        obj = GEOparse.get_GEO(filepath=str(path), geotype=accession[:3], silent=True)
    except GEOparse.GEOparse.NoEntriesException:
        return None  # NCBI answers an unknown GSM with a page that holds no SOFT entry
    except (*CORRUPT_ERRORS, StopIteration, AssertionError) as exc:
        raise InputError(_what(dataset, path), f"cannot be parsed as GEO SOFT ({_one_line(exc)})",
                         REDOWNLOAD_FIX) from exc
    if obj.name != accession:
        return None  # a SOFT of some other record
    return obj


def _samples_of(obj) -> dict:
    return dict(obj.gsms) if hasattr(obj, "gsms") else {obj.name: obj}


def _file_name(url: str) -> str:
    """The last segment of a URL's path (query and fragment left out)."""
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError:
        path = url
    return path.rstrip("/").rsplit("/", 1)[-1]


def _supplementary(obj, base_url: str) -> list[dict]:
    """Supplementary files of a GSE (its own and its samples') or of a GSM, URLs mapped onto base_url."""
    owners = ([("", obj.metadata)] if hasattr(obj, "gsms") else []) + \
        [(name, gsm.metadata) for name, gsm in _samples_of(obj).items()]
    files = []
    for sample, meta in owners:
        for key in sorted(k for k in meta if k.startswith("supplementary_file")):
            for url in meta[key]:
                url = url.strip()
                if not url or url.upper() == "NONE" or "/" not in url:
                    continue
                files.append({"name": _file_name(url), "sample": sample, "url": map_geo_url(url, base_url)})
    return files


def _check_sample_names(obj, what: str) -> None:
    """Sample names end up in file names and cell names: each must be a GSM accession, nothing else."""
    for name in _samples_of(obj):
        if not _SAMPLE_RE.fullmatch(name):
            raise InputError(what, f"the SOFT text names a sample {_shown(name)} that is not a GEO sample "
                             "accession (GSM and digits)", "check that geo.base_url points at GEO or a faithful mirror")


def _unsafe_name(name: str) -> bool:
    """A supplementary file name must be a plain basename that none of the download's own files uses."""
    return (not _FILE_NAME_RE.fullmatch(name) or ".." in name or name in _RESERVED_NAMES
            or name.endswith((".part", ".part.json", ".extracted", ".tmp")))


def _check_file_name(f: dict, what: str) -> None:
    if _unsafe_name(f["name"]):
        raise InputError(what, f"supplementary file {_shown(f['url'], 160)} has the unsafe file name "
                         f"{_shown(f['name'])} (a plain name of letters, digits and ._+- is required, not one "
                         "of the download's own files)",
                         "narrow the pattern to leave it out, or check that geo.base_url points at GEO")


def _column_name(key: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", key.strip().lower()).strip("_") or "characteristic"


def _sample_table(obj) -> pd.DataFrame:
    """One row per GSM: title and the 'key: value' characteristics (keys normalized to snake_case)."""
    rows = []
    for name, gsm in _samples_of(obj).items():
        row = {"sample": name, "sample_title": " ".join(gsm.metadata.get("title", [""]))}
        for line in gsm.metadata.get("characteristics_ch1", []):
            key, sep, value = line.partition(":")
            col = _column_name(key) if sep else "characteristics"
            if col in ("sample", "sample_title"):
                col = f"char_{col}"
            row[col] = value.strip() if sep else line.strip()
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["sample", "sample_title"])


def list_geo_supplementary(soft_path, *, accession: str | None = None, base_url: str = GEO_BASE,
                           dataset: str = "") -> list[dict]:
    """Parse a SOFT file and list its supplementary files as dicts (name, sample, url on base_url)."""
    soft_path = Path(soft_path)
    if accession is None:
        m = re.match(r"(GSE|GSM)\d+", soft_path.name)
        if not m:
            raise ValueError(f"cannot tell the accession from the file name {soft_path.name}; pass accession=")
        accession = m[0]
    obj = _parse_soft(soft_path, accession, dataset=dataset or accession)
    return _supplementary(obj, base_url) if obj is not None else []


# ----------------------------------------------------------------------------------- fetch_geo
@dataclass
class _Fetch:
    """Where one dataset's files go: complete ones into ``destdir`` at the end, partial ones in ``cache``."""

    what: str
    destdir: Path
    cache: Path
    allowed: frozenset
    budget: DownloadBudget
    options: dict

    def obtain(self, url: str, name: str) -> tuple[Path, int]:
        """A complete local copy of ``url`` named ``name``: one already in place, else downloaded into the cache."""
        for folder in (self.destdir, self.cache):
            path = folder / name
            if path.is_file():
                size = path.stat().st_size
                log.info("%s already downloaded (%d bytes)", name, size)
                if size > self.budget.room():
                    raise self.budget.exceeded(name, size)
                self.budget.add(size)
                return path, size
        self.cache.mkdir(parents=True, exist_ok=True)
        path = self.cache / name
        size = download(url, path, what=self.what, allowed_hosts=self.allowed, budget=self.budget, **self.options)
        return path, size

    def publish(self, names: list[str]) -> None:
        """Move the complete files from the cache into ``destdir`` (each appears there whole or not at all)."""
        self.destdir.mkdir(parents=True, exist_ok=True)
        for name in names:
            src = self.cache / name
            if src.is_file():
                _move_whole(src, self.destdir / name)

    def clean(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        if self.cache.parent.name == Path(DEFAULT_CACHE_DIR).name:
            try:
                self.cache.parent.rmdir()  # the shared default cache root, once no dataset uses it
            except OSError:
                pass


def _move_whole(src: Path, dest: Path) -> None:
    try:
        os.replace(src, dest)
    except OSError:  # another file system: copy beside the target, then rename
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        src.unlink()


def _checked_accession(accession: str, what: str) -> str:
    if not _ACC_RE.fullmatch(accession):
        raise InputError(what, "is not a GEO series or sample accession",
                         "give a GSE or GSM accession (e.g. GSE132188) in the dataset registry")
    return accession


def _choose(files: list[dict], pattern: str, what: str) -> list[dict]:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(what, f"invalid file pattern '{pattern}' ({exc})", "fix the regular expression") from exc
    if not files:
        raise InputError(what, "lists no supplementary files", "choose a series that provides count matrices")
    chosen, seen = [], set()
    for f in files:
        if regex.search(f["name"]) and f["name"] not in seen:
            seen.add(f["name"])
            chosen.append(f)
    if not chosen:
        names = sorted({f["name"] for f in files})
        shown = ", ".join(names[:15]) + (f", ... ({len(names) - 15} more)" if len(names) > 15 else "")
        raise InputError(what, f"no supplementary file matches pattern '{pattern}' (available: {shown})",
                         "change the pattern in the dataset registry to select the count files")
    return chosen


def _fetch_soft(job: _Fetch, accession: str, url: str, name: str, dataset: str):
    """The parsed SOFT record of ``accession`` and its local path."""
    missing = InputError(job.what, f"accession does not exist ({url} answered HTTP 404)",
                         "check the accession in the dataset registry and the GEO base URL")
    try:
        path, _ = job.obtain(url, name)
    except _NotFound:
        raise missing from None
    obj = _parse_soft(path, accession, dataset=dataset)
    if obj is None:
        path.unlink()
        raise InputError(job.what, f"accession does not exist ({url} returned no {accession} record)",
                         "check the accession in the dataset registry and the GEO base URL")
    return obj


def fetch_geo(accession: str, destdir, *, dataset: str, pattern: str = r".*", base_url: str = GEO_BASE,
              retries: int = 4, backoff: float = 1.0, timeout: float = 60, progress: bool = True,
              query_url: str | None = None, cache_dir=None, allowed_hosts=(),
              max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
              transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE) -> list[Path]:
    """Download the supplementary files of a GEO series or sample that ``pattern`` selects.

    ``pattern`` is a regular expression searched (``re.search``) in each file name. Downloads go through
    ``cache_dir`` (default: ``{destdir}/../.partial/{destdir name}``), where partial files survive a failed
    run and are resumed; complete files move into ``destdir`` once all are there. Files already in
    ``destdir`` or complete in the cache are not downloaded again. Only URLs on the hosts of ``base_url``
    and ``query_url`` or in ``allowed_hosts`` are fetched; ``max_download_bytes`` caps the dataset's
    bytes, ``transfer_deadline`` the seconds per file. Writes ``{destdir}/samples.tsv`` (title and
    characteristics per GSM) and, last, ``{destdir}/manifest.tsv`` (file, sample, url, bytes). Returns
    the downloaded paths.
    """
    accession = str(accession).strip().upper()
    what = _what(dataset, f"GEO {_shown(accession) if not _ACC_RE.fullmatch(accession) else accession}")
    _checked_accession(accession, what)
    destdir = Path(destdir)
    cache = Path(cache_dir) if cache_dir is not None else destdir.parent / ".partial" / destdir.name
    (destdir / "manifest.tsv").unlink(missing_ok=True)  # its presence must mean: this run completed
    url, soft_name = soft_location(accession, base_url, query_url)
    job = _Fetch(what, destdir, cache, allowed_hosts_for(base_url, query_url, allowed_hosts),
                 DownloadBudget(max_download_bytes, what),
                 dict(retries=retries, backoff=backoff, timeout=timeout, progress=progress, deadline=transfer_deadline))
    obj = _fetch_soft(job, accession, url, soft_name, dataset)
    _check_sample_names(obj, what)
    chosen = _choose(_supplementary(obj, base_url), pattern, what)
    for f in chosen:  # every name and URL is checked before the first supplementary file is fetched
        _check_file_name(f, what)
        check_url(f["url"], job.allowed, what=what)
    log.info("%s: %d supplementary files match '%s'", accession, len(chosen), pattern)

    rows = []
    for f in chosen:
        try:
            _, size = job.obtain(f["url"], f["name"])
        except _NotFound:
            raise InputError(what, f"supplementary file {f['url']} is listed but answered HTTP 404",
                             "check the GEO base URL (mirror) or narrow the pattern") from None
        rows.append({"file": f["name"], "sample": f["sample"], "url": f["url"], "bytes": size})
    job.publish([soft_name] + [r["file"] for r in rows])
    write_tsv_atomic(_sample_table(obj).fillna(""), destdir / "samples.tsv")  # a characteristic a GSM lacks: empty
    write_tsv_atomic(pd.DataFrame(rows, columns=MANIFEST_COLUMNS), destdir / "manifest.tsv")
    job.clean()
    return [destdir / r["file"] for r in rows]


# ------------------------------------------------------------------------------- list_geo_files
LISTING_COLUMNS = ["file", "sample", "url", "bytes", "selected", "note"]
_NO_HEAD = (405, 501)  # the server does not do HEAD: ask for one byte instead


def remote_size(url: str, *, allowed_hosts=None, timeout: float = 60, method: str = "HEAD") -> int | None:
    """Size in bytes of a remote file without fetching it: a HEAD request, or (``method="GET"``, for servers
    that refuse HEAD) a GET of its first byte (``Range: bytes=0-0``; the size is the Content-Range total).

    None when the answer does not tell. The URL and its redirects must stay on ``allowed_hosts`` (default:
    the URL's host). Errors propagate: ``urllib.error.HTTPError`` (405/501: no HEAD), ``OSError``, ``_Refused``.
    """
    allowed = frozenset(allowed_hosts) if allowed_hosts is not None else frozenset({_host(url)})
    problem = _url_problem(url, allowed)
    if problem:
        raise _Refused(url, problem)
    clock = _Deadline(2 * timeout)
    headers = {"User-Agent": "livaebench", **({"Range": "bytes=0-0"} if method == "GET" else {})}
    try:
        request = urllib.request.Request(url, headers=headers, method=method)
        with _opener(allowed, clock).open(request, timeout=timeout) as resp:  # the body is never read
            if resp.status == 206:
                rng = _content_range(resp.headers.get("Content-Range"))
                return rng[2] if rng else None
            return _content_length(resp)
    finally:
        clock.cancel()


def list_geo_files(accession: str, *, dataset: str, pattern: str = r".*", base_url: str = GEO_BASE,
                   retries: int = 4, backoff: float = 1.0, timeout: float = 60, query_url: str | None = None,
                   allowed_hosts=(), sizes: bool = True, max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
                   transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE, cache_dir=None) -> pd.DataFrame:
    """What :func:`fetch_geo` would download, downloading only the SOFT text (into a temporary folder).

    One row per supplementary file of the series and its samples (columns ``LISTING_COLUMNS``): ``file``,
    ``sample`` (GSM; empty for a series file), ``url`` (on ``base_url``), ``bytes``, ``selected`` (``yes``
    when ``pattern`` selects it exactly as fetch_geo does: searched in the name, first file of a name) and
    ``note`` (why a selected file would be refused, a duplicate name, why a size is missing). GEO's SOFT
    text carries no sizes: with ``sizes`` each file costs one HEAD request (servers that refuse HEAD get a
    one-byte ranged GET instead); a failed probe leaves ``bytes`` empty with the reason in ``note``. Files on
    hosts that may not be contacted are never probed. Takes the keyword arguments of :func:`fetch_options`
    (``cache_dir`` is not used: the SOFT text is not kept).
    """
    import tempfile

    accession = str(accession).strip().upper()
    what = _what(dataset, f"GEO {_shown(accession) if not _ACC_RE.fullmatch(accession) else accession}")
    _checked_accession(accession, what)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(what, f"invalid file pattern '{pattern}' ({exc})", "fix the regular expression") from exc
    url, soft_name = soft_location(accession, base_url, query_url)
    allowed = allowed_hosts_for(base_url, query_url, allowed_hosts)
    with tempfile.TemporaryDirectory(prefix="geo_soft_") as tmp:
        job = _Fetch(what, Path(tmp) / "soft", Path(tmp) / "partial", allowed,
                     DownloadBudget(max_download_bytes, what),
                     dict(retries=retries, backoff=backoff, timeout=timeout, progress=False, deadline=transfer_deadline))
        obj = _fetch_soft(job, accession, url, soft_name, dataset)
        _check_sample_names(obj, what)
    rows, seen, method = [], set(), "HEAD"
    for f in _supplementary(obj, base_url):
        notes, size = [], None
        matches = bool(regex.search(f["name"]))
        selected = matches and f["name"] not in seen
        if selected:
            seen.add(f["name"])
        elif matches:
            notes.append("same name as a file listed earlier (fetch_geo takes that one)")
        refused = _url_problem(f["url"], allowed) or ("has an unsafe file name" if _unsafe_name(f["name"]) else None)
        if refused and selected:
            notes.append(f"fetch_geo would refuse it: it {refused}")
        if sizes and not _url_problem(f["url"], allowed):
            for _ in range(2):
                try:
                    size = remote_size(f["url"], allowed_hosts=allowed, timeout=timeout, method=method)
                    if size is None:
                        notes.append("the server does not tell the size")
                except urllib.error.HTTPError as exc:
                    exc.close()
                    if method == "HEAD" and exc.code in _NO_HEAD:
                        method = "GET"
                        continue
                    notes.append(f"size unknown (HTTP {exc.code}{': not on the server' if exc.code == 404 else ''})")
                except _Refused as exc:
                    notes.append(f"size unknown (redirect to {exc.url} refused: it {exc.problem})")
                except (OSError, http.client.HTTPException) as exc:
                    notes.append(f"size unknown ({_one_line(exc)})")
                break
        rows.append({"file": f["name"], "sample": f["sample"], "url": f["url"], "bytes": size,
                     "selected": "yes" if selected else "no", "note": "; ".join(notes)})
    table = pd.DataFrame(rows, columns=LISTING_COLUMNS)
    table["bytes"] = table["bytes"].astype("Int64")
    return table


# -------------------------------------------------------------------------------------- archives
_HOSTILE_FIX = ("do not use this file: check that geo.base_url points at GEO or a trusted mirror, "
                "or leave the file out with the registry pattern")


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why extracting ``member`` would be unsafe, or None."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in parts:
        return "climbs out of the extraction folder ('..')"
    if "\\" in name:
        return "has a backslash in its path"
    if member.issym() or member.islnk():
        return f"is a {'symbolic' if member.issym() else 'hard'} link (to {_shown(member.linkname)})"
    if member.isdev():
        return "is a device file or pipe"
    if member.issparse() or not (member.isreg() or member.isdir()):
        return "is not a regular file or folder"
    return None


def _safe_members(tar: tarfile.TarFile, what: str, max_bytes: int, max_members: int) -> list[tarfile.TarInfo]:
    """All members of ``tar``, refusing unsafe ones and archives over the member/size caps."""
    members, total = [], 0
    for member in tar:
        problem = _member_problem(member)
        if problem:
            raise InputError(what, f"is an unsafe archive: member {_shown(member.name)} {problem}", _HOSTILE_FIX)
        members.append(member)
        total += member.size if member.isreg() else 0
        if len(members) > max_members:
            raise InputError(what, f"is an archive of more than {max_members} members (geo.max_archive_members)",
                             "raise geo.max_archive_members if the archive is genuine, or leave it out with the "
                             "registry pattern")
        if total > max_bytes:
            raise InputError(what, f"is an archive that extracts to more than {max_bytes} bytes "
                             "(geo.max_extract_bytes)", "raise geo.max_extract_bytes if the archive is genuine, "
                             "or leave it out with the registry pattern")
    return members


def _extract_tar(path: Path, *, dataset: str, max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
                 max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS) -> list[Path]:
    """Extract a (GEO _RAW) tar next to itself, atomically and within the caps; return its regular files."""
    out = path.with_name(path.name + ".extracted")
    what = _what(dataset, path)
    if not out.is_dir():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.extracting")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(path, "r:*") as tar:
                members = _safe_members(tar, what, max_bytes, max_members)
                # The "data" filter refuses what _member_problem refuses, as a second line of defence.
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **extra)
        except InputError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(what, f"is a corrupted or truncated tar ({_one_line(exc)})", REDOWNLOAD_FIX) from exc
        os.replace(tmp, out)
    return sorted(p for p in out.rglob("*") if p.is_file())


def _check_expansion(path: Path, *, dataset: str, max_bytes: int) -> None:
    """A gzip file must decompress whole and to at most ``max_bytes`` (no gzip bomb)."""
    what = _what(dataset, path)
    try:
        size = gunzipped_size(path, limit=max_bytes)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise InputError(what, f"is a corrupted or truncated gzip file ({_one_line(exc)})", REDOWNLOAD_FIX) from exc
    if size > max_bytes:
        raise InputError(what, f"decompresses to more than {max_bytes} bytes (geo.max_extract_bytes; a gzip bomb "
                         "or an unexpectedly large file)", "raise geo.max_extract_bytes if the file is genuine, "
                         "or leave it out with the registry pattern")


# -------------------------------------------------------------------------------------- assembly
def _sample_of(path: Path, hint: str) -> str:
    m = _GSM_RE.match(path.name)
    return m[1] if m else hint


def _piece_paths(files) -> list[Path]:
    return list(files.values()) if isinstance(files, dict) else [files]


def _read_piece(kind: str, files, *, dataset: str, orientation: str, max_extract_bytes: int) -> ad.AnnData:
    for path in _piece_paths(files):
        if path.name.lower().endswith(".gz"):
            _check_expansion(path, dataset=dataset, max_bytes=max_extract_bytes)
    if kind == "10x":
        return read_10x_triplet(files["matrix"], files["barcodes"], files["features"], dataset=dataset,
                                corrupt_fix=REDOWNLOAD_FIX)
    if kind == "h5":
        return _read_10x_h5(files, dataset=dataset, corrupt_fix=REDOWNLOAD_FIX)
    if kind == "h5ad":
        return read_h5ad_checked(files, dataset=dataset)
    return _read_dense(files, dataset=dataset, orientation=orientation, corrupt_fix=REDOWNLOAD_FIX)


def assemble_geo(destdir, *, dataset: str, orientation: str = "auto",
                 max_extract_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
                 max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS) -> ad.AnnData:
    """Assemble the files listed in ``{destdir}/manifest.tsv`` into one raw-count AnnData.

    Recognized: 10x triplets (``[prefix]barcodes/features|genes/matrix`` files, grouped by prefix), 10x
    ``.h5``, ``.h5ad`` and dense CSV/TSV/TXT tables (gzipped or not); tars (GEO's ``_RAW.tar``) are
    extracted first. Other files are skipped (logged). Matrices of samples are concatenated (outer join
    of features, missing = 0) with ``obs['sample']`` = the GSM id (from the file name, else the manifest)
    and cell names prefixed by it; the GSM characteristics in ``samples.tsv`` become obs columns. Several
    series-level matrices are concatenated with ``obs['sample']`` = the file name. ``orientation``
    applies to dense tables (see ``io.decide_orientation``). Archives are refused when unsafe (links,
    devices, absolute or '..' paths) or over ``max_archive_members`` / ``max_extract_bytes``; a gzip file
    that decompresses to more than ``max_extract_bytes`` is refused too. Values are not checked here:
    call ``validate_counts``.
    """
    destdir = Path(destdir)
    manifest_path = destdir / "manifest.tsv"
    if not manifest_path.is_file():
        raise InputError(_what(dataset, manifest_path), "missing: the GEO download did not finish",
                         "rerun the download step (fetch_geo)")
    manifest = pd.read_csv(manifest_path, sep="\t", dtype=str, keep_default_na=False)
    listed = set(manifest["file"])
    candidates: list[tuple[Path, str]] = []
    for row in manifest.itertuples():
        if _unsafe_name(row.file):
            raise InputError(_what(dataset, manifest_path), f"lists the unsafe file name {_shown(row.file)}",
                             f"delete {manifest_path} and rerun to download again")
        path = destdir / row.file
        if not path.is_file():
            raise InputError(_what(dataset, path), "is listed in manifest.tsv but missing",
                             f"delete {manifest_path} and rerun to download again")
        # A file damaged on disk after its download can still parse (a tar cut at a member boundary
        # just looks shorter), so the size recorded at download time is checked first.
        if row.bytes and path.stat().st_size != int(row.bytes):
            raise InputError(_what(dataset, path),
                             f"has {path.stat().st_size} bytes but {row.bytes} were downloaded (truncated or corrupted)",
                             REDOWNLOAD_FIX)
        if _TAR_RE.search(path.name):
            for member in _extract_tar(path, dataset=dataset, max_bytes=max_extract_bytes,
                                       max_members=max_archive_members):
                if member.name not in listed:  # also downloaded on its own: count it once
                    candidates.append((member, _sample_of(member, row.sample)))
        else:
            candidates.append((path, _sample_of(path, row.sample)))

    sample_of = dict(candidates)
    pieces: list[tuple[str, str, object, Path]] = []  # (sample, kind, files, file that names the piece)
    for (_, prefix), parts in group_10x_files(sample_of).items():
        if len(parts) != 3:
            have = ", ".join(p.name for p in parts.values())
            raise InputError(_what(dataset, destdir), f"incomplete 10x triplet '{prefix}*' (only {have})",
                             "widen the pattern so barcodes, features/genes and matrix files are all selected")
        pieces.append((sample_of[parts["matrix"]], "10x", parts, parts["matrix"]))
    tenx = {p for _, _, parts, _ in pieces for p in parts.values()}
    for path, sample in candidates:
        if path in tenx:
            continue
        name = path.name.lower()
        kind = ("h5" if name.endswith(".h5") else "h5ad" if name.endswith(".h5ad")
                else "dense" if _DENSE_RE.search(name) else None)
        if kind is None:
            log.info("%s: skipping %s (not a count-matrix format)", dataset, path.name)
            continue
        pieces.append((sample, kind, path, path))
    if not pieces:
        raise InputError(_what(dataset, destdir),
                         f"none of the downloaded files is a count matrix ({', '.join(sorted(listed))})",
                         "change the pattern to select 10x, .h5, .h5ad or CSV/TSV count files")
    per_sample = [p for p in pieces if p[0]]
    if per_sample and len(per_sample) != len(pieces):
        raise InputError(_what(dataset, destdir), "both per-sample and series-level matrices were selected",
                         "narrow the pattern to one of them, so cells are not counted twice")

    adatas, keys = [], []
    for sample, kind, files, named_by in sorted(pieces, key=lambda p: (p[0], str(p[3]))):
        a = _read_piece(kind, files, dataset=dataset, orientation=orientation, max_extract_bytes=max_extract_bytes)
        a.X = sp.csr_matrix(a.X)
        a.obs = a.obs.iloc[:, :0]  # per-file annotations differ; characteristics come from samples.tsv
        key = sample or named_by.name
        adatas.append(a)
        keys.append(key)
    if len(adatas) == 1 and not per_sample:
        adata = adatas[0]
    else:
        if len(set(keys)) != len(keys):
            raise InputError(_what(dataset, destdir), "more than one count matrix per sample was selected",
                             "narrow the pattern so each sample has one matrix")
        for a, key in zip(adatas, keys):
            a.obs_names = [f"{key}_{c}" for c in a.obs_names]
            a.var_names_make_unique()
        adata = ad.concat(adatas, join="outer", fill_value=0, merge="first", label="sample", keys=keys,
                          index_unique=None)
        adata.X = sp.csr_matrix(adata.X)
    samples_path = destdir / "samples.tsv"
    if per_sample and samples_path.is_file():
        # empty = the GSM lacks that characteristic: missing (NaN), not a category; "NA" as written stays text
        table = pd.read_csv(samples_path, sep="\t", dtype=str, keep_default_na=False,
                            na_values=[""]).set_index("sample")
        joined = table.reindex(adata.obs["sample"].astype(str))
        for col in joined.columns:
            if col not in adata.obs.columns:
                adata.obs[col] = pd.Categorical(joined[col].to_numpy())
    if "sample" in adata.obs:
        adata.obs["sample"] = adata.obs["sample"].astype(str).astype("category")
    adata.uns["provenance"] = {"source": "GEO", "files": list(manifest["file"]), "urls": list(manifest["url"])}
    log.info("%s: assembled %d cells x %d features from %d matrices", dataset, adata.n_obs, adata.n_vars,
             len(adatas))
    return adata
