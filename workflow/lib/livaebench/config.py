"""Workflow configuration and the dataset registry: loaded, defaulted and validated in one place.

Errors name the offending key (config) or row and column (registry) in one line, because Snakemake's
own schema errors print the whole document.

The registry is read exactly as written: tab-separated, one row per line, every value a string taken
verbatim (no quoting, no whitespace stripping, no "NA"/"None" conversion, ``#`` only starts a comment
at the start of a line). Every value is then type-checked here, so a row that loads is a row that works.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from .errors import InputError
from .labels import PSEUDO_PREFIX, label_key_problem

QC_COLUMNS = ["min_genes", "min_peaks", "min_cells", "max_mito_pct"]
REGISTRY_COLUMNS = ["dataset", "modality", "source", "accession", "path", "label_key", "batch_key",
                    "pattern", "orientation", "organism", "max_cells", *QC_COLUMNS, "feature_names", "samples", "notes"]
# What a registry row's feature names are: gene symbols (the default), stable ids (Ensembl, peak
# coordinates) or placeholders (a source that ships none). Steps keyed on symbols (the mitochondrial cap,
# gene-set enrichment) run only on 'symbols' and say in one line where they are skipped.
FEATURE_NAMES = ("symbols", "ids", "placeholder")


def has_symbols(row) -> bool:
    """Whether a registry row's feature names are gene symbols (empty = symbols, the default)."""
    return (row.get("feature_names", "") or "symbols") == "symbols"
# The samples column: GEO sample ids and ranges of them, comma-separated (GSM1,GSM5-GSM8).
_SAMPLE_ITEM_RE = re.compile(r"(GSM[0-9]+)(?:-(GSM[0-9]+))?")
MAX_SAMPLE_RANGE = 1000  # a longer range is a typo more often than a study


def parse_samples(text: str) -> list[str]:
    """The GSM ids a registry ``samples`` value names, ranges expanded in order (``GSM8248668-GSM8248676``
    is nine ids); '' gives []. Raises ValueError (one line) for a malformed id or range or a repeated id."""
    out: list[str] = []
    for item in (text.split(",") if text.strip() else []):
        m = _SAMPLE_ITEM_RE.fullmatch(item.strip())
        if not m:
            raise ValueError(f"{_shown(item.strip())} is not a GSM id or a range GSMa-GSMb")
        first, last = int(m[1][3:]), int(m[2][3:]) if m[2] else int(m[1][3:])
        if last < first or last - first >= MAX_SAMPLE_RANGE:
            raise ValueError(f"range {_shown(item.strip())} must go up and span at most {MAX_SAMPLE_RANGE} ids")
        out += [f"GSM{n}" for n in range(first, last + 1)]
    repeated = sorted({s for s in out if out.count(s) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated[:3])} listed twice")
    return out


# Free-text columns: any characters but tabs, line breaks and control characters.
_TEXT_COLUMNS = ("organism", "notes")

# A name that becomes part of a file path: dataset ids, method and comparison names.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NAME_RULE = "1-100 letters, digits, '_', '.' or '-', starting with a letter or digit, without '..'"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_ACCESSION_RE = re.compile(r"(GSE|GSM)[0-9]+")
_UINT_RE = re.compile(r"[0-9]+")
_NUMBER_RE = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _shown(value: Any, limit: int = 60) -> str:
    """A value quoted on one line (line breaks and control characters escaped), cut to a readable length."""
    shown = ascii(value) if isinstance(value, str) else repr(value)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def check_name(kind: str, name: Any) -> str:
    """Check a name that becomes part of file paths (dataset id, method or comparison name).

    The whole name must match ``NAME_RE`` (``re.fullmatch``: no trailing newline slips through as it
    would with ``^...$``) and must not contain ``..``. Returns the name; raises a one-line InputError
    naming ``kind`` (e.g. "method", "comparison") and the rule otherwise.
    """
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise InputError(f"{kind} name {_shown(name)}", "cannot be used in file paths",
                         f"use {NAME_RULE}")
    return name


def _load_schema(path: str | Path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _fill_defaults(instance: Any, schema: dict) -> Any:
    """Insert schema defaults for missing object keys, recursively (jsonschema validates but never fills)."""
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return instance
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)
    return instance


def _first_error(instance: Any, schema: dict) -> jsonschema.ValidationError | None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.path), list(map(str, e.path))))
    return errors[0] if errors else None


