"""Which supplementary files of a GEO series hold its counts, recognised from their names (``pattern: auto``).

Every file a series lists (and every member of an archive whose member names are known: GEO's
``filelist.txt`` beside a ``_RAW.tar``, or the tar's own index) gets a *kind* from its name alone
(nothing is downloaded): a part of a Matrix Market set (10x triplet, STARsolo, kallisto-bustools,
alevin; :func:`.io.find_mtx_sets`), a 10x HDF5, an ``.h5ad``, a dense table (count table, or a table
whose name says it is normalized or metadata), an archive, a format this workflow cannot read
(``.rds``, ``.loom``, ``.RData``, ``.h5seurat`` ...) or something else. Readable files form *units*
(one matrix each); the choice then takes, in this order:

1. one unit per selected sample (the registry's ``samples``; all of the series' samples when empty),
   from the sample's own files, else from an archive's members named after it (GEO's ``_RAW.tar``
   holds exactly the samples' files, so it is only read when they are not listed on their own);
2. otherwise one series-level unit.

Within a sample or the series, a filtered matrix beats a raw one (Cell Ranger's called cells), a 10x
HDF5 beats the triplet of the same output, and a unit whose content is known beats an archive whose
members are unknown. Anything else that leaves two candidates, or none, is a :class:`LayoutError`
(one line: what was found, and the registry value to set).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from .io import _ALEVIN_EDS_RE, _DENSE_RE, _MTX_RE, _TENX_RE, find_mtx_sets
from .untrusted import escaped

AUTO = "auto"
TAR_RE = re.compile(r"\.(tar|tar\.gz|tgz)$", re.IGNORECASE)
GSM_PREFIX_RE = re.compile(r"^(GSM\d+)(?![0-9])")

# Kinds (shown in results/geo_files/{dataset}.tsv)
MTX_PART = "{tool} part ({part})"
H5 = "10x HDF5"
H5AD = "h5ad"
DENSE = "dense table"
NORMALIZED = "normalized table (not raw counts)"
METADATA = "metadata table"
ARCHIVE = "archive"
ARCHIVE_UNKNOWN = "archive (members unknown)"
FILE_LIST = "GEO file list"
LONE_MTX = "mtx without its label files"
OTHER = "other (not a count matrix)"
UNSUPPORTED = "unsupported format ({what})"
# Formats that may hold counts but that this workflow cannot read (suffix, after an optional .gz).
UNSUPPORTED_SUFFIXES = {".rds": "R object .rds", ".rda": "R data .rda", ".rdata": "R data .RData",
                        ".loom": "loom", ".h5seurat": "Seurat .h5seurat", ".qs": "R qs object",
                        ".xlsx": "Excel", ".xls": "Excel", ".zip": "zip archive", ".mat": "MATLAB .mat",
                        ".parquet": "parquet"}
# Name tokens of tables that are not raw counts: normalized values, or annotations of cells and genes.
_NORMALIZED_TOKEN = re.compile(r"(tpm|fpkm|rpkm|cpm|norm\w*|log\w*|scaled?|zscores?|imputed?|integrated)")
_METADATA_TOKEN = re.compile(r"(meta\w*|annot\w*|clusters?|celltypes?|readme|md5\w*|clones?|tsne|umap|coord\w*|"
                             r"pheno\w*|design|markers?|info|qc|summary|stats?)")
_FILTERED_TOKENS = {"filtered"}
_RAW_TOKENS = {"raw", "unfiltered"}


class LayoutError(Exception):
    """The layout cannot be chosen: ``problem`` (what was found) and ``fix`` (the registry value to set)."""

    def __init__(self, problem: str, fix: str, *, unknown_archives: bool = False):
        super().__init__(problem)
        self.problem, self.fix, self.unknown_archives = problem, fix, unknown_archives


@dataclass
class Entry:
    """One listed file, or one member of a listed archive (``archive`` = the archive's name)."""

    name: str
    sample: str = ""
    archive: str = ""
    size: int | None = None
    kind: str = ""
    unit: str = ""
    selected: bool = False
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.archive, self.name


@dataclass
class Unit:
    """One count matrix: the entries it is read from."""

    id: str
    kind: str
    sample: str
    archive: str
    entries: list[Entry] = field(default_factory=list)
    variant: str = ""  # 'filtered', 'raw' or ''

    def label(self) -> str:
        names = ", ".join(escaped(e.name, 80) for e in self.entries[:3])  # names a server chose
        where = f" in {escaped(self.archive, 80)}" if self.archive else ""
        return f"{self.kind} {names}{where}"


@dataclass
class Choice:
    units: list[Unit]
    layout: str  # one line for the log and the table, e.g. 'per-sample 10x triplet (4 samples)'


def _tokens(name: str) -> set[str]:
    return set(t for t in re.split(r"[^a-z0-9]+", name.lower()) if t)


def _plain(name: str) -> str:
    low = name.lower()
    return low[:-3] if low.endswith(".gz") else low


def name_kind(name: str) -> str:
    """The kind of a file from its name alone (parts of Matrix Market sets are found by :func:`classify`)."""
    base = PurePosixPath(name).name
    low, plain = base.lower(), _plain(base)
    if low == "filelist.txt":
        return FILE_LIST
    if TAR_RE.search(low):
        return ARCHIVE_UNKNOWN
    for suffix, what in UNSUPPORTED_SUFFIXES.items():
        if plain.endswith(suffix):
            return UNSUPPORTED.format(what=what)
    if plain.endswith(".h5ad") or low.endswith(".h5ad.h5"):  # GEO has '.h5ad.h5' (GSE132188)
        return H5AD
    if plain.endswith(".h5"):
        return OTHER if "molecule_info" in low else H5
    if _ALEVIN_EDS_RE.match(base):
        return UNSUPPORTED.format(what="alevin binary EDS matrix")
    if _MTX_RE.match(base):
        return LONE_MTX
    if _DENSE_RE.search(low):
        tokens = _tokens(plain.rsplit(".", 1)[0])
        if any(_NORMALIZED_TOKEN.fullmatch(t) for t in tokens):
            return NORMALIZED
        if any(_METADATA_TOKEN.fullmatch(t) for t in tokens):
            return METADATA
        return DENSE
    return OTHER


def _variant(names: Iterable[str]) -> str:
    tokens = set().union(*(_tokens(n) for n in names))
    if tokens & _FILTERED_TOKENS:
        return "filtered"
    if tokens & _RAW_TOKENS:
        return "raw"
    return ""


def sample_of_name(name: str, series_samples: Iterable[str], default: str) -> str:
    """The GSM a member name starts with (one of the series'), else ``default``."""
    m = GSM_PREFIX_RE.match(PurePosixPath(name).name)
    return m[1] if m and m[1] in set(series_samples) else default


def classify(entries: list[Entry]) -> list[Unit]:
    """Set each entry's kind and group the readable ones into units (entries whose kind is not yet set)."""
    for e in entries:
        e.kind, e.unit = name_kind(e.name), ""
    # Matrix Market sets: grouped within one sample (listed files) or one folder of one archive (members)
    paths = {}
    for e in entries:
        if e.kind in (LONE_MTX, DENSE, METADATA, NORMALIZED, OTHER):
            paths[PurePosixPath(f"@{e.archive}") / (e.sample or "@series") / e.name] = e
    units: list[Unit] = []
    for s in find_mtx_sets([Path(p) for p in paths]):
        parts = {"matrix": s.matrix, "barcodes": s.cells, "genes": s.genes, "gene names": s.gene_names}
        tool = "STARsolo" if s.tool == "10x" and "Solo.out" in s.matrix.parts else s.tool
        kind = "10x triplet" if tool == "10x" else f"{tool} mtx set"
        members = []
        for part, p in parts.items():
            if p is None:
                continue
            e = paths[PurePosixPath(p)]
            tenx = _TENX_RE.match(p.name) if s.tool == "10x" else None
            e.kind = MTX_PART.format(tool=tool, part=tenx["part"].split(".")[0] if tenx else part)
            members.append(e)
        units.append(Unit("", kind, members[0].sample, members[0].archive, members,
                          _variant(e.name for e in members)))
    # Pieces of 10x triplets that found no partner
    for e in entries:
        if e.kind in (LONE_MTX, DENSE, OTHER) and _TENX_RE.match(PurePosixPath(e.name).name):
            e.kind = "10x part (incomplete triplet)"
    for e in entries:
        if e.kind in (H5, H5AD, DENSE, ARCHIVE_UNKNOWN):
            units.append(Unit("", e.kind, e.sample, e.archive, [e], _variant([e.name])))
    units.sort(key=lambda u: (u.sample, u.archive, u.entries[0].name))
    for i, u in enumerate(units, start=1):
        u.id = f"u{i}"
        for e in u.entries:
            e.unit = u.id
    return units


# ------------------------------------------------------------------------------------------ choice
def _listed(entries: Iterable[Entry], limit: int = 12) -> str:
    items = [f"{escaped(e.name, 80)} ({e.kind})" for e in entries]
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _resolve(candidates: list[Unit]) -> tuple[list[Unit], list[tuple[Unit, str]]]:
    """Candidates of one sample (or of the series) after the preferences; (kept, [(dropped, why)])."""
    dropped = []
    known = [u for u in candidates if u.kind != ARCHIVE_UNKNOWN]
    if known and len(known) < len(candidates):
        dropped += [(u, "its members are unknown; a matrix whose content is known is preferred")
                    for u in candidates if u.kind == ARCHIVE_UNKNOWN]
        candidates = known
    if any(u.variant == "filtered" for u in candidates) and any(u.variant == "raw" for u in candidates):
        dropped += [(u, "raw matrix: the filtered one (called cells) is preferred") for u in candidates
                    if u.variant == "raw"]
        candidates = [u for u in candidates if u.variant != "raw"]
    h5 = [u for u in candidates if u.kind == H5]
    triplets = [u for u in candidates if u.kind == "10x triplet"]
    # a triplet named without 'filtered'/'raw' is what Cell Ranger's filtered folder holds
    if len(h5) == 1 and triplets and h5[0].variant != "raw" and all(t.variant in (h5[0].variant, "")
                                                                      for t in triplets):
        dropped += [(u, "the 10x HDF5 of the same output is read instead") for u in triplets]
        candidates = [u for u in candidates if u.kind != "10x triplet"]
    return candidates, dropped


def _pattern_hint(unit: Unit) -> str:
    """A registry pattern that selects a unit like this one (in every sample)."""
    if unit.kind == "10x triplet":
        return r"'_(barcodes|features|genes|matrix)\.'"
    name = PurePosixPath(unit.entries[0].name).name
    return f"'{escaped(re.escape(name.rsplit('_', 1)[-1]), 80)}$'"


def decide(units: list[Unit], entries: list[Entry], *, series_samples: list[str], wanted: list[str] | None) -> Choice:
    """The units to read (see the module docstring); raises :class:`LayoutError`."""
    selected = list(wanted) if wanted else list(series_samples)
    unknown = any(u.kind == ARCHIVE_UNKNOWN for u in units)
    readable = [u for u in units if u.kind != ARCHIVE_UNKNOWN]
    pool = readable if readable else units  # content known beats archives whose members are unknown
    dropped: list[tuple[Unit, str]] = [(u, "its members are unknown; a matrix whose content is known is preferred")
                                       for u in units if u not in pool]
    by_sample: dict[str, list[Unit]] = {}
    for s in selected:
        direct = [u for u in pool if u.sample == s and not u.archive]
        by_sample[s] = direct or [u for u in pool if u.sample == s and u.archive]
    have = [s for s in selected if by_sample[s]]
    if have:
        missing = [s for s in selected if not by_sample[s]]
        if missing:
            raise LayoutError(
                f"samples {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''} have no count matrix among "
                f"their files, while {', '.join(have[:8])}{' ...' if len(have) > 8 else ''} have one",
                f"set the registry column samples to the samples with counts (e.g. {','.join(have[:4])})",
                unknown_archives=unknown)
        chosen = []
        for s in selected:
            kept, gone = _resolve(by_sample[s])
            dropped += gone
            if len(kept) > 1:
                raise LayoutError(f"sample {s} offers {len(kept)} count matrices ({'; '.join(u.label() for u in kept)})",
                                  f"set the registry pattern to a regular expression that selects one of them "
                                  f"per sample (e.g. {_pattern_hint(kept[0])})", unknown_archives=unknown)
            chosen += kept
        kinds = sorted({u.kind for u in chosen})
        archives = sorted({escaped(u.archive, 80) for u in chosen if u.archive})
        where = f" in {', '.join(archives)}" if archives else ""
        layout = f"per-sample {' + '.join(kinds)}{where} ({len(chosen)} sample{'s' if len(chosen) != 1 else ''})"
        return _mark(Choice(chosen, layout), units, dropped, entries, other_level="series", selected=selected)
    series = [u for u in pool if not u.sample or u.sample not in series_samples]
    if series:
        kept, gone = _resolve(series)
        dropped += gone
        if len(kept) > 1:
            raise LayoutError(f"the series offers {len(kept)} count matrices for all its samples "
                              f"({'; '.join(u.label() for u in kept)})",
                              f"set the registry pattern to a regular expression that selects the one to read "
                              f"(e.g. '^{escaped(re.escape(kept[0].entries[0].name), 120)}$'); a pattern selecting several reads each as a batch",
                              unknown_archives=unknown)
        if wanted and (len(series_samples) > 1 or set(wanted) != set(series_samples)):
            raise LayoutError(f"the series offers only {kept[0].label()} for all its {len(series_samples)} samples: "
                              "the samples column cannot select cells from it",
                              "leave the registry column samples empty (the whole table is read)",
                              unknown_archives=unknown)
        return _mark(Choice(kept, f"series-level {kept[0].kind}"), units, dropped, entries, other_level="", selected=selected)
    found = [e for e in entries if not e.archive or e.sample in selected or not e.sample]
    unsupported = [e for e in found if e.kind.startswith("unsupported")]
    if unsupported:
        raise LayoutError(f"holds only formats this workflow cannot read: {_listed(unsupported)}"
                          + (f"; also {_listed([e for e in found if e not in unsupported], 6)}"
                             if len(found) > len(unsupported) else ""),
                          "convert the counts to .h5ad, 10x or a CSV/TSV count table and register that file with "
                          "source: file and path:, or set pattern to a file the series has",
                          unknown_archives=unknown)
    raise LayoutError(f"no count matrix recognised among {_listed(found) or 'no files'}",
                      "set the registry pattern to a regular expression selecting the count files",
                      unknown_archives=unknown)


def _mark(choice: Choice, units: list[Unit], dropped: list[tuple[Unit, str]], entries: list[Entry],
          other_level: str, selected: list[str]) -> Choice:
    chosen_ids = {u.id for u in choice.units}
    why = {u.id: reason for u, reason in dropped}
    for u in units:
        for e in u.entries:
            if u.id in chosen_ids:
                e.selected, e.note = True, f"chosen: {choice.layout}"
            elif u.kind == ARCHIVE_UNKNOWN and not u.sample and other_level == "series":
                e.note = "not chosen: the samples' own files are read (GEO's _RAW.tar holds copies of them)"
            elif u.id in why:
                e.note = f"not chosen: {why[u.id]}"
            elif u.sample and u.sample not in selected:
                e.note = "not chosen: sample not selected (registry column samples)"
            elif other_level == "series" and not u.sample:
                e.note = "not chosen: per-sample matrices are preferred"
            elif u.archive:
                e.note = "not chosen: the sample's own files are read"
            else:
                e.note = "not chosen"
    # An archive is downloaded when a chosen unit lies in it
    archives = {u.archive for u in choice.units if u.archive}
    for e in entries:
        if not e.archive and e.name in archives:
            e.selected = True
            e.note = f"downloaded for its members: {choice.layout}"
    return choice


def plan(entries: list[Entry], *, series_samples: list[str], wanted: list[str] | None,
         members: Callable[[Entry], list[tuple[str, int | None]] | None] | None = None) -> Choice:
    """Classify ``entries`` and choose (see :func:`decide`). ``members(entry)`` gives the member names (and
    sizes) of a listed archive, or None when they cannot be learnt; it is asked only when the choice may
    hang on what an archive holds: with every selected sample's own matrices listed, GEO's ``_RAW.tar``
    (a copy of them) is not looked into, and a lone archive of a record without samples is simply read. Member entries are appended
    to ``entries``. Raises LayoutError.
    """
    units = classify(entries)
    unknown = [u for u in units if u.kind == ARCHIVE_UNKNOWN]
    if (members and unknown and (len(units) > 1 or series_samples)
            and not _samples_complete(units, series_samples, wanted)):
        return _with_members(entries, series_samples, wanted, members)
    try:
        return decide(units, entries, series_samples=series_samples, wanted=wanted)
    except LayoutError:
        if members and unknown:
            return _with_members(entries, series_samples, wanted, members)
        raise


def _samples_complete(units: list[Unit], series_samples: list[str], wanted: list[str] | None) -> bool:
    selected = list(wanted) if wanted else list(series_samples)
    known = [u for u in units if u.kind != ARCHIVE_UNKNOWN and not u.archive]
    return bool(selected) and all(any(u.sample == s for u in known) for s in selected)


def _with_members(entries, series_samples, wanted, members) -> Choice:
    for archive in [e for e in entries if e.kind == ARCHIVE_UNKNOWN and not e.archive]:
        listed = members(archive)
        if listed is None:
            continue
        archive.kind = f"{ARCHIVE} ({len(listed)} members)"
        for name, size in listed:
            entries.append(Entry(name, sample_of_name(name, series_samples, archive.sample), archive.name, size))
    for e in entries:
        e.selected, e.note = False, ""
    kinds = {e.key: e.kind for e in entries if e.kind.startswith(f"{ARCHIVE} (") and e.kind != ARCHIVE_UNKNOWN}
    units = classify(entries)
    for e in entries:  # an archive whose members are known is no unit of its own
        if e.key in kinds:
            e.kind, e.unit = kinds[e.key], ""
    units = [u for u in units if not (u.kind == ARCHIVE_UNKNOWN and u.entries[0].key in kinds)]
    return decide(units, entries, series_samples=series_samples, wanted=wanted)


# ------------------------------------------------------------------------------------ member lists
def parse_filelist(text: str) -> dict[str, list[tuple[str, int | None]]]:
    """GEO's ``filelist.txt``: archive name -> [(member name, size)].

    Its lines are tab-separated ``Archive/File, Name, Time, Size, Type``: an ``Archive`` line names an
    archive, the ``File`` lines after it are its members.
    """
    out: dict[str, list[tuple[str, int | None]]] = {}
    current = None
    for line in text.splitlines():
        fields = line.rstrip("\r").split("\t")
        if len(fields) < 2:
            continue
        tag, name = fields[0].strip(), fields[1].strip()
        size = int(fields[3]) if len(fields) > 3 and fields[3].strip().isdigit() else None
        if tag == "Archive":
            current = out.setdefault(name, [])
        elif tag == "File" and current is not None:
            current.append((name, size))
    return out
