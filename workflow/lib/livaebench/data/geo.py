"""GEO series/samples -> downloaded supplementary files -> one raw-count AnnData.

``fetch_geo`` downloads the SOFT text of a series (GSE) or sample (GSM) itself, from a configurable
base URL laid out like GEO's FTP-over-HTTPS tree, parses it with GEOparse, downloads the supplementary
files the registry's pattern selects (retries with exponential backoff, HTTP Range resume of ``.part``
files, Content-Length check, atomic rename) and writes ``manifest.tsv`` last, so a manifest means a
complete download. ``assemble_geo`` turns the downloaded files into one AnnData.

GEOparse is used only to parse: it builds its own download URLs (always NCBI), which would make the
base URL impossible to change and the download impossible to test against a mirror.
"""
from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

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
_ACC_RE = re.compile(r"^(GSE|GSM)\d+$")
_GSM_RE = re.compile(r"^(GSM\d+)")
_TAR_RE = re.compile(r"\.(tar|tar\.gz|tgz)$")
REDOWNLOAD_FIX = "delete it and rerun to download again"
MANIFEST_COLUMNS = ["file", "sample", "url", "bytes"]


def _what(dataset: str, source) -> str:
    return f"dataset '{dataset}' ({source})"


def geo_range_dir(accession: str) -> str:
    """GEO groups accessions in directories named after all but the last three digits: GSE132188 -> GSE132nnn."""
    return re.sub(r"\d{1,3}$", "nnn", accession)


def map_geo_url(url: str, base_url: str) -> str:
    """Rewrite a URL on GEO's own host onto ``base_url`` (other URLs are returned unchanged)."""
    for prefix in _GEO_PREFIXES:
        if url.startswith(prefix + "/"):
            return base_url.rstrip("/") + url[len(prefix):]
    return url


def soft_location(accession: str, base_url: str = GEO_BASE, query_url: str | None = None) -> tuple[str, str]:
    """(URL, local file name) of the SOFT text of a GSE (family file) or GSM (accession query).

    ``query_url`` defaults to NCBI's query page when ``base_url`` is GEO's own, else to
    ``{base_url}/query/acc.cgi`` (a mirror serves GSM texts there).
    """
    base = base_url.rstrip("/")
    if accession.startswith("GSE"):
        return (f"{base}/series/{geo_range_dir(accession)}/{accession}/soft/{accession}_family.soft.gz",
                f"{accession}_family.soft.gz")
    if query_url is None:
        query_url = NCBI_QUERY if base == GEO_BASE else f"{base}/query/acc.cgi"
    return f"{query_url}?acc={accession}&targ=self&form=text&view=full", f"{accession}.txt"


# -------------------------------------------------------------------------------------- download
class _NotFound(Exception):
    pass


def _expected_total(resp, offset: int) -> tuple[int | None, int]:
    """(total size of the file, offset the body starts at) from a 200 or 206 response."""
    if resp.status == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if m:
            start, total = int(m[1]), m[3]
            return (int(total) if total != "*" else None), start
        return None, offset
    length = resp.headers.get("Content-Length")
    return (int(length) if length is not None else None), 0


