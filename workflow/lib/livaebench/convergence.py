"""Was every neural training run to convergence? The under-trained rule, the per-run summary that the
metric tables carry, the table of every training phase (``results/metrics/convergence.tsv``) and the
fairness table (``results/stats/fairness.tsv``: each method's settings in this run against its original's).

The records come from :func:`livaebench.training.convergence_record` (one per training phase; the
engine, scvi-tools and scTour each leave them), written by ``registry.fit_method`` and carried in
``latent.npz`` → the embedding's ``uns`` → the metric tables.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

# A run whose training stopped at its epoch limit while its monitored loss still fell by more than this
# fraction over the last 10 % of epochs is under-trained (config key convergence.max_rel_improvement).
DEFAULT_MAX_REL_IMPROVEMENT = 0.01

CONVERGENCE_COLUMNS = ["dataset", "method", "seed", "phase", "epochs_run", "max_epochs", "stop_reason",
                       "stop_detail", "tail_epochs", "rel_change_loss", "rel_change_val_loss", "under_trained"]
# What the per-run metric tables carry (results/metrics/{dataset}/{method}/seed{seed}.tsv, all.tsv)
RUN_COLUMNS = ["epochs_run", "stop_reason", "under_trained"]
NOT_DECLARED = "not declared"


def tail_improvement(record: Mapping[str, Any]) -> float:
    """Relative decrease over the last 10 % of epochs of the validation loss, or of the training loss when
    the phase had no validation (positive: still improving); NaN when neither is known."""
    for key in ("rel_change_val_loss", "rel_change_loss"):
        value = record.get(key)
        if value is not None and math.isfinite(float(value)):
            return -float(value)
    return math.nan


def phase_under_trained(record: Mapping[str, Any],
                        max_rel_improvement: float = DEFAULT_MAX_REL_IMPROVEMENT) -> bool | None:
    """True when the phase stopped at its epoch limit while still improving by more than the threshold;
    None (undecidable) when it stopped at the limit with no loss change to judge (fewer than 2 epochs)."""
    if record.get("stop_reason") != "max_epochs":
        return False
    improvement = tail_improvement(record)
    if math.isnan(improvement):
        return None
    return improvement > max_rel_improvement


def run_under_trained(records: list[Mapping[str, Any]] | None,
                      max_rel_improvement: float = DEFAULT_MAX_REL_IMPROVEMENT) -> bool | None:
    """A run is under-trained when any of its phases is; None for a run without records (a failed or
    non-iterative method) or whose only doubtful phases cannot be judged."""
    if not records:
        return None
    flags = [phase_under_trained(r, max_rel_improvement) for r in records]
    if any(f is True for f in flags):
        return True
    return None if any(f is None for f in flags) else False


def tri_state(flag: bool | None) -> str | None:
    """``true`` / ``false`` / missing (written as NA), as the tables spell it."""
    return None if flag is None else ("true" if flag else "false")


def run_summary(records: list[Mapping[str, Any]] | None,
                max_rel_improvement: float = DEFAULT_MAX_REL_IMPROVEMENT) -> dict[str, Any]:
    """The columns a run's metric rows carry: ``epochs_run`` (summed over phases), ``stop_reason`` (the
    phase's reason, or ``phase:reason,...`` for several phases) and ``under_trained`` (true/false/NA).
    A run without records (classical method, failure) gets NA in all three."""
    if not records:
        return dict.fromkeys(RUN_COLUMNS)
    if len(records) == 1:
        reason = records[0]["stop_reason"]
    else:
        reason = ",".join(f"{r.get('phase', i)}:{r['stop_reason']}" for i, r in enumerate(records))
    return {"epochs_run": int(sum(int(r["epochs_run"]) for r in records)), "stop_reason": reason,
            "under_trained": tri_state(run_under_trained(records, max_rel_improvement))}


def convergence_rows(records: list[Mapping[str, Any]] | None, *, dataset: str, method: str, seed: int,
                     max_rel_improvement: float = DEFAULT_MAX_REL_IMPROVEMENT) -> list[dict[str, Any]]:
    """One row per training phase of one run (none for a run without records)."""
    rows = []
    for i, r in enumerate(records or []):
        rows.append({"dataset": dataset, "method": method, "seed": int(seed), "phase": r.get("phase", str(i)),
                     "epochs_run": int(r["epochs_run"]), "max_epochs": int(r["max_epochs"]),
                     "stop_reason": r["stop_reason"], "stop_detail": r.get("stop_detail", ""),
                     "tail_epochs": r.get("tail_epochs"), "rel_change_loss": r.get("rel_change_loss"),
                     "rel_change_val_loss": r.get("rel_change_val_loss"),
                     "under_trained": tri_state(phase_under_trained(r, max_rel_improvement))})
    return rows


def convergence_table(runs: Iterable[tuple[str, str, int, list | None]],
                      max_rel_improvement: float = DEFAULT_MAX_REL_IMPROVEMENT) -> pd.DataFrame:
    """Every phase of every run ``(dataset, method, seed, records)``; runs without records leave no row."""
    rows = [row for dataset, method, seed, records in runs
            for row in convergence_rows(records, dataset=dataset, method=method, seed=seed,
                                        max_rel_improvement=max_rel_improvement)]
    table = pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)
    return table.sort_values(["dataset", "method", "seed"], kind="stable").reset_index(drop=True)


def is_true(column: pd.Series) -> pd.Series:
    """The rows of a true/false/NA column that are true (read back as text or as booleans)."""
    return column.astype(str).str.strip().str.lower() == "true"


def flagged_runs(table: pd.DataFrame) -> pd.DataFrame:
    """Under-trained runs ``dataset method seed phases`` from a convergence table (or a metric table)."""
    if "under_trained" not in table or table.empty:
        return pd.DataFrame(columns=["dataset", "method", "seed", "phases"])
    hit = table[is_true(table["under_trained"])]
    phases = "phase" if "phase" in hit else "stop_reason"
    grouped = hit.groupby(["dataset", "method", "seed"], sort=True)[phases]
    return grouped.agg(lambda s: ", ".join(dict.fromkeys(map(str, s)))).rename("phases").reset_index()


class FlaggedRunsCaption:
    """The flagged runs of a convergence table as an RST list, read when the report is made.

    Used as a rule parameter (``{{ snakemake.params.flagged }}`` in the report caption): Snakemake cannot
    serialise the object, so it never takes part in rerun decisions, and ``str()`` reads the table at the
    moment the caption is rendered.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)

    def __str__(self) -> str:
        path = Path(self.path)
        if not path.is_file():
            return f"(``{self.path}`` has not been written yet)"
        table = pd.read_csv(path, sep="\t", dtype={"under_trained": str, "dataset": str, "method": str})
        flagged = flagged_runs(table)
        if flagged.empty:
            return "**No run is flagged.**"
        items = [f"- ``{r.dataset}/{r.method}/seed{r.seed}`` (phase {r.phases})" for r in flagged.itertuples()]
        return f"**Flagged runs ({len(flagged)}):**\n\n" + "\n".join(items)


