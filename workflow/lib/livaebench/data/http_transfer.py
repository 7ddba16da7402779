"""One file over HTTP(S), resumable and proven complete, within a byte budget and a deadline.

- The file is written to ``{dest}.part`` next to a JSON sidecar holding the remote file's identity
  (URL, ETag, Last-Modified, total size). A later attempt or run resumes it with ``Range`` +
  ``If-Range``; an answer that cannot be trusted (a 206 without a valid Content-Range, a range that
  starts elsewhere, another ETag) restarts the file from zero.
- A file is accepted only when its length is known and reached: from Content-Length or the
  Content-Range total. A body without a length (ended by the connection, or chunked) gets it from a
  second request (HEAD, else a one-byte ``Range: bytes=0-0``, whose Content-Range names the total); when
  the server tells none, a chunked body that ended with its last chunk is accepted and any other is
  refused. A container's own framing never stands in for the length (a bgzip cut at a member boundary
  reads as whole); it only reveals files damaged at the source.
- URLs and redirects stay on the allowed origins (:mod:`.url_policy`); a timer ends a transfer that runs
  past its deadline, however slowly the server trickles bytes (:mod:`.http_opener`); a budget caps the
  bytes of a dataset. Every string the server chooses is escaped before it is logged (:mod:`.untrusted`).
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .archives import container_state
from .http_opener import Deadline, opener
from .url_policy import Refused, check_url, origin, url_problem
from .untrusted import escaped, one_line

log = logging.getLogger("livaebench.data")

DEFAULT_MAX_DOWNLOAD_BYTES = 50 * 10**9
DEFAULT_TRANSFER_DEADLINE = 6 * 3600.0
PROGRESS_INTERVAL = 30.0  # seconds between progress lines of one transfer
NO_HEAD = (405, 501)  # the server does not do HEAD: ask for one byte instead
_CHUNK = 1 << 16
_USER_AGENT = {"User-Agent": "livaebench"}


class NotFound(Exception):
    """HTTP 404."""


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


# ------------------------------------------------------------------------ what an answer says
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


def probe(director: urllib.request.OpenerDirector, url: str, *, timeout: float, method: str = "HEAD") -> dict:
    """The identity of a remote file (ETag, Last-Modified, total size or None) without its body: a HEAD
    request, or (``method="GET"``, for servers that refuse HEAD) a GET of its first byte, whose
    Content-Range names the total. Errors propagate (``HTTPError`` 405/501: no HEAD)."""
    headers = {**_USER_AGENT, **({"Range": "bytes=0-0"} if method == "GET" else {})}
    request = urllib.request.Request(url, headers=headers, method=method)
    with director.open(request, timeout=timeout) as resp:  # the body is never read
        if resp.status == 206:
            rng = _content_range(resp.headers.get("Content-Range"))
            return _identity(resp, rng[2] if rng else None)
        return _identity(resp, _content_length(resp))


def probe_size(director, url: str, *, timeout: float) -> dict:
    """:func:`probe` by HEAD, then by a one-byte GET when HEAD is refused or tells no size."""
    try:
        answer = probe(director, url, timeout=timeout)
        if answer["total"] is not None:
            return answer
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code not in NO_HEAD:
            raise
    return probe(director, url, timeout=timeout, method="GET")


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


# ---------------------------------------------------------------------------------- one file
@dataclass
class _Transfer:
    """One file: its attempts, its partial file and sidecar, and the checks that make it complete."""

    url: str
    dest: Path
    what: str
    opener: urllib.request.OpenerDirector
    deadline: Deadline
    budget: DownloadBudget
    timeout: float
    progress: bool
    part: Path = field(init=False)
    sidecar: Path = field(init=False)
    shown_url: str = field(init=False)  # the URL as messages and logs show it (escaped)

    def __post_init__(self):
        self.part = self.dest.with_name(self.dest.name + ".part")
        self.sidecar = self.dest.with_name(self.dest.name + ".part.json")
        self.shown_url = escaped(self.url, 300)

    # -- the partial file and what it belongs to
    def _stored(self) -> dict:
        try:
            stored = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) and stored.get("url") == self.url else {}

    def _store(self, identity: dict) -> None:
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps({"url": self.url, **identity}))
        os.replace(tmp, self.sidecar)

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
        self._store(_identity(resp, total))

    # -- one attempt
    def attempt(self) -> str | None:
        """Run one request; None when the file is complete, else why the attempt failed."""
        offset, stored = self._resumable()
        headers = dict(_USER_AGENT)
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if _if_range(stored):
                headers["If-Range"] = _if_range(stored)
        self.deadline.forget()
        with self.opener.open(urllib.request.Request(self.url, headers=headers), timeout=self._timeout()) as resp:
            start, total, problem = self._plan(resp, offset, stored)
            if problem:
                return problem
            self._receive(resp, start, total)
            chunked = bool(getattr(resp, "chunked", False))
        return self._verdict(total) if total is not None else self._verdict_by_probe(chunked)

    def _timeout(self) -> float:
        return max(min(self.timeout, self.deadline.remaining()), 0.01)

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
        log.info("downloading %s (%s bytes%s)", self.shown_url, total if total is not None else "?",
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

    def _verdict(self, total: int) -> str | None:
        size = self.part.stat().st_size
        if size == total:
            return None
        if size > total:
            self.discard()
        return f"got {size} of {total} bytes"

    def _verdict_by_probe(self, chunked: bool) -> str | None:
        """The body came without a length: ask the server for it (HEAD, else one byte by Range) and compare.

        When the server tells none, a chunked body is accepted by HTTP's own framing (a cut connection
        lacks the last chunk, and http.client raises IncompleteRead); a body that ended with the
        connection, which a cut transfer does too, is refused.
        """
        stored = self._stored()
        answer = probe_size(self.opener, self.url, timeout=self._timeout())
        if any(stored.get(k) and answer.get(k) and stored[k] != answer[k] for k in ("etag", "last_modified")):
            self.discard()
            return "the remote file changed while its length was asked; restarting from zero"
        total = answer["total"]
        if total is None and chunked:
            return None
        if total is None:
            self.discard()
            raise InputError(self.what, f"{self.shown_url} was sent without a length (no Content-Length, not "
                             "chunked) and the server tells none (HEAD, or a one-byte Range request), so a transfer "
                             "cut short cannot be told from a whole file",
                             "use a GEO mirror (geo.base_url) whose server announces file sizes")
        self._store({**stored, "total": total})
        log.info("%s: the server sent no length; it gives %d bytes when asked", self.dest.name, total)
        problem = self._verdict(total)
        if problem is None and container_state(self.part, self.dest.name) not in ("complete", None):
            self._damaged_at_source(total)
        return problem

    def _damaged_at_source(self, size: int) -> None:
        self.discard()
        raise InputError(self.what, f"{self.shown_url} is {size} bytes on the server and {self.dest.name} fails "
                         "its own check there (truncated or corrupted at the source)",
                         "check the GEO mirror (geo.base_url), or narrow the pattern to leave the file out")

    # -- errors
    def too_slow(self) -> InputError:
        size = self.part.stat().st_size if self.part.exists() else 0
        return InputError(self.what, f"transfer of {self.shown_url} did not finish within geo.transfer_deadline "
                          f"({self.deadline.seconds:g} s; {size} bytes so far)",
                          "rerun to resume it, or raise geo.transfer_deadline for a slow connection")

    def http_error(self, exc: urllib.error.HTTPError) -> str | None:
        """What an HTTP error means: a problem to retry, None (complete), or an exception."""
        exc.close()
        if exc.code == 404:
            raise NotFound(self.url) from None
        if exc.code == 416:  # the partial may be whole already, else it is no prefix of the file
            size = self.part.stat().st_size if self.part.exists() else 0
            if size and (exc.headers.get("Content-Range") or "").strip() == f"bytes */{size}":
                return self._whole_on_server(size)
            self.discard()
            return "HTTP 416 on resume; restarting from zero"
        if exc.code in (408, 429) or exc.code >= 500:
            return f"HTTP {exc.code}"
        raise InputError(self.what, f"download of {self.shown_url} failed with HTTP {exc.code}",
                         "check the accession and the GEO base URL") from None

    def _whole_on_server(self, size: int) -> str | None:
        """The server says its file has exactly the partial's ``size`` bytes: complete, unless the file
        (which then arrived without a length) fails its own check, i.e. it is damaged at the source."""
        if self._stored().get("total") == size or container_state(self.part, self.dest.name) in ("complete", None):
            return None
        self._damaged_at_source(size)

    def safe_attempt(self) -> str | None:
        if self.deadline.expired:
            raise self.too_slow()
        try:
            return self.attempt()
        except urllib.error.HTTPError as exc:
            return self.http_error(exc)
        except Refused as exc:
            raise exc.error(self.what, self.url) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, IncompleteRead
            if self.deadline.expired:
                raise self.too_slow() from None
            return one_line(exc)

    def finish(self) -> int:
        size = self.part.stat().st_size
        os.replace(self.part, self.dest)
        self.sidecar.unlink(missing_ok=True)
        self.budget.add(size)
        log.info("downloaded %s (%d bytes)", self.dest.name, size)
        return size


def download(url: str, dest: Path, *, what: str, retries: int = 4, backoff: float = 1.0, timeout: float = 60,
             progress: bool = True, allowed=None, budget: DownloadBudget | None = None,
             deadline: float = DEFAULT_TRANSFER_DEADLINE) -> int:
    """Download ``url`` to ``dest`` via ``dest.part`` (+ ``dest.part.json``); return the size in bytes.

    ``allowed`` (origins, default: that of ``url``) bounds the URL and its redirects; ``budget`` the
    bytes; ``deadline`` the seconds of all attempts together (``timeout`` bounds each network read).
    Attempts wait backoff * 2**(attempt-1) seconds. HTTP 404 raises NotFound; anything else that
    cannot succeed raises a one-line InputError.
    """
    dest = Path(dest)
    allowed = frozenset(allowed) if allowed is not None else frozenset({origin(url)} - {None})
    check_url(url, allowed, what=what)
    clock = Deadline(deadline)
    transfer = _Transfer(url, dest, what, opener(allowed, clock), clock,
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
    raise InputError(what, f"download of {transfer.shown_url} stayed incomplete after {attempts} ({problem})",
                     f"check the network or the GEO mirror (base_url) and rerun; {transfer.part.name} is resumed")


def remote_size(url: str, *, allowed=None, timeout: float = 60, method: str = "HEAD") -> int | None:
    """Size in bytes of a remote file without fetching it (:func:`probe`); None when the answer does not tell.

    The URL and its redirects must stay on ``allowed`` origins (default: the URL's). Errors propagate:
    ``urllib.error.HTTPError`` (405/501: no HEAD), ``OSError``, ``Refused``.
    """
    allowed = frozenset(allowed) if allowed is not None else frozenset({origin(url)} - {None})
    problem = url_problem(url, allowed)
    if problem:
        raise Refused(url, problem)
    clock = Deadline(2 * timeout)
    try:
        return probe(opener(allowed, clock), url, timeout=timeout, method=method)["total"]
    finally:
        clock.cancel()
