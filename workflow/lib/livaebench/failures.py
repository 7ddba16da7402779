"""Methods that fail on one dataset: recorded, carried through the chain, reported; the study goes on.

A training job whose method raises writes a *failure record* instead of latents (``latent.npz`` with
``status = failed`` and a one-line ``reason``; declared artifacts get a text stub saying the same).
The embed job passes the record on in the embedding's ``uns``, the evaluate job writes one metric row
with ``status = failed`` and the reason, and ``results/metrics/all.tsv`` keeps it: the statistics
leave the run out, the figures and the report list it. With ``on_method_failure: stop`` in the config
the job fails instead (for debugging).
"""
from __future__ import annotations

import logging
import traceback
from pathlib import Path

import numpy as np

from .latents import save_latents

FAILED = "failed"
OK = "ok"


def one_line(err: BaseException, limit: int = 300) -> str:
    """The exception as one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def record_failure(latent_path: str | Path, artifact_paths, err: BaseException, *, what: str,
                   log: logging.Logger) -> str:
    """Write the failure record (and artifact stubs), log the traceback and a closing line; return the reason."""
    reason = one_line(err)
    log.info("traceback of the failure:\n%s", "".join(traceback.format_exception(err)).rstrip())
    save_latents(latent_path, {"status": np.array(FAILED), "reason": np.array(reason)})
    for path in artifact_paths:
        Path(path).write_text(f"{what} failed: {reason}\n")
    log.error(f"{what}: FAILED ({reason}). The study goes on without it (status=failed in "
              "results/metrics/all.tsv). Fix: read the traceback in the job's log, change method_params or "
              "remove the method for this dataset, then rerun the same target")
    return reason


def failure_reason(arrays: dict) -> str | None:
    """The reason of a failure record (``load_latents`` output or an embedding's uns), else None."""
    status = arrays.get("status")
    if status is not None and str(np.asarray(status)) == FAILED:
        return str(np.asarray(arrays.get("reason", "unknown reason")))
    return None
