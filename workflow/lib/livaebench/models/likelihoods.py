"""Count likelihoods on raw counts: NB, ZINB, Poisson and ZIP (docs/methods.md §2.2).

Each log-probability splits into two parts, which is what makes training cheap:

    log p(x) = zi( rate(x; m, θ), π ) + count(x; θ)

* ``rate`` holds everything that depends on the mean m (the network output): for NB
  θ log θ − (θ+x) log(θ+m) + x log m, for Poisson x log m − m. At x = 0 it equals log p(0).
* ``zi`` is the identity without zero inflation; with dropout probability π it gives
  log(1−π) + rate for x > 0 and log(π + (1−π) p(0)) = logaddexp(log π, log(1−π) + rate) for x = 0.
* ``count`` depends on x and θ only: lgamma(x+θ) − lgamma(θ) − lgamma(x+1) (NB) or −lgamma(x+1)
  (Poisson). It is 0 wherever x = 0.

The count part never sees the decoder, so a model with two decoder passes (LiVAE's z and ld paths)
computes it once per minibatch; and because it is zero at x = 0 and the counts are integers, it is
computed from per-gene histograms of the minibatch's counts (``count_tables``) instead of an lgamma
and a digamma per matrix entry, the costliest element-wise kernels on a CPU.

``NegativeBinomial`` & co. are ``torch.distributions`` objects for general use and for the tests;
``CountLikelihood`` is the per-cell, feature-summed form a model calls in its loss.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

__all__ = [
    "NegativeBinomial", "ZeroInflatedNegativeBinomial", "Poisson", "ZeroInflatedPoisson",
    "CountLikelihood", "LIKELIHOODS", "get_likelihood", "default_likelihood",
    "nb_rate", "poisson_rate", "zero_inflate", "nb_count", "poisson_count",
    "log_factorial_rowsum", "count_tables",
]


# ---------------------------------------------------------------------------- element-wise pieces
def nb_rate(x: torch.Tensor, log_mu: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """Mean-dependent part of log NB(x; m = exp(log_mu), θ = exp(log_theta)); equals log NB(0) at x = 0."""
    theta = torch.exp(log_theta)
    # θ > 0, so log(θ + m) is safe even when m underflows to 0 (no eps needed).
    log_theta_mu = torch.log(theta + torch.exp(log_mu))
    return theta * (log_theta - log_theta_mu) + x * (log_mu - log_theta_mu)


def poisson_rate(x: torch.Tensor, log_mu: torch.Tensor) -> torch.Tensor:
    """Mean-dependent part of log Poisson(x; m): x log m − m; equals log P(0) = −m at x = 0."""
    return x * log_mu - torch.exp(log_mu)


def nb_count(x: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """x- and θ-only part of log NB: lgamma(x+θ) − lgamma(θ) − lgamma(x+1) (0 at x = 0)."""
    theta = torch.exp(log_theta)
    return torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1.0)


def poisson_count(x: torch.Tensor) -> torch.Tensor:
    return -torch.lgamma(x + 1.0)


def zero_inflate(x: torch.Tensor, rate: torch.Tensor, pi_logits: torch.Tensor) -> torch.Tensor:
    """Mix a point mass at 0 (probability π = sigmoid(pi_logits)) into a count model, in log space."""
    log_pi = -F.softplus(-pi_logits)        # log sigmoid(w)
    log_1m_pi = -F.softplus(pi_logits)      # log(1 − sigmoid(w))
    nonzero = log_1m_pi + rate
    return torch.where(x > 0, nonzero, torch.logaddexp(log_pi, nonzero))


# ---------------------------------------------------------------------------- distributions
def _as_log(value, log_value, name):
    if (value is None) == (log_value is None):
        raise ValueError(f"give exactly one of {name} and log_{name}")
    if log_value is not None:
        return torch.as_tensor(log_value)
    return torch.log(value if torch.is_tensor(value) else torch.as_tensor(value, dtype=torch.get_default_dtype()))


class _CountDistribution(Distribution):
    """Shared plumbing: parameters broadcast to one batch shape; support is the non-negative integers."""

    support = constraints.nonnegative_integer
    has_rsample = False

    def __init__(self, log_mu: torch.Tensor, **extra: torch.Tensor):
        tensors = torch.broadcast_tensors(log_mu, *extra.values())
        self.log_mu = tensors[0]
        for name, value in zip(extra, tensors[1:]):
            setattr(self, name, value)
        super().__init__(batch_shape=self.log_mu.shape, validate_args=False)

    @property
    def mu(self) -> torch.Tensor:
        return torch.exp(self.log_mu)


class NegativeBinomial(_CountDistribution):
    """NB with mean m and inverse dispersion θ: Var = m + m²/θ."""

    arg_constraints = {"log_mu": constraints.real, "log_theta": constraints.real}

    def __init__(self, mu=None, theta=None, *, log_mu=None, log_theta=None):
        super().__init__(_as_log(mu, log_mu, "mu"), log_theta=_as_log(theta, log_theta, "theta"))

    @property
    def mean(self):
        return self.mu

    @property
    def variance(self):
        return self.mu + self.mu ** 2 / torch.exp(self.log_theta)

    def log_prob(self, value):
        return nb_rate(value, self.log_mu, self.log_theta) + nb_count(value, self.log_theta)

    def sample(self, sample_shape=torch.Size()):
        # Gamma–Poisson mixture: rate ~ Gamma(θ, θ/m) has mean m and variance m²/θ.
        with torch.no_grad():
            theta = torch.exp(self.log_theta)
            rate = torch.distributions.Gamma(theta, theta / self.mu).sample(sample_shape)
            return torch.poisson(rate)


class _ZeroInflated:
    """Mean of a zero-inflated count distribution: the kept fraction 1 − π of the base mean."""

    @property
    def mean(self):
        return torch.sigmoid(-self.pi_logits) * self.mu


class ZeroInflatedNegativeBinomial(_ZeroInflated, NegativeBinomial):
    """NB mixed with a point mass at 0 of probability π = sigmoid(pi_logits)."""

    arg_constraints = {**NegativeBinomial.arg_constraints, "pi_logits": constraints.real}

    def __init__(self, mu=None, theta=None, pi_logits=None, *, log_mu=None, log_theta=None):
        _CountDistribution.__init__(self, _as_log(mu, log_mu, "mu"),
                                    log_theta=_as_log(theta, log_theta, "theta"),
                                    pi_logits=torch.as_tensor(pi_logits))

    @property
    def variance(self):
        keep = torch.sigmoid(-self.pi_logits)
        nb_second = self.mu + self.mu ** 2 / torch.exp(self.log_theta) + self.mu ** 2
        return keep * nb_second - (keep * self.mu) ** 2

    def log_prob(self, value):
        rate = nb_rate(value, self.log_mu, self.log_theta)
        return zero_inflate(value, rate, self.pi_logits) + nb_count(value, self.log_theta)

    def sample(self, sample_shape=torch.Size()):
        counts = super().sample(sample_shape)
        with torch.no_grad():
            keep = torch.bernoulli(torch.sigmoid(-self.pi_logits).expand_as(counts))
        return counts * keep


class Poisson(_CountDistribution):
    arg_constraints = {"log_mu": constraints.real}

    def __init__(self, mu=None, *, log_mu=None):
        super().__init__(_as_log(mu, log_mu, "mu"))

    @property
    def mean(self):
        return self.mu

    @property
    def variance(self):
        return self.mu

    def log_prob(self, value):
        return poisson_rate(value, self.log_mu) + poisson_count(value)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return torch.poisson(self.mu.expand(torch.Size(sample_shape) + self.batch_shape))


class ZeroInflatedPoisson(_ZeroInflated, Poisson):
    arg_constraints = {**Poisson.arg_constraints, "pi_logits": constraints.real}

    def __init__(self, mu=None, pi_logits=None, *, log_mu=None):
        _CountDistribution.__init__(self, _as_log(mu, log_mu, "mu"), pi_logits=torch.as_tensor(pi_logits))

    @property
    def variance(self):
        keep = torch.sigmoid(-self.pi_logits)
        return keep * self.mu * (1.0 + (1.0 - keep) * self.mu)

    def log_prob(self, value):
        return zero_inflate(value, poisson_rate(value, self.log_mu), self.pi_logits) + poisson_count(value)

    def sample(self, sample_shape=torch.Size()):
        counts = super().sample(sample_shape)
        with torch.no_grad():
            keep = torch.bernoulli(torch.sigmoid(-self.pi_logits).expand_as(counts))
        return counts * keep


# ---------------------------------------------------------------------------- training form
def _row_blocks(indptr: np.ndarray, max_values: int = 2**24):
    """(first row, end row, first value, end value) of consecutive row blocks of a CSR matrix, each
    holding at most ``max_values`` stored values (or one row), so per-value temporaries stay small."""
    n = len(indptr) - 1
    start = 0
    while start < n:
        stop = max(start + 1, int(np.searchsorted(indptr, indptr[start] + max_values, side="right")) - 1)
        stop = min(stop, n)
        yield start, stop, int(indptr[start]), int(indptr[stop])
        start = stop


def log_factorial_rowsum(counts) -> torch.Tensor:
    """Σ_g lgamma(x_ig + 1) per cell, from a scipy sparse or dense count matrix, in float64 then float32.

    It is a constant of the data; precomputing it once keeps it out of every training step.
    """
    if sp.issparse(counts):
        csr = sp.csr_matrix(counts)
        out = np.zeros(csr.shape[0])
        # a block of rows at a time (each row's sum is accumulated in the same order as in one pass)
        for start, stop, lo, hi in _row_blocks(csr.indptr):
            vals = torch.lgamma(torch.from_numpy(np.asarray(csr.data[lo:hi], dtype=np.float64)) + 1.0).numpy()
            rows = np.repeat(np.arange(stop - start), np.diff(csr.indptr[start:stop + 1]))
            out[start:stop] = np.bincount(rows, weights=vals, minlength=stop - start)
    else:
        out = torch.lgamma(torch.as_tensor(np.asarray(counts), dtype=torch.float64) + 1.0).sum(-1).numpy()
    return torch.from_numpy(out.astype(np.float32))


def count_tables(counts, cap: int | None = None, *, dense_code: bool = True) -> tuple[dict[str, torch.Tensor], int]:
    """Per-cell tensors (first dimension = cells) from which ``CountLikelihood.count_total`` gets the
    count part of a minibatch without touching its zeros, plus the cap c they were built with.

    For integer x and j < x: lgamma(x+θ) − lgamma(θ) = Σ_{j<x} log(θ+j). Summed over the cells of a
    minibatch this is Σ_g Σ_j N_g(j) log(θ_g + j) with N_g(j) = #{cells with x_ig > j}: a histogram per
    gene replaces a digamma per non-zero entry (torch's CPU digamma is scalar code, ~50 ns each). Counts
    are histogrammed up to the cap c; the few larger ones (a "tail", ~2 % of non-zeros) add
    lgamma(x+θ) − lgamma(c+θ) each.

    * ``count_code`` (int32, cells x G): g·(c+1) + min(x_ig, c), the histogram bin of each entry;
    * ``tail_cols`` / ``tail_vals`` (cells x K): the entries with x > c, padded with (0, c), which
      contribute exactly 0;
    * ``log_factorial``: Σ_g lgamma(x_ig + 1).

    The cap defaults to the 98th percentile of the non-zero counts, clipped to [8, 64].
    Counts must be non-negative integers (checked). ``dense_code=False`` leaves ``count_code`` out: a
    model that has the dense ``counts`` in its batches gets the same codes from them per minibatch
    (``count_total``), which saves a cells x G int32 array (2 GB at 100k cells x 5000 genes).
    """
    csr = sp.csr_matrix(counts)  # no copy of a CSR input: integer counts are exact in float32 too
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    vals = csr.data
    if vals.size and (np.any(vals < 0) or np.any(vals != np.round(vals))):
        raise ValueError("count_tables needs non-negative integer counts")
    if cap is None:
        positive = vals[vals > 0].astype(np.float64)
        # overwrite_input: partitioned in place instead of in a second copy (1.3 GB at 100k x 5000)
        cap = int(np.clip(np.ceil(np.quantile(positive, 0.98, overwrite_input=True)), 8, 64)) if positive.size else 8
        del positive
    n, g = csr.shape
    code = None
    # Filled from the non-zeros, a block of rows at a time, instead of a dense float64 copy and its
    # temporaries (16 GB at 100k cells x 5000 genes); the same integers.
    if dense_code:
        code = np.empty((n, g), dtype=np.int32)
        code[:] = np.arange(g, dtype=np.int32) * (cap + 1)
        for start, stop, lo, hi in _row_blocks(csr.indptr):
            rows = np.repeat(np.arange(start, stop), np.diff(csr.indptr[start:stop + 1]))
            code[rows, csr.indices[lo:hi]] += np.minimum(vals[lo:hi], cap).astype(np.int32)

    big = np.flatnonzero(vals > cap)
    big_rows = np.searchsorted(csr.indptr, big, side="right") - 1  # the row of each of those entries
    big_cols, big_vals = csr.indices[big], vals[big]
    per_row = np.bincount(big_rows, minlength=n)
    k = max(int(per_row.max()) if n else 0, 1)
    tail_cols = np.zeros((n, k), dtype=np.int64)
    tail_vals = np.full((n, k), float(cap), dtype=np.float32)
    slot = np.arange(big_rows.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)  # rank within the row
    tail_cols[big_rows, slot] = big_cols
    tail_vals[big_rows, slot] = big_vals
    tables = {} if code is None else {"count_code": torch.from_numpy(code)}
    return {
        **tables,
        "tail_cols": torch.from_numpy(tail_cols),
        "tail_vals": torch.from_numpy(tail_vals),
        "log_factorial": log_factorial_rowsum(csr),
    }, cap


@functools.lru_cache(maxsize=16)
def _bin_offsets(g: int, cap: int, device: torch.device) -> torch.Tensor:
    """g·(cap+1) for every gene: the first histogram bin of each gene (constant per dataset, made once)."""
    return torch.arange(g, dtype=torch.int32, device=device) * (cap + 1)


@functools.lru_cache(maxsize=16)
def _steps(cap: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """0, 1, ..., cap − 1: the j of log(θ + j) (constant per dataset, made once)."""
    return torch.arange(cap, dtype=dtype, device=device)


@dataclass(frozen=True)
class CountLikelihood:
    """One likelihood as a model uses it in training: per-cell log-likelihoods summed over features.

    For a minibatch, Σ_i Σ_g log p(x_ig) = Σ_i ``rate_rowsum``_i + ``count_total``; a model with several
    decoder outputs for the same cells calls ``count_total`` once.
    """

    name: str
    dispersion: bool      # NB family: needs a gene-wise log θ
    zero_inflated: bool   # needs dropout logits

    def distribution(self, log_mu, log_theta=None, pi_logits=None) -> Distribution:
        if self.name == "nb":
            return NegativeBinomial(log_mu=log_mu, log_theta=log_theta)
        if self.name == "zinb":
            return ZeroInflatedNegativeBinomial(log_mu=log_mu, log_theta=log_theta, pi_logits=pi_logits)
        if self.name == "poisson":
            return Poisson(log_mu=log_mu)
        return ZeroInflatedPoisson(log_mu=log_mu, pi_logits=pi_logits)

    def rate_rowsum(self, x, log_mu, log_theta=None, pi_logits=None) -> torch.Tensor:
        """Σ_g zi(rate) over the last dimension; x broadcasts against log_mu (e.g. (B,G) vs (2,B,G))."""
        if self.dispersion:
            theta = torch.exp(log_theta)
            log_theta_mu = torch.log(theta + torch.exp(log_mu))
            if not self.zero_inflated:
                # Σ_g θ log θ is the same for every cell: add it once instead of per entry.
                per_entry = x * log_mu - (x + theta) * log_theta_mu
                return per_entry.sum(-1) + (theta * log_theta).sum()
            rate = theta * (log_theta - log_theta_mu) + x * (log_mu - log_theta_mu)
        else:
            rate = poisson_rate(x, log_mu)
            if not self.zero_inflated:
                return rate.sum(-1)
        return zero_inflate(x, rate, pi_logits).sum(-1)

    def count_total(self, batch, log_theta=None, cap: int | None = None) -> torch.Tensor:
        """Σ over the minibatch's cells and features of count(x_ig), a scalar.

        ``batch`` holds the rows of ``count_tables`` (and, on a GPU, the dense ``counts``). On a GPU the
        dense lgamma is cheap and bincount would synchronise with the host, so it is used there.
        """
        total_log_factorial = batch["log_factorial"].sum()
        if not self.dispersion:
            return -total_log_factorial
        theta = torch.exp(log_theta)
        if "tail_cols" not in batch or log_theta.is_cuda:
            x = batch["counts"]
            return (torch.lgamma(x + theta) - torch.lgamma(theta)).sum() - total_log_factorial
        g = theta.shape[0]
        code = batch.get("count_code")
        if code is None:  # the same bins from the dense counts (integers, exact in float32)
            # int32 and in place: one temporary instead of three, and bincount reads half the bytes
            code = torch.clamp(batch["counts"], max=cap).to(torch.int32)
            code += _bin_offsets(g, cap, theta.device)
        hist = torch.bincount(code.reshape(-1), minlength=g * (cap + 1)).view(g, cap + 1)
        exceed = hist[:, 1:].flip(1).cumsum(1).flip(1).to(theta.dtype)  # (G, cap): #cells with x > j
        steps = _steps(cap, theta.dtype, theta.device)
        below_cap = (exceed * torch.log(theta.unsqueeze(1) + steps)).sum()
        tail_theta = theta[batch["tail_cols"]]
        tail = (torch.lgamma(batch["tail_vals"] + tail_theta) - torch.lgamma(cap + tail_theta)).sum()
        return below_cap + tail - total_log_factorial

    def log_prob_rowsum(self, x, log_mu, log_theta=None, pi_logits=None) -> torch.Tensor:
        """Σ_g log p(x_ig) per cell by the direct element-wise formula (reference for the fast path)."""
        return self.distribution(log_mu, log_theta, pi_logits).log_prob(x).sum(-1)


LIKELIHOODS: dict[str, CountLikelihood] = {
    "nb": CountLikelihood("nb", dispersion=True, zero_inflated=False),
    "zinb": CountLikelihood("zinb", dispersion=True, zero_inflated=True),
    "poisson": CountLikelihood("poisson", dispersion=False, zero_inflated=False),
    "zip": CountLikelihood("zip", dispersion=False, zero_inflated=True),
}


def default_likelihood(modality: str) -> str:
    """NB for RNA, ZINB for ATAC (LiVAE paper §2.7)."""
    return "zinb" if modality == "atac" else "nb"


def get_likelihood(name: str, modality: str = "rna") -> CountLikelihood:
    """Look a likelihood up by name; "auto" picks the modality's default."""
    key = default_likelihood(modality) if name == "auto" else str(name).lower()
    if key not in LIKELIHOODS:
        from ..errors import InputError
        raise InputError(f"likelihood '{name}'", "is not known",
                         f"use one of: auto, {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[key]
