"""GEO's SOFT text and supplementary listings: where they are, what they list, and which names are safe.

A series (GSE) has a family SOFT file on GEO's FTP-over-HTTPS tree; a sample (GSM) has none there, so
its text comes from the accession query page. GEOparse parses the text (only that: it builds its own
NCBI download URLs, which would make the base URL impossible to change and the download impossible to
test against a mirror). Every supplementary URL GEO writes with its own host is mapped onto the
configured base URL; every file name a server lists must be a plain basename that fits the file system
before anything is fetched.
"""
from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .archives import NAME_MAX, REDOWNLOAD_FIX
from .io import CORRUPT_ERRORS
from .untrusted import escaped, has_control, one_line, shown, what

GEO_BASE = "https://ftp.ncbi.nlm.nih.gov/geo"
# A GSM has no SOFT file on the FTP tree; NCBI serves it from the accession query page.
NCBI_QUERY = "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi"
# GEO writes supplementary URLs with its own host; these prefixes are mapped onto base_url.
_GEO_PREFIXES = ("ftp://ftp.ncbi.nlm.nih.gov/geo", "https://ftp.ncbi.nlm.nih.gov/geo",
                 "http://ftp.ncbi.nlm.nih.gov/geo")
ACC_RE = re.compile(r"(GSE|GSM)\d+")
_SAMPLE_RE = re.compile(r"GSM\d+")
# A supplementary file name becomes a path: a plain basename of safe characters, no leading dot.
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_RESERVED_NAMES = {"manifest.tsv", "samples.tsv"}  # written by fetch_geo itself
# The longest name the download derives from a file name: ".{name}.{pid}.extracting" (pid <= 7 digits).
MAX_NAME_BYTES = NAME_MAX - len("..4194304.extracting")


def geo_range_dir(accession: str) -> str:
    """GEO groups accessions in directories named after all but the last three digits: GSE132188 -> GSE132nnn."""
    return re.sub(r"\d{1,3}$", "nnn", accession)


def map_geo_url(url: str, base_url: str) -> str:
    """Rewrite a URL on GEO's own host onto ``base_url`` (other URLs are returned unchanged)."""
    for prefix in _GEO_PREFIXES:
        if url.startswith(prefix + "/"):
            return base_url.rstrip("/") + url[len(prefix):]
    return url


def query_page(base_url: str, query_url: str | None = None) -> str:
    """The accession query page: ``query_url`` when given, NCBI's for GEO's own base URL, else
    ``{base_url}/query/acc.cgi`` (a mirror serves GSM texts there)."""
    if query_url is not None:
        return query_url
    base = base_url.rstrip("/")
    return NCBI_QUERY if base == GEO_BASE else f"{base}/query/acc.cgi"


def soft_location(accession: str, base_url: str = GEO_BASE, query_url: str | None = None) -> tuple[str, str]:
    """(URL, local file name) of the SOFT text of a GSE (family file) or GSM (accession query page,
    see :func:`query_page`)."""
    base = base_url.rstrip("/")
    if accession.startswith("GSE"):
        return (f"{base}/series/{geo_range_dir(accession)}/{accession}/soft/{accession}_family.soft.gz",
                f"{accession}_family.soft.gz")
    return f"{query_page(base_url, query_url)}?acc={accession}&targ=self&form=text&view=full", f"{accession}.txt"


def accession_what(accession: str, dataset: str) -> str:
    """The subject of a dataset's messages; raises a one-line InputError for a malformed accession."""
    subject = what(dataset, f"GEO {accession if ACC_RE.fullmatch(accession) else shown(accession)}")
    if not ACC_RE.fullmatch(accession):
        raise InputError(subject, "is not a GEO series or sample accession",
                         "give a GSE or GSM accession (e.g. GSE132188) in the dataset registry")
    return subject


# ------------------------------------------------------------------------------------- parsing
def parse_soft(path: Path, accession: str, *, dataset: str):
    """The GEOparse record of ``accession`` in a SOFT file; None when the file holds no such record."""
    import GEOparse

    try:
        obj = GEOparse.get_GEO(filepath=str(path), geotype=accession[:3], silent=True)
    except GEOparse.GEOparse.NoEntriesException:
        return None  # NCBI answers an unknown GSM with a page that holds no SOFT entry
    except (*CORRUPT_ERRORS, StopIteration, AssertionError) as exc:
        raise InputError(what(dataset, path), f"cannot be parsed as GEO SOFT ({one_line(exc)})",
                         REDOWNLOAD_FIX) from exc
    if obj.name != accession:
        return None  # a SOFT of some other record
    return obj


def samples_of(obj) -> dict:
    return dict(obj.gsms) if hasattr(obj, "gsms") else {obj.name: obj}


