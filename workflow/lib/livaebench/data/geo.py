"""GEO series/samples -> downloaded supplementary files -> one raw-count AnnData.

``fetch_geo`` downloads the SOFT text of a series (GSE) or sample (GSM) from a configurable base URL laid
out like GEO's FTP-over-HTTPS tree and downloads the supplementary files that hold the counts (the layout
recognised from the listing with ``pattern: auto``, else the files a regex selects), for the registry's
samples; ``list_geo_files`` lists them (with sizes, kinds and the choice) without downloading them;
``assemble_geo`` turns the downloaded files into one AnnData. The parts live in their own modules:

- :mod:`.geo_soft`: where the SOFT text is, what it lists, which file names are safe;
- :mod:`.geo_layout`: the kind of every file from its name, and the choice of what to read;
- :mod:`.http_transfer`: one file over HTTP with resume (Range/If-Range and validators), a proven
  length and a byte budget; :mod:`.http_opener`: its deadline and guarded redirects;
  :mod:`.url_policy`: the origins it may contact;
- :mod:`.archives`: container checks, safe tar extraction and expansion caps;
- :mod:`.untrusted`: escaping of every string a server chooses before it is logged or raised.

Files are first written to a cache folder outside the download folder (the workflow's output, which
Snakemake deletes when a job fails), where partial files survive and are resumed. Complete files move
into the download folder only when all of them are there; ``manifest.tsv`` is written last, so a
manifest means a complete download.
"""
from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd
import scipy.sparse as sp

from ..config import parse_samples
from ..errors import InputError
from ..results import write_tsv_atomic
from .archives import REDOWNLOAD_FIX, check_expansion, extract_tar
from .archive_index import RemoteMembers, tar_index  # noqa: F401 (tar_index: part of this module's API)
from .geo_layout import AUTO, Entry, LayoutError, classify, decide, plan, sample_of_name
from .geo_soft import (GEO_BASE, accession_what, check_file_name, check_sample_names, choose, compile_pattern,
                       file_name_problem, parse_soft, query_page, sample_table, samples_of, soft_location,
                       supplementary)
from .http_transfer import (DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_TRANSFER_DEADLINE, NO_HEAD, DownloadBudget,
                            NotFound, download, remote_size)
from .io import (_DENSE_RE, _read_10x_h5, _read_dense, find_mtx_sets, group_10x_files, read_h5ad_checked,
                 read_mtx_set)
from .untrusted import escaped, one_line, shown, what as _what
from .url_policy import Refused, allowed_origins, check_url, url_problem

log = logging.getLogger("livaebench.data")

_GSM_RE = re.compile(r"^(GSM\d+)")
_TAR_RE = re.compile(r"\.(tar|tar\.gz|tgz)$")
MANIFEST_COLUMNS = ["file", "sample", "url", "bytes"]
LISTING_COLUMNS = ["file", "sample", "url", "bytes", "kind", "archive", "selected", "note"]

# Defaults of the geo.* config keys (the schema repeats them).
DEFAULT_MAX_EXTRACT_BYTES = 200 * 10**9
DEFAULT_MAX_ARCHIVE_MEMBERS = 100_000
DEFAULT_CACHE_DIR = "results/downloads/.partial"


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


def _allowed(base_url: str, query_url: str | None, allowed_hosts) -> frozenset:
    return allowed_origins([base_url, query_page(base_url, query_url)], allowed_hosts)


# ------------------------------------------------------------------------------ layout (auto)
def is_auto(pattern) -> bool:
    """Whether a registry pattern asks for the layout to be recognised ('' or 'auto')."""
    return pattern in (None, "", AUTO)


