"""Downloaded containers (gzip, tar, HDF5): their own completeness checks, safe tar extraction and the
expansion caps that stop archive and gzip bombs.

A container's own check (gzip CRC, the tar end-of-archive blocks, HDF5's stored end of file) tells a
damaged file from an intact one. It does not prove a transfer complete: a multi-member gzip (bgzip) cut
at a member boundary, or a tar cut after a member, still reads as a smaller whole. The download
(:mod:`.http_transfer`) therefore establishes every file's length from the server and uses these checks
only to find files damaged at the source.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import InputError
from .untrusted import has_control, one_line, shown, what

REDOWNLOAD_FIX = "delete it and rerun to download again"
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems
PATH_MAX = 4096
HOSTILE_FIX = ("do not use this file: check that geo.base_url points at GEO or a trusted mirror, "
               "or leave the file out with the registry pattern")


# ---------------------------------------------------------------------------------- own checks
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
    """A plain tar is whole by its own framing when the two zero blocks that end an archive follow its last member."""
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


# ------------------------------------------------------------------------------- tar extraction
def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why extracting ``member`` would be unsafe, or None."""
    name = member.name
    parts = PurePosixPath(name).parts
    if has_control(name):
        return "has control characters in its name"
    if any(len(p.encode("utf-8", "surrogateescape")) > NAME_MAX for p in parts) or len(name) > PATH_MAX:
        return f"has a name longer than the file system allows ({NAME_MAX} bytes per name, {PATH_MAX} per path)"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in parts:
        return "climbs out of the extraction folder ('..')"
    if "\\" in name:
        return "has a backslash in its path"
    if member.issym() or member.islnk():
        return f"is a {'symbolic' if member.issym() else 'hard'} link (to {shown(member.linkname)})"
    if member.isdev():
        return "is a device file or pipe"
    if member.issparse() or not (member.isreg() or member.isdir()):
        return "is not a regular file or folder"
    return None


def _safe_members(tar: tarfile.TarFile, subject: str, max_bytes: int, max_members: int) -> list[tarfile.TarInfo]:
    """All members of ``tar``, refusing unsafe ones and archives over the member/size caps."""
    members, total = [], 0
    for member in tar:
        problem = _member_problem(member)
        if problem:
            raise InputError(subject, f"is an unsafe archive: member {shown(member.name)} {problem}", HOSTILE_FIX)
        members.append(member)
        total += member.size if member.isreg() else 0
        if len(members) > max_members:
            raise InputError(subject, f"is an archive of more than {max_members} members (geo.max_archive_members)",
                             "raise geo.max_archive_members if the archive is genuine, or leave it out with the "
                             "registry pattern")
        if total > max_bytes:
            raise InputError(subject, f"is an archive that extracts to more than {max_bytes} bytes "
                             "(geo.max_extract_bytes)", "raise geo.max_extract_bytes if the archive is genuine, "
                             "or leave it out with the registry pattern")
    return members


def extract_tar(path: Path, *, dataset: str, max_bytes: int, max_members: int) -> list[Path]:
    """Extract a (GEO _RAW) tar next to itself, atomically and within the caps; return its regular files."""
    out = path.with_name(path.name + ".extracted")
    subject = what(dataset, path)
    if not out.is_dir():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.extracting")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(path, "r:*") as tar:
                members = _safe_members(tar, subject, max_bytes, max_members)
                # The "data" filter refuses what _member_problem refuses, as a second line of defence.
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **extra)
        except InputError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(subject, f"is a corrupted or truncated tar ({one_line(exc)})", REDOWNLOAD_FIX) from exc
        os.replace(tmp, out)
    return sorted(p for p in out.rglob("*") if p.is_file())


def check_expansion(path: Path, *, dataset: str, max_bytes: int) -> None:
    """A gzip file must decompress whole and to at most ``max_bytes`` (no gzip bomb)."""
    subject = what(dataset, path)
    try:
        size = gunzipped_size(path, limit=max_bytes)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise InputError(subject, f"is a corrupted or truncated gzip file ({one_line(exc)})", REDOWNLOAD_FIX) from exc
    if size > max_bytes:
        raise InputError(subject, f"decompresses to more than {max_bytes} bytes (geo.max_extract_bytes; a gzip bomb "
                         "or an unexpectedly large file)", "raise geo.max_extract_bytes if the file is genuine, "
                         "or leave it out with the registry pattern")