def validate_config(config: dict, schema_path: str | Path, source: str = "config") -> dict:
    """Validate a workflow config against its schema and fill defaults. Returns the (mutated) config."""
    schema = _load_schema(schema_path)
    error = _first_error(config, schema)
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        problem = error.message
        if error.validator == "additionalProperties":
            unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            path.append(unknown[0])
            problem = "is not a known key"
        key = ".".join(path) or "(top level)"
        raise InputError(f"{source}: key '{key}'", problem, "correct it as documented in config/README.md")
    config = _fill_defaults(config, schema)
    # `methods` by modality: kept as `methods_by_modality`; `methods` becomes the union (first-seen order),
    # which is what every reader of the method list (controls, report, comparisons) needs
    if isinstance(config["methods"], dict):
        config["methods_by_modality"] = {k: list(v) for k, v in config["methods"].items()}
        config["methods"] = list(dict.fromkeys(m for names in config["methods"].values() for m in names))
    return config


def runs_on(config: dict, method: str, modality: str) -> bool:
    """Whether the config's method lists put ``method`` on datasets of ``modality`` (controls are added
    by the workflow on every modality; a plain `methods` list puts every method on every modality)."""
    by_modality = config.get("methods_by_modality")
    return by_modality is None or method in by_modality.get(modality, []) or method not in config["methods"]