def _samples(obj, samples, what: str) -> tuple[list[str], list[str]]:
    """(the record's GSMs, the GSMs asked for: [] = all); an id the record lacks is a one-line error."""
    series = list(samples_of(obj))
    try:
        wanted = parse_samples(samples) if isinstance(samples, str) else list(samples or ())
    except ValueError as exc:
        raise InputError(what, f"samples: {exc}", "write GSM ids or ranges GSMa-GSMb separated by commas") from None
    unknown = [g for g in wanted if g not in series]
    if unknown:
        have = ", ".join(series[:8]) + (f", ... ({len(series)} in all)" if len(series) > 8 else "")
        raise InputError(what, f"samples {', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''} are not "
                         f"samples of this record (it has {have or 'none'})", "correct the registry column samples")
    return series, wanted


def _entries(files: list[dict], series: list[str]) -> tuple[list[Entry], dict[str, dict]]:
    """One entry per file name (the first listed: fetch_geo takes that one), and name -> listed file. A series
    file named after one of the series' samples counts as that sample's (as assemble_geo reads it)."""
    first: dict[str, dict] = {}
    for f in files:
        first.setdefault(f["name"], f)
    return [Entry(f["name"], f["sample"] or sample_of_name(f["name"], series, "")) for f in first.values()], first


def _auto_choice(job: "_Fetch", obj, files: list[dict], samples, timeout: float):
    """(entries with kinds and choice, name -> listed file, choice or None, LayoutError or None)."""
    series, wanted = _samples(obj, samples, job.what)
    entries, first = _entries(files, series)
    try:
        choice = plan(entries, series_samples=series, wanted=wanted, members=RemoteMembers(job, first, timeout))
        return entries, first, choice, None
    except LayoutError as err:
        return entries, first, None, err


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
        size = download(url, path, what=self.what, allowed=self.allowed, budget=self.budget, **self.options)
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


def _fetch_soft(job: _Fetch, accession: str, url: str, name: str, dataset: str):
    """The parsed SOFT record of ``accession`` and its local path."""
    missing = InputError(job.what, f"accession does not exist ({url} answered HTTP 404)",
                         "check the accession in the dataset registry and the GEO base URL")
    try:
        path, _ = job.obtain(url, name)
    except NotFound:
        raise missing from None
    obj = parse_soft(path, accession, dataset=dataset)
    if obj is None:
        path.unlink()
        raise InputError(job.what, f"accession does not exist ({url} returned no {accession} record)",
                         "check the accession in the dataset registry and the GEO base URL")
    return obj


def _fetch_choice(job: _Fetch, obj, files: list[dict], pattern: str, samples, timeout: float) -> list[dict]:
    """The listed files fetch_geo downloads (see :func:`fetch_geo`)."""
    if not files:
        return choose(files, ".*", job.what)  # the one-line error for a record without files
    if is_auto(pattern):
        entries, first, choice, err = _auto_choice(job, obj, files, samples, timeout)
        if err is not None:
            raise InputError(job.what, f"{err.problem} (pattern auto)", err.fix)
        log.info("%s: layout %s", job.what, choice.layout)
        return [first[e.name] for e in entries if e.selected and not e.archive]
    series, wanted = _samples(obj, samples, job.what)
    chosen = choose(files, pattern, job.what)
    owner = {f["name"]: e.sample for f, e in zip(chosen, _entries(chosen, series)[0])}
    kept = [f for f in chosen if not (wanted and owner[f["name"]] and owner[f["name"]] not in wanted)]
    if not kept:
        raise InputError(job.what, f"pattern '{pattern}' selects no file of the samples {', '.join(wanted[:8])}",
                         "widen the pattern or correct the registry column samples")
    return kept