def _file_name(url: str) -> str:
    """The last segment of a URL's path (query and fragment left out)."""
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError:
        path = url
    return path.rstrip("/").rsplit("/", 1)[-1]


def supplementary(obj, base_url: str) -> list[dict]:
    """Supplementary files of a GSE (its own and its samples') or of a GSM, URLs mapped onto base_url."""
    owners = ([("", obj.metadata)] if hasattr(obj, "gsms") else []) + \
        [(name, gsm.metadata) for name, gsm in samples_of(obj).items()]
    files = []
    for sample, meta in owners:
        for key in sorted(k for k in meta if k.startswith("supplementary_file")):
            for url in meta[key]:
                url = url.strip()
                if not url or url.upper() == "NONE" or "/" not in url:
                    continue
                files.append({"name": _file_name(url), "sample": sample, "url": map_geo_url(url, base_url)})
    return files


def list_geo_supplementary(soft_path, *, accession: str | None = None, base_url: str = GEO_BASE,
                           dataset: str = "") -> list[dict]:
    """Parse a SOFT file and list its supplementary files as dicts (name, sample, url on base_url)."""
    soft_path = Path(soft_path)
    if accession is None:
        m = re.match(r"(GSE|GSM)\d+", soft_path.name)
        if not m:
            raise ValueError(f"cannot tell the accession from the file name {soft_path.name}; pass accession=")
        accession = m[0]
    obj = parse_soft(soft_path, accession, dataset=dataset or accession)
    return supplementary(obj, base_url) if obj is not None else []


def _column_name(key: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", key.strip().lower()).strip("_") or "characteristic"


def sample_table(obj) -> pd.DataFrame:
    """One row per GSM: title and the 'key: value' characteristics (keys normalized to snake_case)."""
    rows = []
    for name, gsm in samples_of(obj).items():
        row = {"sample": name, "sample_title": " ".join(gsm.metadata.get("title", [""]))}
        for line in gsm.metadata.get("characteristics_ch1", []):
            key, sep, value = line.partition(":")
            col = _column_name(key) if sep else "characteristics"
            if col in ("sample", "sample_title"):
                col = f"char_{col}"
            row[col] = value.strip() if sep else line.strip()
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["sample", "sample_title"])


# ------------------------------------------------------------------------------ names and choice
def check_sample_names(obj, subject: str) -> None:
    """Sample names end up in file names and cell names: each must be a GSM accession, nothing else."""
    for name in samples_of(obj):
        if not _SAMPLE_RE.fullmatch(name):
            raise InputError(subject, f"the SOFT text names a sample {shown(name)} that is not a GEO sample "
                             "accession (GSM and digits)", "check that geo.base_url points at GEO or a faithful mirror")


def file_name_problem(name: str) -> str | None:
    """Why a supplementary file name cannot become a file of the download, or None.

    It must be a plain basename that fits the file system with the suffixes the download adds and that
    none of the download's own files uses.
    """
    if has_control(name):
        return "has control characters in its file name"
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        return (f"has a file name of {size} bytes, longer than the file system allows ({NAME_MAX} bytes, "
                f"{MAX_NAME_BYTES} with the suffixes the download adds)")
    if (not _FILE_NAME_RE.fullmatch(name) or ".." in name or name in _RESERVED_NAMES
            or name.endswith((".part", ".part.json", ".extracted", ".tmp"))):
        return (f"has the unsafe file name {shown(name)} (a plain name of letters, digits and ._+- is required, "
                "not one of the download's own files)")
    return None


def check_file_name(f: dict, subject: str) -> None:
    problem = file_name_problem(f["name"])
    if problem:
        raise InputError(subject, f"supplementary file {shown(f['url'], 160)} {problem}",
                         "narrow the pattern to leave it out, or check that geo.base_url points at GEO")


def compile_pattern(pattern: str, subject: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(subject, f"invalid file pattern '{pattern}' ({exc})", "fix the regular expression") from exc


def choose(files: list[dict], pattern: str, subject: str) -> list[dict]:
    """The files whose name ``pattern`` searches, the first of each name."""
    regex = compile_pattern(pattern, subject)
    if not files:
        raise InputError(subject, "lists no supplementary files", "choose a series that provides count matrices")
    chosen, seen = [], set()
    for f in files:
        if regex.search(f["name"]) and f["name"] not in seen:
            seen.add(f["name"])
            chosen.append(f)
    if not chosen:
        names = sorted({escaped(f["name"], 120) for f in files})
        listed = ", ".join(names[:15]) + (f", ... ({len(names) - 15} more)" if len(names) > 15 else "")
        raise InputError(subject, f"no supplementary file matches pattern '{pattern}' (available: {listed})",
                         "change the pattern in the dataset registry to select the count files")
    return chosen
