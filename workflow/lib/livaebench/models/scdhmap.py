"""scDHMap (Tian et al., 2023): a hyperbolic VAE with a ZINB likelihood and a t-SNE-style loss.

Specification: docs/methods.md §7 (methods without a maintained package). Written from the paper's
description on the project's training engine; no code of the authors' was copied.

Model. Encoder x̃ → 128 → 64 → 32 → 16 (linear, batch norm, ELU) → a tangent vector m ∈ R^d at the
origin of the Lorentz model H^d (d = ``latent_dim``) and posterior scales σ = softplus(·). The posterior
is the wrapped normal of Nagano et al. (2019): with μ = exp₀(m),

    v ~ N(0, diag σ²) in T_o H^d,   u = PT_{o→μ}(v) = v + ⟨μ, v⟩_L / (1 + μ₀) · (o + μ),   z = exp_μ(u)

(parallel transport then the exponential map at μ, as the paper does). Parallel transport keeps the
norm, so ‖u‖_L = ‖v‖ and the density is exact in closed form for every d: log q(z) = log N(v; 0, σ²) −
(d−1)·log(sinh‖v‖/‖v‖). The prior is the wrapped normal at the origin with unit scale, evaluated at
ρ = d_L(o, z) = asinh‖z_{1:}‖. The KL term is the one-sample Monte-Carlo estimate log q(z) − log p(z).
The decoder reads the hyperboloid coordinates z ∈ R^{d+1} (16 → 32 → 64 → 128, batch norm, ELU) and has
ZINB heads for the mean (size-factor scaled), the dispersion and the dropout probability (as in
scDeepCluster).

t-SNE-style loss (term ``tsne``): in each minibatch, high-dimensional conditional affinities
p_{j|i} ∝ exp(−β_i ‖y_i − y_j‖²) on the first 50 principal components y of the analytic Pearson
residuals of the counts (θ = 100; computed once), with β_i found by bisection so that each row has the
requested perplexity; symmetrised (P + Pᵀ) and row-normalised. Low-dimensional similarities are the
Cauchy kernel (1 + d_L(μ_i, μ_j)²)⁻¹ on the hyperbolic distances of the posterior means, normalised per
row over j ≠ i; the term is the mean over rows of KL(P_i ‖ Q_i). Distances come from the tangent vectors
(``lorentz.tangent_distance``), exact in float32 at every radius.

Training (the authors' release, ttgump/scDHMap): ``pretrain`` (ZINB + 1·KL) for a fixed 400 epochs, then
``train`` (ZINB + 10·KL + 1000·t-SNE) for at most 5,000 epochs, stopped when the training t-SNE term has
not improved for 150 epochs (the engine's ``monitor`` = ``tsne``), each phase with its own AMSGrad
(lr 1e-3, weight decay 1e-3), minibatches of 512, every cell in training. The output ``X_latent`` is the
posterior mean μ in Poincaré-ball coordinates, tanh(‖m‖/2) · m/‖m‖ = μ_{1:}/(1 + μ₀): ``latent_dim``
columns, every row inside the unit ball.

Differences from the authors' code (each is a ``Deviation`` of the registry entry,
``methods/deep_clustering.py``):

* **Latent size.** The registry default is the authors' 2 (a Poincaré disc for visualisation); the
  workflow's ``latent_dim`` (10 in the shipped configs) replaces it, as for every method.
* **Perplexity.** Calibrated with the natural-log entropy on both sides (perplexity = exp H). The
  authors' helper compares an entropy in nats with log₂ of the perplexity, which makes its effective
  perplexity about 135 at the nominal 30; the nominal value is used here.
* **t-SNE term** is the KL divergence; the authors' is the cross-entropy (the KL plus the entropy of P,
  which does not depend on the model): the same gradients.
* **Best epoch.** The engine ends a phase stopped by patience *or* by the epoch limit with the parameters
  of the best t-SNE epoch; the authors restore them only at an early stop.
* **Numerics.** float32 (the authors: float64). The tangent norm ‖m‖ and the sample norm ‖v‖ are clamped
  at 15 (the authors: 32, safe in float64), σ to [1e-5, 10] (the authors: [1e-6, 15]). A validation
  chunk of fewer than 3 cells (only with ``val_frac`` > 0) contributes a t-SNE term of 0.
* **Cauchy scale** fixed at γ = 1 (the authors' default; the kernel is then the Student-t of t-SNE).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..training import EngineModel
from . import lorentz
from .scdeepcluster import LOG_MEAN_MAX, LOG_MEAN_MIN, THETA_MAX, THETA_MIN, zinb_nll_sum

SIGMA_MIN, SIGMA_MAX = 1e-5, 10.0
_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------- geometry
def log_sinhc(x: torch.Tensor) -> torch.Tensor:
    """log(sinh(x)/x) for x ≥ 0, without overflow and with finite gradients at 0."""
    small = x < 1e-2
    xs = torch.where(small, torch.ones_like(x), x)  # the large-x branch never sees tiny x (no log 0)
    large = xs + torch.log1p(-torch.exp(-2.0 * xs)) - torch.log(2.0 * xs)
    return torch.where(small, x.square() / 6.0, large)


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(torch.clamp(v.square().sum(-1, keepdim=True), min=1e-20))


def clamp_norm(v: torch.Tensor, max_norm: float) -> torch.Tensor:
    r = _safe_norm(v)
    return torch.where(r > max_norm, v * (max_norm / r), v)


def transport_from_origin(v: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Parallel transport of (0, v) ∈ T_o H^d to T_mu H^d: (0, v) + ⟨mu, v⟩_L / (1 + mu₀) · (o + mu)."""
    dot = (mu[..., 1:] * v).sum(-1, keepdim=True)  # ⟨mu, (0, v)⟩_L
    return torch.cat([dot, v + dot / (1.0 + mu[..., :1]) * mu[..., 1:]], dim=-1)


