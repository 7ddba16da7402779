"""Member names of a remote archive without downloading it, for the layout choice (:mod:`.geo_layout`).

GEO keeps a ``filelist.txt`` beside a series' ``_RAW.tar`` (one small file naming every member and its
size); where it is missing, an uncompressed tar still tells its members through its 512-byte headers,
read one ranged request each while the data between them is skipped. A compressed tar tells nothing
without being downloaded: its members stay unknown.
"""
from __future__ import annotations

import http.client
import logging
import re
import tarfile
import urllib.request

from ..errors import InputError
from .geo_layout import Entry, parse_filelist
from .http_opener import Deadline, opener
from .http_transfer import _USER_AGENT, NotFound, _content_range
from .untrusted import escaped, one_line
from .url_policy import url_problem

log = logging.getLogger("livaebench.data")
MAX_INDEXED_MEMBERS = 5000  # one ranged request per member: beyond this, the members stay unknown


def _read_range(director, url: str, start: int, length: int, timeout: float) -> bytes | None:
    """Bytes start..start+length-1 of ``url`` by a Range request; None when the server does not answer
    with exactly that range (the whole file is never read)."""
    request = urllib.request.Request(url, headers={**_USER_AGENT, "Range": f"bytes={start}-{start + length - 1}"})
    with director.open(request, timeout=timeout) as resp:
        rng = _content_range(resp.headers.get("Content-Range"))
        if resp.status != 206 or rng is None or rng[0] != start:
            return None
        return resp.read(length)


def tar_index(url: str, *, allowed, timeout: float = 60, max_members: int = MAX_INDEXED_MEMBERS):
    """[(member name, size)] of an uncompressed tar on a server, from its 512-byte member headers (one
    ranged request each, the data skipped); None when they cannot be read that way."""
    clock = Deadline(max(60.0, 4 * timeout))
    director = opener(allowed, clock)
    members, offset, long_name = [], 0, None
    try:
        for _ in range(2 * max_members + 2):
            block = _read_range(director, url, offset, 512, timeout)
            if block is None:
                return None
            if len(block) < 512:
                return members  # a tar without its end blocks
            if not block.strip(b"\0"):
                return members  # the end-of-archive blocks
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE) and 0 < info.size <= 65536:
                data = _read_range(director, url, offset + 512, info.size, timeout)
                if data is None:
                    return None
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                else:
                    m = re.search(rb"\d+ path=([^\n]*)\n", data)
                    long_name = m[1].decode("utf-8", "surrogateescape") if m else None
            elif info.isreg():
                members.append((long_name or info.name, info.size))
                long_name = None
                if len(members) > max_members:
                    return None
            offset += 512 + -(-info.size // 512) * 512
    except (tarfile.TarError, OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        clock.cancel()
    return None


class RemoteMembers:
    """Member names of listed archives, for the layout choice: GEO's ``filelist.txt`` in the archive's
    folder (downloaded through ``job``), else the index of an uncompressed tar read by ranged requests."""

    def __init__(self, job, files: dict[str, dict], timeout: float):
        """``job``: geo's fetch job (its ``what``, ``allowed`` origins and ``obtain(url, name)``);
        ``files``: listed name -> listed file (its ``url``)."""
        self.job, self.files, self.timeout = job, files, timeout
        self.lists: dict[str, dict] = {}

    def _filelist(self, folder: str) -> dict:
        if folder not in self.lists:
            self.lists[folder] = {}
            name = f"filelist{len(self.lists) if len(self.lists) > 1 else ''}.txt"
            try:
                path, _ = self.job.obtain(f"{folder}/filelist.txt", name)
                self.lists[folder] = parse_filelist(path.read_text(encoding="utf-8", errors="replace"))
                log.info("%s: member names from %s/filelist.txt", self.job.what, escaped(folder, 200))
            except (NotFound, InputError, OSError) as exc:
                log.info("%s: no file list in %s (%s)", self.job.what, escaped(folder, 200),
                         "HTTP 404" if isinstance(exc, NotFound) else one_line(exc))
        return self.lists[folder]

    def __call__(self, entry: Entry):
        url = self.files[entry.name]["url"]
        if url_problem(url, self.job.allowed):
            return None
        listed = self._filelist(url.rsplit("/", 1)[0]).get(entry.name)
        if listed is not None:
            return listed
        if entry.name.lower().endswith(".tar"):
            found = tar_index(url, allowed=self.job.allowed, timeout=self.timeout)
            if found is not None:
                log.info("%s: member names of %s from its tar index", self.job.what, escaped(entry.name))
            return found
        return None


