"""The one training engine for every neural model of the benchmark.

A model subclasses ``EngineModel`` and says, for a minibatch, which loss terms it has
(``loss_terms(batch) -> {name: scalar tensor}``, each a per-cell mean) and how they are weighted
(``loss_weights``); the engine sums, optimizes, validates, logs, checkpoints and stops. Everything
model-specific stays in the model; everything about running an optimization stays here.

What the engine guarantees:

* **Data path.** ``data`` is a dict of tensors whose first dimension is the cell; they go to the
  device once. A minibatch is an index tensor from a seeded ``torch.randperm`` per epoch, split into
  near-equal chunks (no tiny last batch), and every tensor is sliced with it: no per-cell Python.
* **No per-step host synchronisation.** Each step keeps its loss terms as one small device tensor; the
  epoch's means and the first minibatch at which a term was non-finite are computed from them and read
  once at the epoch's end (docs/performance.md: where a step's time goes).
* **Reproducibility.** Splits and batch orders come from generators seeded from the run's seed; model
  noise from torch's global generator, seeded by ``torch_runtime``. The validation pass runs under a
  forked, re-seeded generator, so (a) it never shifts the training noise and (b) every epoch's
  validation loss is computed with the same noise (a fair comparison for early stopping). On the CPU
  with a fixed thread count, the same seed gives bit-identical parameters.
* **Resume.** ``checkpoint.pt`` in ``outdir`` holds model, optimizer, every RNG state, the early-stopping
  state and the log so far; a run that finds one (made with the same configuration and data) continues
  from it and ends bit-identical to an uninterrupted run.
* **Outputs.** ``train_log.tsv`` (epoch, each loss term, loss, val_loss, seconds), ``train_info.json``
  (device, threads, epochs, best epoch, time), ``checkpoint.pt``. The caller saves the final model.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from .runtime import show_progress_bar

__all__ = [
    "EngineModel", "TrainConfig", "TrainResult", "NonFiniteLossError", "train", "torch_runtime",
    "resolve_device", "derive_seed", "convergence_record", "OPTIMIZERS",
]

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.tsv"
INFO_NAME = "train_info.json"


class EngineModel(nn.Module):
    """What the engine needs from a model (subclass it)."""

    @property
    def loss_weights(self) -> Mapping[str, float]:
        """Weight of each loss term in the optimized total; a term not listed has weight 1."""
        return {}

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Scalar loss terms (per-cell means) for one minibatch; the same names, in the same order, every call."""
        raise NotImplementedError

    def on_fit_start(self, n_train: int) -> None:
        """Called once before training with the number of training cells (e.g. for dataset-size estimators)."""

    def on_step(self, step: int) -> None:
        """Called before every optimization step with the global step (e.g. for annealed weights)."""

    def phases(self) -> list[dict[str, Any]]:
        """Training phases, each a dict with a ``name`` and optional TrainConfig overrides (e.g. ``epochs``).

        One phase by default. A model trained in stages (pretraining, then a clustering objective)
        lists them; the adapter calls :meth:`start_phase` before each and trains it to completion.
        """
        return [{"name": "fit"}]

    def start_phase(self, name: str, data: Mapping[str, torch.Tensor]) -> None:
        """Prepare a phase (switch objectives, initialise cluster centres from the current embedding)."""

    def stop_rule(self, epoch: int, data: Mapping[str, torch.Tensor]) -> str | None:
        """The model's own rule to end the current phase after ``epoch`` (e.g. "fewer than 0.1 % of cells
        changed cluster"): a one-line reason to stop, or None to go on. Called after every epoch; state it
        keeps between calls belongs in buffers, so a resumed run decides the same way."""
        return None

    def latents(self, data: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The embeddings of every cell after training: at least ``X_latent`` (cells x d, float32)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The model's configuration: saved beside its weights and part of the checkpoint's identity."""
        return {"class": type(self).__name__}


OPTIMIZERS = ("adam", "amsgrad", "adadelta", "sgd")
LR_SCHEDULES = ("constant", "cosine")
# Convergence record: the loss change is measured over this share of the epochs run (at least 2 epochs).
CONVERGENCE_TAIL = 0.10


@dataclass
class TrainConfig:
    epochs: int = 400
    batch_size: int | None = 128  # None: full batch
    lr: float = 1e-4
    weight_decay: float = 0.0
    optimizer: str = "adam"         # adam | amsgrad | adadelta | sgd (the original method's choice)
    momentum: float = 0.9           # sgd only
    lr_schedule: str = "constant"   # constant | cosine: lr · ½(1 + cos(π (epoch − 1) / epochs)), set per epoch
    monitor: str = "val_loss"       # what early stopping watches: val_loss, loss (training) or a loss term's name
    grad_clip: float | None = 1.0  # max global gradient norm; None or <= 0: no clipping
    val_frac: float = 0.15          # 0: no validation, no early stopping
    patience: int = 25              # epochs without improvement of val_loss; <= 0: no early stopping
    min_delta: float = 0.0
    restore_best: bool = True       # end with the parameters of the best validation epoch
    checkpoint_seconds: float = 60.0  # write checkpoint.pt when this much time passed since the last one
    log_every: int = 10             # a log line every N epochs (plus first and last)


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    resumed_from: int  # epochs already done in the checkpoint the run resumed from (0: fresh)
    device: str
    n_train: int
    n_val: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message is one line naming dataset, method, epoch and term."""

    def __init__(self, dataset: str, method: str, epoch: int, terms: list[str], value: float,
                 step: int | None = None):
        self.dataset, self.method, self.epoch, self.terms, self.value, self.step = (
            dataset, method, epoch, terms, value, step)
        where = f"epoch {epoch}" + (f" (minibatch {step + 1})" if step is not None else "")
        names = ", ".join(f"'{t}'" for t in terms)
        super().__init__(
            f"dataset '{dataset}', method '{method}': loss term {names} became {value} at {where}. "
            "Fix: check the input for NaN/inf or empty cells, or lower lr / enable grad_clip")


# ---------------------------------------------------------------------------- runtime
def derive_seed(seed: int, *purpose: int) -> int:
    """An independent 63-bit seed for one purpose (split, batch order, validation noise) of one run."""
    return int(np.random.SeedSequence([int(seed), *purpose]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def resolve_device(requested: str | None) -> torch.device:
    """None -> CUDA when available, else CPU."""
    if requested is None or str(requested) == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            from .errors import InputError
            raise InputError(f"device '{requested}'", "CUDA is not available on this machine",
                             "leave the device unset (auto) or set it to cpu")
    return device


@contextlib.contextmanager
def torch_runtime(threads: int, seed: int, deterministic: bool = True) -> Iterator[None]:
    """Threads, seeds and deterministic kernels for one training job; restores the previous settings.

    Never more torch/BLAS threads than the job was given: torch's intra-op pool and numpy's BLAS
    pools are both capped at ``threads``.
    """
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if deterministic:
        # warn_only: on a GPU a few kernels (and cuBLAS without CUBLAS_WORKSPACE_CONFIG) have no
        # deterministic variant; on the CPU everything the engine uses is deterministic.
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)


# ---------------------------------------------------------------------------- engine
def _make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {cfg.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule {cfg.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=True)
    amsgrad = cfg.optimizer == "amsgrad"
    # The fused CPU/GPU Adam kernel is ~4x faster than the foreach one on CPU; both are deterministic.
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=amsgrad, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=amsgrad, foreach=True)


def convergence_record(history: list[Mapping[str, float]], max_epochs: int, stop_reason: str,
                       detail: str = "") -> dict[str, Any]:
    """How a training ended and whether it was still improving: the record every neural training leaves.

    ``stop_reason``: ``patience`` (early stopping), ``max_epochs`` (the epoch limit), ``model_rule`` (the
    model's own criterion, ``detail`` says which), or ``fixed`` (a method trained for a set number of epochs
    by design). ``rel_change_loss`` / ``rel_change_val_loss``: (last − first) / |first| of the training and
    validation loss over the last ``CONVERGENCE_TAIL`` of the epochs run (negative: still decreasing);
    NaN where the loss is missing or fewer than 2 epochs ran.
    """
    n = len(history)
    tail = max(2, int(math.ceil(CONVERGENCE_TAIL * n)))

    def rel_change(key: str) -> float:
        values = [float(r[key]) for r in history[-tail:] if key in r and r[key] is not None]
        values = [v for v in values if math.isfinite(v)]
        if n < 2 or len(values) < 2 or values[0] == 0:
            return math.nan
        return (values[-1] - values[0]) / abs(values[0])

    return {"epochs_run": n, "max_epochs": int(max_epochs), "stop_reason": stop_reason, "stop_detail": detail,
            "tail_epochs": min(tail, n), "rel_change_loss": rel_change("loss"),
            "rel_change_val_loss": rel_change("val_loss")}


def _fingerprint(cfg: TrainConfig, seed: int, data: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> str:
    """Identity of a training run: a checkpoint is only resumed by the run that made it."""
    # summed in float64 a block of rows at a time: a float64 copy of a 100k x 5000 input is 4 GB
    summary = {k: [list(v.shape), str(v.dtype), float(sum(b.double().sum() for b in v.split(4096)))]
               for k, v in sorted(data.items())}
    cfg_d = asdict(cfg)
    for volatile in ("checkpoint_seconds", "log_every"):  # do not change the result
        cfg_d.pop(volatile)
    blob = json.dumps({"cfg": cfg_d, "seed": seed, "data": summary, "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _rng_state(device: torch.device, batch_gen: torch.Generator) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state(), "batch": batch_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device, batch_gen: torch.Generator) -> None:
    torch.set_rng_state(state["cpu"])
    batch_gen.set_state(state["batch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _read_checkpoint(path: Path, log: logging.Logger, what: str) -> dict[str, Any] | None:
    """The checkpoint's contents, or None (with a warning, never a traceback) when it cannot be read.

    ``weights_only=True``: a checkpoint is plain tensors, numbers and strings, so loading one never runs
    code from the file. RNG states must be CPU tensors; load_state_dict copies the rest to the device.
    """
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "fingerprint" not in ckpt:
            raise ValueError("not a training checkpoint")
        return ckpt
    except Exception as err:  # truncated, corrupt or foreign file: the run can always start afresh
        log.warning("%s: discarding unreadable checkpoint %s (%s: %s); training starts afresh",
                    what, path, type(err).__name__, str(err).splitlines()[0][:200] if str(err) else "")
        path.unlink(missing_ok=True)
        return None


def _write_log(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        path.write_text("")
        return
    cols = list(rows[0])
    lines = ["\t".join(cols)] + ["\t".join(_fmt(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _append_log(path: Path, row: dict[str, float], header: bool) -> None:
    with open(path, "a") as fh:
        if header:
            fh.write("\t".join(row) + "\n")
        fh.write("\t".join(_fmt(v) for v in row.values()) + "\n")


def _fmt(v: float) -> str:
    return str(int(v)) if isinstance(v, int) else f"{v:.6g}"


@dataclass
class _Split:
    """Which cells train and which validate: fixed by the seed, independent of the batch order."""
    train_idx: torch.Tensor  # CPU index tensors
    val_idx: torch.Tensor
    batch_size: int
    n_batches: int

    @property
    def n_train(self) -> int:
        return int(self.train_idx.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.val_idx.shape[0])


def _split_cells(n: int, cfg: TrainConfig, seed: int) -> _Split:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, 1)))
    n_val = int(round(cfg.val_frac * n)) if cfg.val_frac > 0 else 0
    if n_val and n - n_val < 2:
        n_val = 0
    n_train = n - n_val
    batch_size = min(cfg.batch_size or n_train, n_train)
    return _Split(order[n_val:], order[:n_val], batch_size, max(1, math.ceil(n_train / batch_size)))


@dataclass
class _RunState:
    """Everything a resumed run needs besides model, optimizer and RNGs (saved in the checkpoint as is)."""
    history: list[dict[str, float]] = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    finished: bool = False
    stopped_early: bool = False
    stop_reason: str = ""
    stop_detail: str = ""


_STATE_KEYS = tuple(_RunState.__dataclass_fields__)


def _resume(ckpt_path: Path | None, fingerprint: str, model: EngineModel, optimizer: torch.optim.Optimizer,
            device: torch.device, batch_gen: torch.Generator, log: logging.Logger, name: str) -> _RunState:
    """The state of a checkpoint this very run made (model, optimizer and RNGs restored), else a fresh one."""
    ckpt = _read_checkpoint(ckpt_path, log, name) if ckpt_path is not None else None
    if ckpt is None:
        return _RunState()
    if ckpt.get("fingerprint") != fingerprint:
        log.warning("%s: %s was made by another configuration or data; starting afresh", name, ckpt_path)
        return _RunState()
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    _set_rng_state(ckpt["rng"], device, batch_gen)
    state = _RunState(**{k: ckpt[k] for k in _STATE_KEYS if k in ckpt})
    log.info("%s: resuming from %s at epoch %d%s", name, ckpt_path, state.epoch,
             " (already finished)" if state.finished else "")
    return state


def _run_epoch(model: EngineModel, data: Mapping[str, torch.Tensor], split: _Split, optimizer, params,
               cfg: TrainConfig, state: _RunState, batch_gen: torch.Generator, term_names: list[str] | None,
               device: torch.device) -> tuple[torch.Tensor, list[torch.Tensor], list[str]]:
    """One pass over the training cells in seeded minibatches. Returns each minibatch's loss terms and total
    (one device tensor, read once by :func:`_epoch_means`), the minibatches and the terms' names."""
    if cfg.lr_schedule == "cosine":  # a function of the epoch alone: a resumed run sets the same rates
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (state.epoch - 1) / cfg.epochs))
    model.train()
    perm = split.train_idx[torch.randperm(split.n_train, generator=batch_gen)].to(device)
    chunks = torch.tensor_split(perm, split.n_batches)
    step_terms: list[torch.Tensor] = []  # one (terms..., total) vector per minibatch, on the device
    for idx in chunks:
        batch = {k: v.index_select(0, idx) for k, v in data.items()}
        model.on_step(state.step)
        terms = model.loss_terms(batch)
        if term_names is None:
            term_names = list(terms)
        elif list(terms) != term_names:
            raise RuntimeError(f"{type(model).__name__}.loss_terms changed its terms: {list(terms)} vs {term_names}")
        total = _weighted_total(terms, model.loss_weights)  # weights read every step: a model may anneal them
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip and cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
        optimizer.step()
        state.step += 1
        step_terms.append(torch.stack([v.detach() for v in terms.values()] + [total.detach()]))
    return torch.stack(step_terms), chunks, term_names


def _epoch_means(per_step: torch.Tensor, chunks: list[torch.Tensor], n_train: int, term_names: list[str],
                 dataset: str, method: str, epoch: int) -> list[float]:
    """Per-cell means of each term and the total over the epoch; raises on the first non-finite minibatch.

    A few tensor operations instead of several per step: the weighted sum still runs minibatch by minibatch
    (the same float32 additions in the same order as a running sum)."""
    weighted = per_step * torch.tensor([float(c.shape[0]) for c in chunks], device=per_step.device).unsqueeze(1)
    acc = weighted[0].clone()
    for row in weighted[1:]:
        acc += row
    means = (acc / n_train).tolist()
    nonfinite = ~torch.isfinite(per_step)
    # first minibatch at which each term was non-finite (-1: never)
    bad = torch.where(nonfinite.any(0), nonfinite.to(torch.int8).argmax(0), -1).tolist()
    if any(x >= 0 for x in bad):
        earliest = min(x for x in bad if x >= 0)
        # the total is non-finite whenever a term is: name it only when every term is finite
        names = [nm for nm, x in zip(term_names, bad) if x == earliest] or ["loss"]
        value = means[(term_names + ["loss"]).index(names[0])]
        raise NonFiniteLossError(dataset, method, epoch, names, value, int(earliest))
    return means


def _decide_stop(state: _RunState, row: Mapping[str, float], cfg: TrainConfig, early_stopping: bool,
                 model: EngineModel, data: Mapping[str, torch.Tensor]) -> None:
    """Early stopping on the monitored quantity, then the model's own rule, then the epoch limit; at the end
    the best epoch's parameters come back (``restore_best``)."""
    epoch = state.epoch
    if early_stopping:
        watched = row[cfg.monitor]
        if watched < state.best_val - cfg.min_delta:
            state.best_val, state.best_epoch, state.bad_epochs = watched, epoch, 0
            state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
            if state.bad_epochs >= cfg.patience:
                state.stopped_early, state.stop_reason = True, "patience"
                state.stop_detail = f"no improvement of {cfg.monitor} for {cfg.patience} epochs"
    else:
        state.best_epoch = epoch
    if not state.stopped_early:
        rule = model.stop_rule(epoch, data)
        if rule:
            state.stopped_early, state.stop_reason, state.stop_detail = True, "model_rule", str(rule)
    if not state.stopped_early and epoch >= cfg.epochs:
        state.stop_reason, state.stop_detail = "max_epochs", f"reached the limit of {cfg.epochs} epochs"
    state.finished = state.stopped_early or epoch >= cfg.epochs
    if state.finished and cfg.restore_best and state.best_state is not None:
        model.load_state_dict(state.best_state)


def _progress_bar(progress: bool, state: _RunState, cfg: TrainConfig, name: str):
    """A bar only on a terminal outside a workflow job; a job's progress is its log's epoch lines."""
    if not (progress and show_progress_bar() and not state.finished and state.epoch < cfg.epochs):
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.epochs, initial=state.epoch, desc=name, unit="epoch", file=sys.stderr,
                dynamic_ncols=True, mininterval=1.0)


def _log_end(log: logging.Logger, state: _RunState, cfg: TrainConfig, name: str) -> None:
    if state.stop_reason == "patience":
        log.info("%s: early stop at epoch %d (best %s %.5g at epoch %d)",
                 name, state.epoch, cfg.monitor, state.best_val, state.best_epoch)
    elif state.stop_reason == "model_rule":
        log.info("%s: stopped by the model's rule at epoch %d: %s", name, state.epoch, state.stop_detail)


def train(model: EngineModel, data: Mapping[str, torch.Tensor], config: TrainConfig, *, seed: int,
          outdir: str | Path | None, device: torch.device | str | None = None,
          log: logging.Logger | None = None, dataset: str = "", method: str = "",
          progress: bool = True, fingerprint_extra: Mapping[str, Any] | None = None,
          on_epoch_end: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (dict of tensors, first dimension = cells) and return its history.

    The steps: split the cells, move data and model to the device, resume from a checkpoint if this run
    made one, then per epoch: minibatch steps (:func:`_run_epoch`), the epoch's means (:func:`_epoch_means`),
    validation, the stopping decision (:func:`_decide_stop`), log line and checkpoint; finally the info record.

    ``on_epoch_end(epoch, row)`` runs after each epoch's log and checkpoint (the tests interrupt there).
    ``fingerprint_extra`` (e.g. the model's configuration) is part of the identity a checkpoint must
    match to be resumed.
    """
    log = log or logging.getLogger("livaebench")
    device = resolve_device(None if device is None else str(device))
    outdir = Path(outdir) if outdir is not None else None
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
    cfg = config
    name = f"{dataset}/{method}"
    t_start = time.perf_counter()

    sizes = {k: v.shape[0] for k, v in data.items()}
    n = next(iter(sizes.values()))
    if any(s != n for s in sizes.values()):
        raise ValueError(f"data tensors disagree on the number of cells: {sizes}")
    split = _split_cells(n, cfg, seed)
    # early stopping on the validation loss needs validation cells; on a training quantity it does not
    early_stopping = cfg.patience > 0 and (split.n_val > 0 or cfg.monitor != "val_loss")

    fingerprint = _fingerprint(cfg, seed, data, dict(fingerprint_extra or {}))
    data = {k: v.to(device) for k, v in data.items()}
    val_idx = split.val_idx.to(device)
    model.to(device)
    model.on_fit_start(split.n_train)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _make_optimizer(params, cfg)
    batch_gen = torch.Generator().manual_seed(derive_seed(seed, 2))
    val_seed = derive_seed(seed, 3)

    ckpt_path = outdir / CHECKPOINT_NAME if outdir is not None else None
    state = _resume(ckpt_path, fingerprint, model, optimizer, device, batch_gen, log, name)
    resumed_from = state.epoch
    log_path = outdir / LOG_NAME if outdir is not None else None
    if log_path is not None:
        _write_log(log_path, state.history)  # drops rows written after the checkpoint by an interrupted run

    log.info("%s: training on %s (%d torch threads), %d train / %d validation cells, batch %d, up to %d epochs",
             name, device, torch.get_num_threads(), split.n_train, split.n_val, split.batch_size, cfg.epochs)

    def checkpoint() -> None:
        if ckpt_path is not None:
            _atomic_save({"fingerprint": fingerprint, "model": model.state_dict(),
                          "optimizer": optimizer.state_dict(), "rng": _rng_state(device, batch_gen),
                          **{k: getattr(state, k) for k in _STATE_KEYS}}, ckpt_path)

    term_names: list[str] | None = [c for c in state.history[0] if c not in ("epoch", "loss", "val_loss", "seconds")] \
        if state.history else None
    last_ckpt = time.perf_counter()
    bar = _progress_bar(progress, state, cfg, name.strip("/"))
    while not state.finished and state.epoch < cfg.epochs:
        state.epoch += 1
        epoch = state.epoch
        t0 = time.perf_counter()
        per_step, chunks, term_names = _run_epoch(model, data, split, optimizer, params, cfg, state, batch_gen,
                                                  term_names, device)
        means = _epoch_means(per_step, chunks, split.n_train, term_names, dataset, method, epoch)
        val_loss = math.nan
        if split.n_val:
            val_loss = _validate(model, data, val_idx, split.batch_size, device, val_seed)
            if not math.isfinite(val_loss):
                raise NonFiniteLossError(dataset, method, epoch, ["val_loss"], val_loss)
        row: dict[str, float] = {"epoch": epoch, **dict(zip(term_names, means[:-1])), "loss": means[-1],
                                 "val_loss": val_loss, "seconds": time.perf_counter() - t0}
        state.history.append(row)
        if cfg.monitor not in row:
            raise ValueError(f"{name}: early stopping monitors '{cfg.monitor}', which is not a logged "
                             f"quantity ({', '.join(c for c in row if c not in ('epoch', 'seconds'))})")
        _decide_stop(state, row, cfg, early_stopping, model, data)

        if log_path is not None:
            _append_log(log_path, row, header=len(state.history) == 1)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4g}", val=f"{val_loss:.4g}", refresh=False)
        if epoch == 1 or state.finished or (cfg.log_every > 0 and epoch % cfg.log_every == 0):
            log.info("%s epoch %d/%d: loss %.5g val_loss %.5g (%s) %.2fs", name, epoch, cfg.epochs, row["loss"],
                     val_loss, ", ".join(f"{k} {row[k]:.4g}" for k in term_names), row["seconds"])
        if state.finished or time.perf_counter() - last_ckpt >= cfg.checkpoint_seconds:
            checkpoint()
            last_ckpt = time.perf_counter()
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)

    if bar is not None:
        bar.close()
    _log_end(log, state, cfg, name)
    model.eval()
    info = _train_info(state, cfg, split, device, seed, resumed_from, dataset, method)
    if outdir is not None:
        (outdir / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
    return TrainResult(state.history, len(state.history), state.best_epoch, state.stopped_early, resumed_from,
                       str(device), split.n_train, split.n_val, time.perf_counter() - t_start, info)


def _train_info(state: _RunState, cfg: TrainConfig, split: _Split, device: torch.device, seed: int,
                resumed_from: int, dataset: str, method: str) -> dict[str, Any]:
    """``train_info.json``: how the run went, its throughput and its convergence record."""
    epochs_run = len(state.history)
    train_secs = sum(r["seconds"] for r in state.history)
    return {
        "dataset": dataset, "method": method, "device": str(device), "torch_threads": torch.get_num_threads(),
        "seed": seed, "epochs_run": epochs_run, "best_epoch": state.best_epoch, "stopped_early": state.stopped_early,
        "resumed_from_epoch": resumed_from, "n_train": split.n_train, "n_val": split.n_val,
        "batch_size": split.batch_size,
        "train_seconds": train_secs,
        "cells_per_second": split.n_train * epochs_run / train_secs if train_secs else None,
        "config": asdict(cfg),
        "convergence": convergence_record(state.history, cfg.epochs, state.stop_reason or "max_epochs",
                                          state.stop_detail),
    }


def _weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weight · term in the terms' order. A weight of 1 is not multiplied and the sum does not start
    from 0: the same floating-point result as ``sum(w * v)`` (x · 1 and 0 + x are exact) in fewer operations."""
    total = None
    for name, value in terms.items():
        w = weights.get(name, 1.0)
        term = value if isinstance(w, (int, float)) and w == 1.0 else w * value
        total = term if total is None else total + term
    return total


@torch.no_grad()
def _validate(model: EngineModel, data, val_idx, batch_size, device, val_seed) -> float:
    """Weighted validation loss per cell, with the same noise every epoch and no effect on training RNG."""
    model.eval()
    total = torch.zeros((), device=device)
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(val_seed)
        for idx in torch.split(val_idx, batch_size):
            batch = {k: v.index_select(0, idx) for k, v in data.items()}
            terms = model.loss_terms(batch)
            total += _weighted_total(terms, model.loss_weights) * idx.shape[0]
    model.train()
    return float(total) / val_idx.shape[0]