def exp_map(u: torch.Tensor, mu: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """exp_mu(u) = cosh(r) mu + sinh(r) u / r for a tangent vector u at mu with Lorentz norm r (given)."""
    return torch.cosh(norm) * mu + (torch.sinh(norm) / norm) * u


def poincare_from_tangent(m: torch.Tensor, max_norm: float = 15.0) -> torch.Tensor:
    """Poincaré-ball coordinates of exp₀(m): tanh(‖m‖/2) · m/‖m‖, ‖m‖ clamped as ``lorentz.exp_map0`` does."""
    m = clamp_norm(m, max_norm)
    r = _safe_norm(m)
    return m * (torch.tanh(0.5 * r) / r)


def lorentz_to_poincare(x: torch.Tensor) -> torch.Tensor:
    """p = x_{1:} / (1 + x₀)."""
    return x[..., 1:] / (1.0 + x[..., :1])


def poincare_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """arcosh(1 + 2‖p − q‖² / ((1 − ‖p‖²)(1 − ‖q‖²))) on the Poincaré ball."""
    num = 2.0 * (p - q).square().sum(-1)
    den = (1.0 - p.square().sum(-1)) * (1.0 - q.square().sum(-1))
    return torch.acosh(1.0 + num / den)


# ---------------------------------------------------------------------------- t-SNE pieces
@torch.no_grad()
def perplexity_affinities(sq_dist: torch.Tensor, perplexity: float, iters: int = 24) -> torch.Tensor:
    """Conditional Gaussian affinities p_{j|i} ∝ exp(−β_i D_ij) (rows sum to 1, p_{i|i} = 0) whose rows
    have entropy log(perplexity) in nats; the perplexity is capped at n − 1.

    β_i by bisection on log β over [−20, 20] in units of the mean squared distance, all rows at once
    (24 halvings: log β to 2.4e-6, the perplexity to ~1e-5 relative). Each step needs one exp: with
    D′ = D − min_{j≠i} D_ij (the nearest neighbour has weight 1) and the diagonal at a huge value, the
    entropy is log Z + β Σ_j D′_ij e_ij / Z with e = exp(−β D′), Z = Σ_j e_ij.
    """
    n = sq_dist.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sq_dist.device)
    d = sq_dist.masked_fill(eye, 0.0)
    d = d / torch.clamp(d.sum() / max(n * (n - 1), 1), min=1e-12)
    d = d - d.masked_fill(eye, math.inf).amin(1, keepdim=True)
    d = d.masked_fill(eye, 1e20)  # weight exp(−β·1e20) = 0 for every β used; 1e20 · 0 = 0 in the sum
    target = math.log(min(float(perplexity), n - 1.0))
    lo = torch.full((n, 1), -20.0, dtype=d.dtype, device=d.device)
    hi = torch.full_like(lo, 20.0)

    def weights(log_beta):
        beta = torch.exp(log_beta)
        return beta, torch.exp(-beta * d)

    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        beta, e = weights(mid)
        z = e.sum(1, keepdim=True)
        entropy = torch.log(z) + beta * (d * e).sum(1, keepdim=True) / z
        too_flat = entropy > target  # the entropy falls as β grows
        lo = torch.where(too_flat, mid, lo)
        hi = torch.where(too_flat, hi, mid)
    _, e = weights(0.5 * (lo + hi))
    return e / e.sum(1, keepdim=True)