def fetch_geo(accession: str, destdir, *, dataset: str, pattern: str = r".*", samples="", base_url: str = GEO_BASE,
              retries: int = 4, backoff: float = 1.0, timeout: float = 60, progress: bool = True,
              query_url: str | None = None, cache_dir=None, allowed_hosts=(),
              max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
              transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE) -> list[Path]:
    """Download the supplementary files of a GEO series or sample that hold its counts.

    ``pattern`` ``'auto'`` (or '': the registry's default) recognises the layout from the listing and
    chooses the files (:mod:`.geo_layout`; an ambiguous or unreadable layout is a one-line InputError);
    any other value is
    a regular expression searched (``re.search``) in each file name. ``samples`` (GSM ids and ranges, as
    the registry column, or a list) keeps the files of those samples only (and the series' own files);
    '' = every sample. Downloads go through
    ``cache_dir`` (default: ``{destdir}/../.partial/{destdir name}``), where partial files survive a failed
    run and are resumed; complete files move into ``destdir`` once all are there. Files already in
    ``destdir`` or complete in the cache are not downloaded again. Only URLs on the origins (scheme, host
    and port) of ``base_url`` and ``query_url`` or in ``allowed_hosts`` (``host`` or ``host:port``, see
    :mod:`.url_policy`) are fetched; ``max_download_bytes`` caps the dataset's bytes, ``transfer_deadline``
    the seconds per file. Writes ``{destdir}/samples.tsv`` (title and
    characteristics per GSM) and, last, ``{destdir}/manifest.tsv`` (file, sample, url, bytes). Returns
    the downloaded paths.
    """
    accession = str(accession).strip().upper()
    what = accession_what(accession, dataset)
    destdir = Path(destdir)
    cache = Path(cache_dir) if cache_dir is not None else destdir.parent / ".partial" / destdir.name
    (destdir / "manifest.tsv").unlink(missing_ok=True)  # its presence must mean: this run completed
    url, soft_name = soft_location(accession, base_url, query_url)
    job = _Fetch(what, destdir, cache, _allowed(base_url, query_url, allowed_hosts),
                 DownloadBudget(max_download_bytes, what),
                 dict(retries=retries, backoff=backoff, timeout=timeout, progress=progress, deadline=transfer_deadline))
    obj = _fetch_soft(job, accession, url, soft_name, dataset)
    check_sample_names(obj, what)
    chosen = _fetch_choice(job, obj, supplementary(obj, base_url), pattern, samples, timeout)
    for f in chosen:  # every name and URL is checked before the first supplementary file is fetched
        check_file_name(f, what)
        check_url(f["url"], job.allowed, what=what)
    log.info("%s: %d supplementary files chosen (pattern '%s')", accession, len(chosen), pattern or AUTO)

    rows = []
    for f in chosen:
        try:
            _, size = job.obtain(f["url"], f["name"])
        except NotFound:
            raise InputError(what, f"supplementary file {escaped(f['url'], 300)} is listed but answered HTTP 404",
                             "check the GEO base URL (mirror) or narrow the pattern") from None
        rows.append({"file": f["name"], "sample": f["sample"], "url": f["url"], "bytes": size})
    job.publish([soft_name] + [r["file"] for r in rows])
    write_tsv_atomic(sample_table(obj).fillna(""), destdir / "samples.tsv")  # a characteristic a GSM lacks: empty
    write_tsv_atomic(pd.DataFrame(rows, columns=MANIFEST_COLUMNS), destdir / "manifest.tsv")
    job.clean()
    return [destdir / r["file"] for r in rows]


