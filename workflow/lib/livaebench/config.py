"""Workflow configuration and the dataset registry: loaded, defaulted and validated in one place.

Errors name the offending key (config) or row and column (registry) in one line, because Snakemake's
own schema errors print the whole document.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from .errors import InputError

REGISTRY_COLUMNS = ["dataset", "modality", "source", "accession", "path", "label_key", "batch_key",
                    "pattern", "orientation", "organism", "max_cells", "notes"]


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
    return _fill_defaults(config, schema)


def load_registry(path: str | Path, schema_path: str | Path) -> pd.DataFrame:
    """Read and validate the dataset registry TSV; returns one row per dataset, indexed by dataset id."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset registry {path}", "does not exist",
                         "point the config key 'datasets' (or --config datasets=...) at a TSV file")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    unknown = sorted(set(table.columns) - set(REGISTRY_COLUMNS))
    if unknown:
        raise InputError(f"dataset registry {path}", f"unknown column(s) {', '.join(unknown)}",
                         f"use only: {', '.join(REGISTRY_COLUMNS)}")
    for column in REGISTRY_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    if table.empty:
        raise InputError(f"dataset registry {path}", "has no rows", "add one row per dataset")
    duplicated = table["dataset"][table["dataset"].duplicated()].tolist()
    if duplicated:
        raise InputError(f"dataset registry {path}", f"dataset id(s) listed twice: {', '.join(duplicated)}",
                         "give every row a unique 'dataset'")
    schema = _load_schema(schema_path)
    for line, row in enumerate(table.to_dict("records"), start=2):
        error = _first_error(row, schema)
        if error is not None:
            column = ".".join(str(p) for p in error.absolute_path) or "row"
            raise InputError(f"dataset registry {path}, line {line} (dataset '{row.get('dataset', '')}')",
                             f"column '{column}': {error.message}", "correct the value in the TSV")
    return table.set_index("dataset", drop=False)