@torch.no_grad()
def symmetric_row_affinities(y: torch.Tensor, perplexity: float) -> torch.Tensor:
    """(P + Pᵀ) with rows renormalised to 1, from the conditional affinities of the points y."""
    p = perplexity_affinities(torch.cdist(y, y).square(), perplexity)
    p = p + p.T
    return p / p.sum(1, keepdim=True)


def cauchy_row_kl(p: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(P_i ‖ Q_i) with q_{j|i} ∝ (1 + d_ij²)⁻¹ over j ≠ i (P rows sum to 1, p_ii = 0)."""
    n = dist.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=dist.device)
    log_num = (-torch.log1p(dist.square())).masked_fill(eye, -math.inf)
    log_q = (log_num - torch.logsumexp(log_num, dim=1, keepdim=True)).masked_fill(eye, 0.0)
    return (torch.special.xlogy(p, p) - p * log_q).sum(1).mean()


def pearson_residual_pcs(counts: np.ndarray, n_pcs: int, seed: int, theta: float = 100.0) -> np.ndarray:
    """First principal components of the analytic Pearson residuals (x − μ)/sqrt(μ + μ²/θ), clipped at ±√n."""
    from sklearn.decomposition import PCA

    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    total = counts.sum()
    mu = np.outer(counts.sum(1), counts.sum(0) / max(total, 1.0))
    resid = np.divide(counts - mu, np.sqrt(mu + mu * mu / theta), out=np.zeros_like(mu), where=mu > 0)
    np.clip(resid, -math.sqrt(n), math.sqrt(n), out=resid)
    k = int(min(n_pcs, n - 1, counts.shape[1]))
    return PCA(n_components=k, random_state=seed).fit_transform(resid).astype(np.float32)


# ---------------------------------------------------------------------------- model
@dataclass
class SCDHMapConfig:
    n_input: int
    latent_dim: int = 2              # the authors' 2-D disc; any d works (H^d, Poincaré ball of width d)
    encoder_hidden: tuple[int, ...] = (128, 64, 32, 16)
    decoder_hidden: tuple[int, ...] = (16, 32, 64, 128)
    tsne_weight: float = 1000.0
    kl_weight: float = 10.0          # KL weight of the main phase
    pretrain_kl_weight: float = 1.0  # KL weight of the pretraining phase
    perplexity: float = 30.0
    pretrain_epochs: int = 400
    max_norm: float = 15.0

    def __post_init__(self):
        self.encoder_hidden = tuple(int(h) for h in self.encoder_hidden)
        self.decoder_hidden = tuple(int(h) for h in self.decoder_hidden)


def _mlp(dims) -> nn.Sequential:
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ELU()]
    return nn.Sequential(*layers)


class SCDHMap(EngineModel):
    """Wrapped-normal VAE on H^d with a ZINB decoder; phases ``pretrain`` (VAE) and ``train`` (+ t-SNE)."""

    def __init__(self, config: SCDHMapConfig):
        super().__init__()
        self.config = c = config
        d = c.latent_dim
        self.encoder = _mlp((c.n_input, *c.encoder_hidden))
        self.enc_mu = nn.Linear(c.encoder_hidden[-1], d)
        self.enc_sigma = nn.Linear(c.encoder_hidden[-1], d)
        self.decoder = _mlp((d + 1, *c.decoder_hidden))
        self.mean_head = nn.Linear(c.decoder_hidden[-1], c.n_input)
        self.disp_head = nn.Linear(c.decoder_hidden[-1], c.n_input)
        self.pi_head = nn.Linear(c.decoder_hidden[-1], c.n_input)
        self.phase = "pretrain"

    # ------------------------------------------------------------------ engine interface
    def phases(self):
        # Pretraining runs its epochs in full; the main phase stops on the training t-SNE term, as the authors'.
        pre = [{"name": "pretrain", "epochs": self.config.pretrain_epochs, "patience": 0}] \
            if self.config.pretrain_epochs > 0 else []
        return pre + [{"name": "train", "monitor": "tsne"}]

    def start_phase(self, name, data) -> None:
        self.phase = name

    @property
    def loss_weights(self):
        c = self.config
        return {"zinb": 1.0, "kl": c.pretrain_kl_weight if self.phase == "pretrain" else c.kl_weight,
                "tsne": c.tsne_weight}

    def loss_terms(self, batch):
        m, sigma = self.encode(batch["x"])
        z, log_q = self.sample_posterior(m, sigma)
        log_p = self.log_prior(z)
        log_mu, log_theta, pi_logits = self.decode(z, batch["log_sf"])
        counts = batch["counts"]
        nll = zinb_nll_sum(counts, log_mu, log_theta, pi_logits, batch["log_factorial"])
        terms = {"zinb": nll / counts.shape[0], "kl": (log_q - log_p).mean()}
        if self.phase != "pretrain":
            terms["tsne"] = self.tsne_loss(m, batch["pca"])
        return terms

    def latents(self, data):
        """``X_latent``: posterior means in Poincaré-ball coordinates (every row inside the unit ball)."""
        device = self.enc_mu.weight.device
        with torch.no_grad():
            was_training = self.training
            self.eval()
            ms = [self.encode(chunk.to(device))[0] for chunk in torch.split(data["x"], 4096)]
            self.train(was_training)
        return {"X_latent": poincare_from_tangent(torch.cat(ms), self.config.max_norm).cpu().numpy().astype(np.float32)}

    def describe(self):
        return {"class": type(self).__name__, **asdict(self.config)}

    # ------------------------------------------------------------------ pieces
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tangent vector m at the origin (μ = exp₀(m)) and posterior scales σ."""
        h = self.encoder(x)
        m = clamp_norm(self.enc_mu(h), self.config.max_norm)
        sigma = torch.clamp(F.softplus(self.enc_sigma(h)), SIGMA_MIN, SIGMA_MAX)
        return m, sigma

    def sample_posterior(self, m: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A wrapped-normal sample z ∈ H^d (hyperboloid coordinates) and log q(z)."""
        d = m.shape[-1]
        v = clamp_norm(sigma * torch.randn_like(sigma), self.config.max_norm)
        mu = lorentz.exp_map0(m, self.config.max_norm)
        r = _safe_norm(v)
        z = exp_map(transport_from_origin(v, mu), mu, r)
        log_base = (-0.5 * (v / sigma).square() - torch.log(sigma) - 0.5 * _LOG_2PI).sum(-1)
        return z, log_base - (d - 1) * log_sinhc(r.squeeze(-1))

    @staticmethod
    def log_prior(z: torch.Tensor) -> torch.Tensor:
        """log of the wrapped normal at the origin with unit scale: ρ = d_L(o, z) = asinh‖z_{1:}‖."""
        d = z.shape[-1] - 1
        rho = torch.asinh(_safe_norm(z[..., 1:]).squeeze(-1))
        return -0.5 * rho.square() - 0.5 * d * _LOG_2PI - (d - 1) * log_sinhc(rho)

    def decode(self, z: torch.Tensor, log_sf: torch.Tensor):
        h = self.decoder(z)
        log_mu = torch.clamp(self.mean_head(h), LOG_MEAN_MIN, LOG_MEAN_MAX) + log_sf.unsqueeze(-1)
        log_theta = torch.log(torch.clamp(F.softplus(self.disp_head(h)), THETA_MIN, THETA_MAX))
        return log_mu, log_theta, self.pi_head(h)

    def tsne_loss(self, m: torch.Tensor, pcs: torch.Tensor) -> torch.Tensor:
        """Row-wise KL between PCA affinities and Cauchy similarities of the hyperbolic distances."""
        n = m.shape[0]
        if n < 3:
            return m.sum() * 0.0
        p = symmetric_row_affinities(pcs, self.config.perplexity)
        dist = lorentz.tangent_distance(m.unsqueeze(1), m.unsqueeze(0), self.config.max_norm)
        return cauchy_row_kl(p, dist)


def build_tensors(adata, dataset: str, n_pcs: int, seed: int) -> dict[str, torch.Tensor]:
    """scDeepCluster's tensors (input, counts, log size factor, Σ log x!) plus the Pearson-residual PCs."""
    from .scdeepcluster import build_tensors as base

    data = base(adata, dataset)
    data.pop("index")
    data["pca"] = torch.from_numpy(pearson_residual_pcs(data["counts"].numpy(), n_pcs, seed))
    if adata.n_obs < 3:
        raise InputError(f"dataset '{dataset}'", f"has {adata.n_obs} cells", "scDHMap needs at least 3 cells")
    return data