# ------------------------------------------------------------------------------- list_geo_files
def list_geo_files(accession: str, *, dataset: str, pattern: str = r".*", samples="", base_url: str = GEO_BASE,
                   retries: int = 4, backoff: float = 1.0, timeout: float = 60, query_url: str | None = None,
                   allowed_hosts=(), sizes: bool = True, max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
                   transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE, cache_dir=None) -> pd.DataFrame:
    """What :func:`fetch_geo` would download and read, downloading only the SOFT text (and, for
    ``pattern: auto`` where the choice hangs on an archive's content, GEO's small ``filelist.txt`` or the
    archive's tar headers), all into a temporary folder.

    One row per supplementary file of the series and its samples, then one per known member of an
    archive (columns ``LISTING_COLUMNS``): ``file``, ``sample`` (GSM; empty for a series file), ``url``
    (on ``base_url``; empty for a member), ``bytes``, ``kind`` (:func:`.geo_layout.name_kind`: 10x part,
    10x HDF5, h5ad, dense table, archive, unsupported format ...), ``archive`` (the archive a member is
    in), ``selected`` (``yes``: fetch_geo downloads it, or for a member: it is read) and ``note`` (the
    choice and why, why a selected file would be refused, a duplicate name, why a size is missing);
    names and URLs are escaped (:func:`.untrusted.escaped`). ``table.attrs`` holds ``layout`` (the
    choice in one line) or ``problem`` (the one-line error fetch_geo would stop with). GEO's SOFT text
    carries no sizes: with ``sizes`` each file costs one HEAD request (servers that refuse HEAD get a
    one-byte ranged GET instead); a failed probe leaves ``bytes`` empty with the reason in ``note``.
    Files on origins that may not be contacted are never probed. Takes the keyword arguments of
    :func:`fetch_options` (``cache_dir`` is not used: nothing is kept).
    """
    import tempfile

    accession = str(accession).strip().upper()
    what = accession_what(accession, dataset)
    auto = is_auto(pattern)
    regex = None if auto else compile_pattern(pattern, what)
    url, soft_name = soft_location(accession, base_url, query_url)
    allowed = _allowed(base_url, query_url, allowed_hosts)
    layout, problem = "", ""
    with tempfile.TemporaryDirectory(prefix="geo_soft_") as tmp:
        job = _Fetch(what, Path(tmp) / "soft", Path(tmp) / "partial", allowed,
                     DownloadBudget(max_download_bytes, what),
                     dict(retries=retries, backoff=backoff, timeout=timeout, progress=False,
                          deadline=transfer_deadline))
        obj = _fetch_soft(job, accession, url, soft_name, dataset)
        check_sample_names(obj, what)
        files = supplementary(obj, base_url)
        if auto:
            entries, first, choice, err = _auto_choice(job, obj, files, samples, timeout)
            layout = choice.layout if choice else ""
            problem = f"{err.problem} (pattern auto). Fix: {err.fix}" if err else ""
        else:
            series, wanted = _samples(obj, samples, what)
            entries, first = _entries(files, series)
            classify(entries)
            for e in entries:
                e.selected = bool(regex.search(e.name))
                if e.selected and wanted and e.sample and e.sample not in wanted:
                    e.selected, e.note = False, "not chosen: sample not selected (registry column samples)"
    if not files:
        problem = "lists no supplementary files"
    listed = {e.name: e for e in entries if not e.archive}
    members: dict[str, list[Entry]] = {}
    for e in entries:
        if e.archive:
            members.setdefault(e.archive, []).append(e)
    rows, seen, method = [], set(), "HEAD"
    for f in files:
        e = listed[f["name"]]
        notes, size = [e.note] if e.note else [], None
        first_of_name = f["name"] not in seen
        seen.add(f["name"])
        selected = e.selected and first_of_name
        if not first_of_name and (e.selected or not auto):
            notes = ["same name as a file listed earlier (fetch_geo takes that one)"]
        refused = url_problem(f["url"], allowed) or file_name_problem(f["name"])
        if refused and selected:
            notes.append(f"fetch_geo would refuse it: it {refused}")
        if sizes and not url_problem(f["url"], allowed):
            for _ in range(2):
                try:
                    size = remote_size(f["url"], allowed=allowed, timeout=timeout, method=method)
                    if size is None:
                        notes.append("the server does not tell the size")
                except urllib.error.HTTPError as exc:
                    exc.close()
                    if method == "HEAD" and exc.code in NO_HEAD:
                        method = "GET"
                        continue
                    notes.append(f"size unknown (HTTP {exc.code}{': not on the server' if exc.code == 404 else ''})")
                except Refused as exc:
                    notes.append(f"size unknown (redirect to {escaped(exc.url, 300)} refused: it {exc.problem})")
                except (OSError, http.client.HTTPException) as exc:
                    notes.append(f"size unknown ({one_line(exc)})")
                break
        # escaped: the table is read in a terminal, and its names and URLs are the server's
        rows.append({"file": escaped(f["name"]), "sample": f["sample"], "url": escaped(f["url"]), "bytes": size,
                     "kind": e.kind, "archive": "", "selected": "yes" if selected else "no",
                     "note": "; ".join(notes)})
        if first_of_name:
            rows += [{"file": escaped(m.name), "sample": m.sample, "url": "", "bytes": m.size, "kind": m.kind,
                      "archive": escaped(m.archive), "selected": "yes" if m.selected else "no", "note": m.note}
                     for m in members.get(f["name"], [])]
    table = pd.DataFrame(rows, columns=LISTING_COLUMNS)
    table["bytes"] = table["bytes"].astype("Int64")
    table.attrs.update(layout=layout, problem=problem, auto=auto)
    return table


