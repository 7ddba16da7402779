"""Process set-up shared by every workflow step: logging, thread limits, clean failures.

Each script under ``scripts/`` wraps its work in :func:`step`. The library stays free of Snakemake:
the script passes plain values (log path, thread count).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from .errors import InputError

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP/numba/torch threads at what the job was given.

    Two processes that each take every core run many times slower than one after the other, so a job
    never uses more threads than its ``threads:`` directive. Must run before numpy/torch start their pools
    for the environment variables to matter; torch's own pool is capped explicitly as well.
    """
    threads = max(1, int(threads))
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


def job_device(gpus: int, allow_cpu_fallback: bool, what: str, log: logging.Logger) -> str | None:
    """The torch device of a training job that asked the scheduler for ``gpus`` GPUs.

    No GPU asked for: None (the engine takes CUDA when it happens to be visible, else the CPU). GPUs
    asked for but CUDA absent (a node without the GRES, a driver problem): a one-line error, unless the
    config allows the CPU fallback, which is then logged.
    """
    if int(gpus) <= 0:
        return None
    import socket

    import torch

    if torch.cuda.is_available():
        return "cuda"
    host = socket.gethostname()
    if allow_cpu_fallback:
        log.warning(f"{what}: {gpus} GPU(s) requested but CUDA is not available on {host}; "
                    "training on the CPU instead (gpu_fallback: true)")
        return "cpu"
    raise InputError(what, f"{gpus} GPU(s) requested but CUDA is not available on node {host}",
                     "submit to a partition whose nodes have GPUs, set gpu: 0, or set gpu_fallback: true "
                     "to train on the CPU")


# Modules whose numba functions every embed/evaluate job compiles (UMAP's fuzzy simplicial set, its
# layout optimiser, pynndescent); most are declared without ``cache=True``.
NUMBA_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.sparse", "umap.distances",
                 "pynndescent.pynndescent_", "pynndescent.utils", "pynndescent.distances",
                 "pynndescent.sparse", "pynndescent.rp_trees")


def enable_numba_cache(cache_dir: str | os.PathLike | None = None) -> None:
    """UMAP/pynndescent compile with numba in each fresh process (5-15 s per job); an on-disk cache avoids it.

    Setting ``NUMBA_CACHE_DIR`` only helps functions declared with ``cache=True``; UMAP declares most of
    its kernels (``smooth_knn_dist``, ``compute_membership_strengths``, ...) without it, so every job
    recompiled them. Turning caching on for those dispatchers before their first call stores the same
    machine code on disk; later processes load it instead of compiling (same code, same numbers).
    """
    cache_dir = cache_dir or os.environ.get("NUMBA_CACHE_DIR") or Path.home() / ".cache" / "livaebench" / "numba"
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    import importlib
    import warnings

    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    for name in NUMBA_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional part of a package version: nothing to cache
            continue
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and not value._cache.__class__.__name__ == "FunctionCache":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NumbaWarning)
                    try:
                        value.enable_caching()
                    except Exception:  # a function numba cannot cache (dynamic globals): compiled as before
                        pass


# Set by step() when a job writes its own log file: the console is then Snakemake's (shared by parallel jobs).
_JOB_LOG: Path | None = None


def get_logger(log_path: str | os.PathLike | None = None, name: str = "livaebench") -> logging.Logger:
    """A logger writing to ``log_path`` (every line) and to stderr.

    With a log file, stderr gets warnings and errors only: under Snakemake stderr is the console that every
    parallel job and Snakemake's own job lines share, so the details (progress, epochs, peak memory) stay in
    the job's log (``tail -f logs/...`` follows one job) and the console shows what a person must act on.
    Without one (a script or notebook), stderr gets everything.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING if log_path else logging.INFO)
    handlers: list[logging.Handler] = [console]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def show_progress_bar() -> bool:
    """Whether a progress bar may draw on stderr: only on a terminal, and not inside a workflow job.

    In a job (:func:`step` with a log file) parallel jobs' bars and Snakemake's lines would interleave on one
    console, and a bar in a log file is a stream of carriage returns; there the progress is the job log's lines
    (e.g. an epoch line every ``log_every`` epochs).
    """
    return _JOB_LOG is None and sys.stderr.isatty()


@contextlib.contextmanager
def step(log_path: str | os.PathLike | None, *, threads: int = 1, name: str = "livaebench"):
    """Run one workflow step: thread caps, a logger writing to the rule's log, and clean failures.

    Bad input (:class:`InputError`) and a diverged training (a non-finite loss, ``FloatingPointError``)
    end the process with their one-line message and exit status 1; any other exception is logged with
    its traceback and re-raised.
    """
    global _JOB_LOG
    limit_threads(threads)
    log = get_logger(log_path, name)
    errors = _ErrorSeen()
    log.addHandler(errors)
    if log_path:
        _JOB_LOG = Path(log_path)
        # third-party warnings (FutureWarning, numba, ...) go to the job's log, not to the shared console
        logging.captureWarnings(True)
        warnings_log = logging.getLogger("py.warnings")
        warnings_log.handlers = [h for h in log.handlers if isinstance(h, logging.FileHandler)]
        warnings_log.propagate = False
    try:
        yield log
        # exact (the kernel's high-water mark), unlike Snakemake's sampled max_rss; a log that records an
        # error (a method's recorded failure) keeps that error as its last line
        if not errors.seen:
            log.info(f"peak RSS {peak_rss_gb():.2f} GB")
    except (InputError, FloatingPointError) as err:
        log.error(str(err))
        for handler in log.handlers:
            handler.flush()
        raise SystemExit(1) from None
    except Exception as err:
        from .failures import one_line

        log.exception("step failed")
        # the log's last line says what failed and what to do (the traceback above says where)
        log.error(f"{_job_name(log_path)}: failed ({one_line(err)}). Fix: read the traceback above; if an input "
                  "is at fault, correct it, then rerun the same target")
        raise
    finally:
        if log_path:  # a step run inside a longer process (tests, notebooks) leaves it as it was
            _JOB_LOG = None
            logging.captureWarnings(False)
            warnings_log.handlers, warnings_log.propagate = [], True


class _ErrorSeen(logging.Handler):
    """Remembers whether anything was logged at ERROR or above."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        self.seen = True


def peak_rss_gb() -> float:
    """Peak resident memory of this process and of its finished children (GB; Linux reports KB)."""
    import resource

    kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return kb / 2**20


def _job_name(log_path) -> str:
    """'embed pancreas/pca/seed0' from logs/embed/pancreas/pca/seed0.log: the rule and its wildcards."""
    if not log_path:
        return "this step"
    parts = Path(log_path).with_suffix("").parts
    parts = parts[parts.index("logs") + 1:] if "logs" in parts else parts[-2:]
    return f"{parts[0]} {'/'.join(parts[1:])}".strip()