def download(url: str, dest: Path, *, what: str, retries: int = 4, backoff: float = 1.0,
             timeout: float = 60, progress: bool = True) -> int:
    """Download ``url`` to ``dest`` via ``dest.part``; return the size in bytes.

    A partial ``.part`` (from a failed attempt or an earlier run) is resumed with an HTTP Range request;
    a server that ignores Range gets a fresh download. The body must match the announced size, else the
    attempt counts as failed. Attempts wait backoff * 2**(attempt-1) seconds. HTTP 404 raises _NotFound.
    """
    from tqdm import tqdm

    part = dest.with_name(dest.name + ".part")
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.info("%s: attempt %d/%d failed (%s); retrying in %.2g s", dest.name, attempt, retries + 1, problem, delay)
            time.sleep(delay)
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "livaebench", **({"Range": f"bytes={offset}-"} if offset else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                total, start = _expected_total(resp, offset)
                if start > offset:  # a range we did not ask for: the .part cannot be continued
                    part.unlink(missing_ok=True)
                    problem = f"server sent bytes from {start}, not {offset}"
                    continue
                offset = start  # 0 when the server ignored Range (HTTP 200): start over
                log.info("downloading %s (%s bytes%s)", url, total if total is not None else "?",
                         f", resuming at {offset}" if offset else "")
                with open(part, "r+b" if offset else "wb") as fh, tqdm(
                        total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name,
                        disable=not progress, leave=False, mininterval=1.0) as bar:
                    fh.seek(offset)
                    fh.truncate()
                    while chunk := resp.read(1 << 20):
                        fh.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise _NotFound(url) from exc
            if exc.code == 416:  # our .part is not a prefix of the file any more
                part.unlink(missing_ok=True)
                problem = "HTTP 416 on resume"
                continue
            if exc.code in (408, 429) or exc.code >= 500:
                problem = f"HTTP {exc.code}"
                continue
            raise InputError(what, f"download of {url} failed with HTTP {exc.code}",
                             "check the accession and the GEO base URL") from exc
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, IncompleteRead
            problem = _one_line(exc)
            continue
        size = part.stat().st_size
        if total is not None and size != total:
            problem = f"got {size} of {total} bytes"
            if size > total:
                part.unlink()
            continue
        if total is None:
            log.warning("%s: server announced no size; %d bytes accepted unchecked", dest.name, size)
        os.replace(part, dest)
        log.info("downloaded %s (%d bytes)", dest.name, size)
        return size
    raise InputError(what, f"download of {url} stayed incomplete after {retries + 1} attempts ({problem})",
                     f"check the network or the GEO mirror (base_url) and rerun; {part.name} is resumed")


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
                files.append({"name": url.rstrip("/").rsplit("/", 1)[-1], "sample": sample,
                              "url": map_geo_url(url, base_url)})
    return files


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


def fetch_geo(accession: str, destdir, *, dataset: str, pattern: str = r".*", base_url: str = GEO_BASE,
              retries: int = 4, backoff: float = 1.0, timeout: float = 60, progress: bool = True,
              query_url: str | None = None) -> list[Path]:
    """Download the supplementary files of a GEO series or sample that ``pattern`` selects.

    ``pattern`` is a regular expression searched (``re.search``) in each file name. Files already in
    ``destdir`` (complete: they were renamed into place after a size check) are not downloaded again.
    Writes ``{destdir}/samples.tsv`` (title and characteristics per GSM) and, last,
    ``{destdir}/manifest.tsv`` (file, sample, url, bytes). Returns the downloaded paths.
    """
    accession = accession.strip().upper()
    what = _what(dataset, f"GEO {accession}")
    if not _ACC_RE.match(accession):
        raise InputError(what, "is not a GEO series or sample accession",
                         "give a GSE or GSM accession (e.g. GSE132188) in the dataset registry")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(what, f"invalid file pattern '{pattern}' ({exc})", "fix the regular expression") from exc
    destdir = Path(destdir)
    destdir.mkdir(parents=True, exist_ok=True)
    (destdir / "manifest.tsv").unlink(missing_ok=True)  # its presence must mean: this run completed
    opts = dict(retries=retries, backoff=backoff, timeout=timeout, progress=progress)

    url, soft_name = soft_location(accession, base_url, query_url)
    soft_path = destdir / soft_name
    missing = InputError(what, f"accession does not exist ({url} answered HTTP 404)",
                         "check the accession in the dataset registry and the GEO base URL")
    if not soft_path.exists():
        try:
            download(url, soft_path, what=what, **opts)
        except _NotFound:
            raise missing from None
    obj = _parse_soft(soft_path, accession, dataset=dataset)
    if obj is None:
        soft_path.unlink()
        raise InputError(what, f"accession does not exist ({url} returned no {accession} record)",
                         "check the accession in the dataset registry and the GEO base URL")

    files = _supplementary(obj, base_url)
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
    log.info("%s: %d of %d supplementary files match '%s'", accession, len(chosen), len(files), pattern)

    rows = []
    for f in chosen:
        dest = destdir / f["name"]
        if dest.exists():
            size = dest.stat().st_size
            log.info("%s already downloaded (%d bytes)", dest.name, size)
        else:
            try:
                size = download(f["url"], dest, what=what, **opts)
            except _NotFound:
                raise InputError(what, f"supplementary file {f['url']} is listed but answered HTTP 404",
                                 "check the GEO base URL (mirror) or narrow the pattern") from None
        rows.append({"file": f["name"], "sample": f["sample"], "url": f["url"], "bytes": size})
    write_tsv_atomic(_sample_table(obj), destdir / "samples.tsv")
    write_tsv_atomic(pd.DataFrame(rows, columns=MANIFEST_COLUMNS), destdir / "manifest.tsv")
    return [destdir / r["file"] for r in rows]


# -------------------------------------------------------------------------------------- assembly
def _extract_tar(path: Path, *, dataset: str) -> list[Path]:
    """Extract a (GEO _RAW) tar next to itself, atomically; return its regular files."""
    out = path.with_name(path.name + ".extracted")
    if not out.is_dir():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.extracting")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(path, "r:*") as tar:
                tar.extractall(tmp, filter="data")  # "data" refuses absolute paths, links out, devices
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(_what(dataset, path), f"is a corrupted or truncated tar ({_one_line(exc)})",
                             REDOWNLOAD_FIX) from exc
        os.replace(tmp, out)
    return sorted(p for p in out.rglob("*") if p.is_file())


def _sample_of(path: Path, hint: str) -> str:
    m = _GSM_RE.match(path.name)
    return m[1] if m else hint


def _read_piece(kind: str, files, *, dataset: str, orientation: str) -> ad.AnnData:
    if kind == "10x":
        return read_10x_triplet(files["matrix"], files["barcodes"], files["features"], dataset=dataset,
                                corrupt_fix=REDOWNLOAD_FIX)
    if kind == "h5":
        return _read_10x_h5(files, dataset=dataset, corrupt_fix=REDOWNLOAD_FIX)
    if kind == "h5ad":
        return read_h5ad_checked(files, dataset=dataset)
    return _read_dense(files, dataset=dataset, orientation=orientation, corrupt_fix=REDOWNLOAD_FIX)


def assemble_geo(destdir, *, dataset: str, orientation: str = "auto") -> ad.AnnData:
    """Assemble the files listed in ``{destdir}/manifest.tsv`` into one raw-count AnnData.

    Recognized: 10x triplets (``[prefix]barcodes/features|genes/matrix`` files, grouped by prefix), 10x
    ``.h5``, ``.h5ad`` and dense CSV/TSV/TXT tables (gzipped or not); tars (GEO's ``_RAW.tar``) are
    extracted first. Other files are skipped (logged). Matrices of samples are concatenated (outer join
    of features, missing = 0) with ``obs['sample']`` = the GSM id (from the file name, else the manifest)
    and cell names prefixed by it; the GSM characteristics in ``samples.tsv`` become obs columns. Several
    series-level matrices are concatenated with ``obs['sample']`` = the file name. ``orientation``
    applies to dense tables (see ``io.decide_orientation``). Values are not checked here: call
    ``validate_counts``.
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
            for member in _extract_tar(path, dataset=dataset):
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
        a = _read_piece(kind, files, dataset=dataset, orientation=orientation)
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
        table = pd.read_csv(samples_path, sep="\t", dtype=str, keep_default_na=False).set_index("sample")
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