# -------------------------------------------------------------------------------------- assembly
def _sample_of(path: Path, hint: str) -> str:
    m = _GSM_RE.match(path.name)
    return m[1] if m else hint


def _piece_paths(files) -> list[Path]:
    return files.files if hasattr(files, "files") else [files]


def _h5ad_kind(name: str) -> bool:
    return name.endswith((".h5ad", ".h5ad.gz", ".h5ad.h5"))  # '.h5ad.h5': GSE132188's name


def _gunzipped(path: Path) -> Path:
    """A gzipped file decompressed beside itself (in ``{name}.extracted/``, as archives are), once."""
    import gzip

    out = path.with_name(path.name + ".extracted") / path.name[:-3]
    if not out.is_file():
        out.parent.mkdir(exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, out)
    return out


def _read_piece(kind: str, files, *, dataset: str, orientation: str, max_extract_bytes: int) -> ad.AnnData:
    for path in _piece_paths(files):
        if path.name.lower().endswith(".gz"):
            check_expansion(path, dataset=dataset, max_bytes=max_extract_bytes)
    if kind == "mtx":
        return read_mtx_set(files, dataset=dataset, corrupt_fix=REDOWNLOAD_FIX)
    if kind == "h5":
        return _read_10x_h5(files, dataset=dataset, corrupt_fix=REDOWNLOAD_FIX)
    if kind == "h5ad":
        return read_h5ad_checked(_gunzipped(files) if files.name.endswith(".gz") else files, dataset=dataset)
    return _read_dense(files, dataset=dataset, orientation=orientation, corrupt_fix=REDOWNLOAD_FIX)


def _auto_pieces(candidates: list[tuple[Path, str, str]], destdir: Path, *, dataset: str,
                 series_samples: list[str], wanted: list[str]) -> list[tuple[Path, str]]:
    """The candidates the layout choice reads (the same choice fetch_geo made from the listing, now on the
    downloaded files and the real members of downloaded archives)."""
    entries = [Entry(path.relative_to(destdir).as_posix() if not archive else
                     path.relative_to(destdir / f"{archive}.extracted").as_posix(), sample, archive)
               for path, sample, archive in candidates]
    units = classify(entries)
    try:
        choice = decide(units, entries, series_samples=series_samples, wanted=wanted)
    except LayoutError as err:
        raise InputError(_what(dataset, destdir), f"{err.problem} (pattern auto, in the downloaded files)",
                         err.fix) from None
    log.info("%s: layout %s", dataset, choice.layout)
    return [(path, sample) for (path, sample, _), e in zip(candidates, entries) if e.selected]