# ------------------------------------------------------------------------------------ the registry
def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the registry's non-blank, non-comment lines; \\r\\n endings are accepted."""
    what = f"dataset registry {path}"
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(what, f"is not UTF-8 text (byte {exc.start})", "save the registry as UTF-8 text") from None
    lines = text.replace("\r\n", "\n").split("\n")
    return [(number, line) for number, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def _split_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    what = f"dataset registry {path}"
    lines = _read_lines(path)
    if not lines:
        raise InputError(what, "is empty", "write a header line and one row per dataset (docs/adding-a-dataset.md)")
    (_, header_line), body = lines[0], lines[1:]
    header = header_line.split("\t")
    while header and header[-1] == "":  # a trailing tab
        header.pop()
    if len(header) == 1 and ("," in header[0] or " " in header[0]):
        raise InputError(what, f"has a header of one column {_shown(header[0])} (not tab-separated?)",
                         "separate the columns with tabs")
    unknown = [c for c in header if c not in REGISTRY_COLUMNS]
    if unknown:
        raise InputError(what, f"unknown column(s) {', '.join(map(_shown, unknown))}",
                         f"use only: {', '.join(REGISTRY_COLUMNS)}")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError(what, f"column(s) {', '.join(repeated)} appear twice in the header", "keep one of each")
    rows = []
    for number, line in body:
        fields = line.split("\t")
        extra = fields[len(header):]
        if any(extra):
            raise InputError(f"{what}, line {number}",
                             f"has {len(fields)} tab-separated fields but the header has {len(header)}",
                             "remove the extra tabs (a value cannot contain a tab) or name the column in the header")
        fields = fields[: len(header)] + [""] * (len(header) - len(fields))  # missing trailing cells are empty
        rows.append((number, dict(zip(header, fields))))
    return header, rows


def _value_problem(column: str, value: str) -> tuple[str, str] | None:
    """(problem, fix) for a value that is not written as a registry value must be, else None."""
    if _CONTROL_RE.search(value):
        return "contains a control character", "remove it (values are plain text on one line)"
    if column in _TEXT_COLUMNS or not value:
        return None
    if value != value.strip():
        return (f"value {_shown(value)} has leading or trailing whitespace",
                "remove the spaces (values are read exactly as written)")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return (f"value {_shown(value)} is quoted",
                "remove the quotes (the registry is tab-separated and read exactly as written, no quoting)")
    return None


def _row_problem(row: dict) -> tuple[str, str, str] | None:
    """(column, problem, fix) for the first value that is wrong for its column or for the row's kind."""
    source, modality = row["source"], row["modality"]
    try:
        check_name("dataset", row["dataset"])
    except InputError as err:
        return "dataset", f"{_shown(row['dataset'])} {err.problem}", err.fix
    if source == "geo":
        if not _ACCESSION_RE.fullmatch(row["accession"]):
            return "accession", f"{_shown(row['accession'])} is not a GEO accession", "write GSE or GSM and digits, e.g. GSE132188"
        if row["path"]:
            return ("path", "is set but source is 'geo' (the files are downloaded into results/downloads/{dataset})",
                    "leave path empty, or set source to 'file' to read the local path")
        try:
            samples = parse_samples(row.get("samples", ""))
        except ValueError as exc:
            return "samples", str(exc), "write GSM ids or ranges separated by commas, e.g. GSM8248668-GSM8248676,GSM8248690"
        if samples and row["accession"].startswith("GSM"):
            return "samples", "is set but the accession is a sample (GSM)", \
                "give the series (GSE) as accession, or leave samples empty"
        if row["pattern"] and row["pattern"] != "auto":
            try:
                re.compile(row["pattern"])
            except re.error as exc:
                return "pattern", f"{_shown(row['pattern'])} is not a valid regular expression ({exc})", \
                    "correct the regular expression (Python syntax)"
    else:
        if row["accession"] and not _ACCESSION_RE.fullmatch(row["accession"]):
            return "accession", f"{_shown(row['accession'])} is not a GEO accession", \
                "write GSE or GSM and digits, or leave it empty"
        if row["pattern"]:
            return ("pattern", "is set but source is 'file' (pattern selects GEO supplementary files only)",
                    "leave pattern empty and point path at the file itself")
        if row.get("samples"):
            return ("samples", "is set but source is 'file' (samples selects GEO samples only)",
                    "leave samples empty")
    problem = label_key_problem(row["label_key"])  # pseudo:kmeans[:K] (livaebench.labels)
    if problem is not None:
        return ("label_key", *problem)
    if row["batch_key"].lower().startswith(PSEUDO_PREFIX):
        return "batch_key", f"{_shown(row['batch_key'])}: pseudo-labels are for label_key only", \
            "name an obs column with batches, or leave batch_key empty"
    if row["max_cells"] and (not _UINT_RE.fullmatch(row["max_cells"]) or int(row["max_cells"]) < 1):
        return "max_cells", f"{_shown(row['max_cells'])} is not a positive whole number", \
            "write a number of cells such as 5000, or leave it empty for all cells"
    wrong = {"rna": ("min_peaks", "min_genes"), "atac": ("min_genes", "min_peaks")}[modality]
    if row[wrong[0]]:
        return (wrong[0], f"applies to {'ATAC' if modality == 'rna' else 'RNA'} datasets, this one is {modality}",
                f"use {wrong[1]} (the minimum detected {'genes' if modality == 'rna' else 'peaks'} per cell)")
    for column in ("min_genes", "min_peaks", "min_cells"):
        if row[column] and not _UINT_RE.fullmatch(row[column]):
            return column, f"{_shown(row[column])} is not a whole number >= 0", \
                "write a whole number, or leave it empty for the config's preprocess value"
    if row["max_mito_pct"]:
        if modality != "rna":
            return "max_mito_pct", "applies to RNA datasets only (mitochondrial genes)", "leave it empty"
        if not _NUMBER_RE.fullmatch(row["max_mito_pct"]) or not 0 <= float(row["max_mito_pct"]) <= 100:
            return "max_mito_pct", f"{_shown(row['max_mito_pct'])} is not a percentage from 0 to 100", \
                "write a number such as 20, or leave it empty for the config's preprocess value"
    return None


def load_registry(path: str | Path, schema_path: str | Path) -> pd.DataFrame:
    """Read and validate the dataset registry TSV; returns one row per dataset, indexed by dataset id.

    Every value is a string exactly as written in the file (empty = not set); missing optional columns
    are added empty. Errors name the file, the line, the dataset and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset registry {path}", "does not exist",
                         "point the config key 'datasets' (or --config datasets=...) at a TSV file")
    _, rows = _split_rows(path)
    if not rows:
        raise InputError(f"dataset registry {path}", "has no rows", "add one row per dataset")
    schema = _load_schema(schema_path)
    seen: dict[str, int] = {}
    records = []
    for number, row in rows:
        where = f"dataset registry {path}, line {number} (dataset {_shown(row.get('dataset', ''))})"
        for column, value in row.items():
            problem = _value_problem(column, value)
            if problem:
                raise InputError(where, f"column '{column}': {problem[0]}", problem[1])
        if "dataset" in row:  # before the schema: its pattern cannot say what is wrong with a name
            try:
                check_name("dataset", row["dataset"])
            except InputError as err:
                raise InputError(where, f"column 'dataset': {_shown(row['dataset'])} {err.problem}", err.fix) from None
        error = _first_error(row, schema)
        if error is not None:
            column = ".".join(str(p) for p in error.absolute_path) or "row"
            raise InputError(where, f"column '{column}': {error.message}", "correct the value in the TSV")
        row = {column: row.get(column, "") for column in REGISTRY_COLUMNS}
        problem = _row_problem(row)
        if problem is None and row["source"] == "file" and not Path(row["path"]).exists():
            # Snakemake would stop every dataset's jobs with a MissingInputException: say it here, in one line
            problem = ("path", f"{_shown(row['path'], 200)} does not exist (relative paths start at the working "
                       f"directory {Path.cwd()})", "correct the path, or remove the row until the file is there")
        if problem is not None:
            raise InputError(where, f"column '{problem[0]}': {problem[1]}", problem[2])
        key = row["dataset"].lower()  # output paths of 'A' and 'a' collide on case-insensitive file systems
        if key in seen:
            raise InputError(where, f"dataset id listed twice (also on line {seen[key]}; ids differing only in "
                             "case count as the same)", "give every row a unique 'dataset'")
        seen[key] = number
        if row["source"] == "geo" and not row["batch_key"] and len(parse_samples(row["samples"])) > 1:
            row["batch_key"] = "sample"  # several samples of a series: each is a batch (obs['sample'])
        records.append(row)
    table = pd.DataFrame.from_records(records, columns=REGISTRY_COLUMNS).astype(object)
    return table.set_index("dataset", drop=False)


def _edits(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``."""
    previous, current = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, current = previous, current, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
    return current[-1]


def registered_datasets(key: str, names, registry, source: str = "config") -> tuple[list[str], list[str]]:
    """(kept, ignored): the datasets a per-dataset config entry names (an analysis' ``datasets``,
    ``dataset_method_params``) that the registry has, and those it has not.

    One rule for every such key: a name a typo away from a registered dataset (case aside, at most one edit
    per four characters and two in all: `pancraes`, `Cellbench`) is an error naming the key and the closest
    names; any other unregistered name is a dataset of another registry (a shared config may name the
    shipped pancreas while a run reads config/paper_datasets.tsv), ignored for the run, and the caller says
    so in a warning.
    """
    registry = [str(d) for d in registry]
    kept, ignored = [], []
    for name in map(str, names):
        if name in registry:
            kept.append(name)
            continue
        limit = max(1, min(2, len(name) // 4))
        edits = {d: _edits(name.lower(), d.lower()) for d in registry}
        close = sorted((d for d in registry if edits[d] <= limit), key=lambda d: (edits[d], d))
        if close:
            raise InputError(f"{source}: key '{key}'", f"'{name}' is not in the dataset registry",
                             f"did you mean {' or '.join(repr(d) for d in close[:3])}?")
        ignored.append(name)
    return kept, ignored


# ----------------------------------------------------------------------------------- QC thresholds
def preprocess_options(row: dict, options: dict) -> dict:
    """Keyword arguments of ``preprocess()`` for one dataset: the config's ``preprocess`` values,
    overridden by the registry row's QC columns where they are set.

    Returns ``n_features``, ``min_genes`` (RNA: ``min_genes``; ATAC: ``min_peaks``, the minimum detected
    peaks), ``min_cells``, ``max_mito_pct``, ``overrides`` (the registry columns that replaced a config
    value, for the log) and ``skipped`` (one log line per symbol-keyed step that does not apply). Values are re-checked, so a hand-made row cannot pass a bad type through.
    """
    modality = row["modality"]
    problem = _row_problem({column: str(row.get(column, "") or "") for column in REGISTRY_COLUMNS})
    if problem is not None and problem[0] in QC_COLUMNS:
        raise InputError(f"dataset '{row['dataset']}'", f"registry column '{problem[0]}': {problem[1]}", problem[2])
    detected = "min_genes" if modality == "rna" else "min_peaks"
    out = {"n_features": options[f"n_features_{modality}"], "min_genes": options[detected],
           "min_cells": options["min_cells"], "max_mito_pct": options.get("max_mito_pct"), "overrides": {}}
    for column, key, cast in ((detected, "min_genes", int), ("min_cells", "min_cells", int),
                              ("max_mito_pct", "max_mito_pct", float)):
        value = str(row.get(column, "") or "")
        if value:
            out[key] = cast(value)
            out["overrides"][column] = out[key]
    out["skipped"] = []
    if out["max_mito_pct"] is not None and modality == "rna" and not has_symbols(row):
        out["skipped"].append(f"max_mito_pct={out['max_mito_pct']:g} skipped: the registry says this dataset's "
                              f"feature names are {row['feature_names']}, not gene symbols (no MT- genes to find)")
        out["max_mito_pct"] = None
    return out