# --------------------------------------------------------------------------------------- fairness

FAIRNESS_COLUMNS = ["method", "family", "origin", "budget_original", "settings_run", "settings_original",
                    "settings_differing", "epochs_run", "stop_reason", "under_trained_runs", "n_deviations"]


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_fmt, value)) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _values_by_dataset(values: Mapping[str, Any]) -> str:
    """One value, or ``a (d1, d2) / b (d3)`` when datasets override it differently."""
    groups: dict[str, list[str]] = {}
    for dataset, value in values.items():
        groups.setdefault(_fmt(value), []).append(dataset)
    if len(groups) == 1:
        return next(iter(groups))
    return " / ".join(f"{v} ({', '.join(ds)})" for v, ds in groups.items())


def _training_summary(rows: pd.DataFrame) -> tuple[str | None, str | None, str | None]:
    """Epochs run (min–max per phase), stop reasons (counted per phase) and under-trained runs of a method."""
    if rows.empty:
        return None, None, None
    epochs, reasons = [], []
    for phase, part in rows.groupby("phase", sort=False):
        lo, hi = int(part["epochs_run"].min()), int(part["epochs_run"].max())
        limit = int(part["max_epochs"].max())
        epochs.append(f"{phase} {lo if lo == hi else f'{lo}–{hi}'}/{limit}")
        counts = Counter(part["stop_reason"].astype(str))
        reasons.append(f"{phase}: " + ", ".join(f"{r} ×{n}" for r, n in counts.most_common()))
    runs = rows.groupby(["dataset", "seed"])["under_trained"].agg(lambda s: is_true(s).any())
    return "; ".join(epochs), "; ".join(reasons), f"{int(runs.sum())} of {len(runs)}"


def fairness_table(methods: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   convergence: pd.DataFrame, global_params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per method: its origin and the original's budget, the value of every parameter the origin
    declares as used in this run (registry default + workflow-wide settings + method_params +
    dataset_method_params, per dataset) beside the original's, the epochs actually run and why training
    stopped (from the convergence table), and the number of declared deviations.

    ``methods``: name → registry ``Method``; ``overrides``: name → {dataset: overrides on that dataset}
    (the datasets the method runs on). A method without an origin shows ``not declared``.
    """
    rows = []
    for name, method in methods.items():
        per_dataset = overrides.get(name) or {}
        origin = getattr(method, "origin", None)
        params = {d: method.resolve_params(o, global_params) for d, o in per_dataset.items()}
        if origin is None:
            run = original = differing = NOT_DECLARED
        else:
            run = "; ".join(f"{k}={_values_by_dataset({d: p.get(k) for d, p in params.items()})}"
                            for k in origin.defaults) if params else "(no dataset of its modality)"
            original = "; ".join(f"{k}={_fmt(v)}" for k, v in origin.defaults.items())
            differing = ", ".join(k for k, v in origin.defaults.items()
                                  if any(p.get(k) != v for p in params.values())) or "none"
        part = convergence[convergence["method"] == name] if len(convergence) else convergence
        epochs, reasons, under = _training_summary(part)
        rows.append({"method": name, "family": method.family,
                     "origin": NOT_DECLARED if origin is None else origin.source,
                     "budget_original": NOT_DECLARED if origin is None else (origin.budget or NOT_DECLARED),
                     "settings_run": run, "settings_original": original, "settings_differing": differing,
                     "epochs_run": epochs, "stop_reason": reasons, "under_trained_runs": under,
                     "n_deviations": len(getattr(method, "deviations", ()) or ())})
    return pd.DataFrame(rows, columns=FAIRNESS_COLUMNS)


def read_convergence(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"dataset": str, "method": str, "phase": str, "stop_reason": str,
                                              "stop_detail": str, "under_trained": str})