def assemble_geo(destdir, *, dataset: str, orientation: str = "auto", pattern: str = r".*", samples="",
                 max_extract_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
                 max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS) -> ad.AnnData:
    """Assemble the files listed in ``{destdir}/manifest.tsv`` into one raw-count AnnData.

    Recognized: Matrix Market sets (10x triplets ``[prefix]barcodes/features|genes/matrix``, STARsolo,
    kallisto-bustools, alevin: :func:`.io.find_mtx_sets`), 10x ``.h5``, ``.h5ad`` (also gzipped, and
    GEO's ``.h5ad.h5``) and dense CSV/TSV/TXT tables (gzipped or not); tars (GEO's ``_RAW.tar``) are
    extracted first. With ``pattern`` auto (or '') the layout choice of :mod:`.geo_layout` picks what
    is read among the files and the archives' members, keeping the ``samples`` asked for (GSM ids and
    ranges; '' = all); with a regex pattern every recognised file is read and other files are skipped
    (logged). Matrices of samples are concatenated (outer join
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
    samples_path = destdir / "samples.tsv"
    series_samples = (list(pd.read_csv(samples_path, sep="\t", dtype=str, keep_default_na=False)["sample"])
                      if samples_path.is_file() else sorted({s for s in manifest["sample"] if s}))
    found: list[tuple[Path, str, str]] = []  # (path, sample, archive it came from)
    for row in manifest.itertuples():
        if file_name_problem(row.file):
            raise InputError(_what(dataset, manifest_path), f"lists the unsafe file name {shown(row.file)}",
                             f"delete {manifest_path} and rerun to download again")
        path = destdir / row.file
        if not path.is_file():
            raise InputError(_what(dataset, path), "is listed in manifest.tsv but missing",
                             f"delete {manifest_path} and rerun to download again")
        # A file damaged on disk after its download can still parse (a tar cut at a member boundary
        # just looks shorter), so the size recorded at download time is checked first.
        if row.bytes and path.stat().st_size != int(row.bytes):
            raise InputError(_what(dataset, path),
                             f"has {path.stat().st_size} bytes but {row.bytes} were downloaded "
                             "(truncated or corrupted)",
                             REDOWNLOAD_FIX)
        if _TAR_RE.search(path.name):
            for member in extract_tar(path, dataset=dataset, max_bytes=max_extract_bytes,
                                       max_members=max_archive_members):
                if member.name not in listed:  # also downloaded on its own: count it once
                    found.append((member, sample_of_name(member.name, series_samples, row.sample), row.file))
        else:
            found.append((path, _sample_of(path, row.sample), ""))
    if is_auto(pattern):
        wanted = parse_samples(samples) if isinstance(samples, str) else list(samples or ())
        candidates = _auto_pieces(found, destdir, dataset=dataset, series_samples=series_samples, wanted=wanted)
    else:
        candidates = [(path, sample) for path, sample, _ in found]

    sample_of = dict(candidates)
    pieces: list[tuple[str, str, object, Path]] = []  # (sample, kind, files, file that names the piece)
    sets = find_mtx_sets(sample_of)
    for mtx in sets:
        pieces.append((sample_of[mtx.matrix], "mtx", mtx, mtx.matrix))
    in_sets = {p for mtx in sets for p in mtx.files}
    for (_, prefix), parts in group_10x_files(p for p in sample_of if p not in in_sets).items():
        have = ", ".join(p.name for p in parts.values())
        raise InputError(_what(dataset, destdir), f"incomplete 10x triplet '{prefix}*' (only {have})",
                         "widen the pattern so barcodes, features/genes and matrix files are all selected")
    for path, sample in candidates:
        if path in in_sets:
            continue
        name = path.name.lower()
        kind = ("h5ad" if _h5ad_kind(name) else "h5" if name.endswith(".h5")
                else "dense" if _DENSE_RE.search(name) else None)
        if kind is None:
            log.info("%s: skipping %s (not a count-matrix format)", dataset, escaped(path.name))
            continue
        pieces.append((sample, kind, path, path))
    if not pieces:
        raise InputError(_what(dataset, destdir),
                         f"none of the downloaded files is a count matrix ({', '.join(sorted(listed))})",
                         "set the pattern to select 10x/mtx, .h5, .h5ad or CSV/TSV count files")
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
