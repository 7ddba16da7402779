"""LiVAE (docs/methods.md §2) and every variant of it as configuration of one class, plus the VAE-family trunk.

One ``LiVAE`` module covers:

* the paper's models and ablations through the loss weights: ``vae`` (w_bn = λ = 0), ``ivae`` (λ = 0),
  ``livae``, ``*_nomain`` (w_main = 0), ``*_nobn`` (w_bn = 0), and ``livae_views`` (L_geo between
  two posterior samples z₁, z₂ instead of (z, ld); the bottleneck reconstruction is kept);
* the likelihood (NB, ZINB, Poisson, ZIP) and the λ / k / d sweeps;
* the VAE-family baselines on the same encoder/decoder trunk (docs/methods.md §7.2) through ``regularizer``:
  β-VAE (β), β-TCVAE ("tc"), DIP-VAE-II ("dip"), InfoVAE/MMD ("mmd").

Speed: both reconstruction paths go through the shared decoder as one batched forward (z and ld
stacked along the batch), and the likelihood's mean-free part (lgamma terms) is computed once per
minibatch for both paths (see ``likelihoods``). Terms whose weight is 0 are not computed at all, and
the bottleneck layers only exist when something trains them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..training import EngineModel
from . import lorentz
from .likelihoods import LIKELIHOODS
from .regularizers import dip_ii_penalty, gaussian_kl, mmd_rbf, total_correlation
from .tensors import count_tensors  # noqa: F401  (re-exported: the LiVAE family's data)

REGULARIZERS = ("none", "tc", "dip", "mmd")
GEO_PAIRS = ("bottleneck", "views")


@dataclass
class LiVAEConfig:
    n_input: int
    latent_dim: int = 10
    bottleneck_dim: int = 2
    hidden: int = 128
    likelihood: str = "nb"          # nb | zinb | poisson | zip (already resolved from "auto")
    w_main: float = 1.0             # reconstruction from z
    w_bn: float = 1.0               # reconstruction from ld (bottleneck path)
    beta: float = 1.0               # KL weight
    lam: float = 10.0               # λ, weight of L_geo
    geo_pair: str = "bottleneck"    # L_geo between (z, ld) or, "views", two samples (z1, z2)
    regularizer: str = "none"       # none | tc (β-TCVAE) | dip (DIP-VAE-II) | mmd (InfoVAE)
    tc_beta: float = 6.0            # β-TCVAE: weight of the total correlation (KL keeps weight `beta`)
    dip_lambda_od: float = 10.0
    dip_lambda_d: float = 10.0
    mmd_weight: float = 1000.0      # InfoVAE: weight of MMD(q(z) ‖ N(0, I))
    max_tangent_norm: float = 15.0  # clamp of ‖u‖ in the Lorentz exponential map
    count_cap: int = 16             # histogram cap of the likelihood's count tables (from count_tensors)

    def __post_init__(self):
        problems = []
        if self.likelihood not in LIKELIHOODS:
            problems.append(f"likelihood '{self.likelihood}' (use one of {', '.join(LIKELIHOODS)})")
        if self.geo_pair not in GEO_PAIRS:
            problems.append(f"geo_pair '{self.geo_pair}' (use one of {', '.join(GEO_PAIRS)})")
        if self.regularizer not in REGULARIZERS:
            problems.append(f"regularizer '{self.regularizer}' (use one of {', '.join(REGULARIZERS)})")
        for name in ("w_main", "w_bn", "beta", "lam", "tc_beta", "dip_lambda_od", "dip_lambda_d", "mmd_weight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} = {getattr(self, name)} is negative")
        if self.w_main <= 0 and self.w_bn <= 0:
            problems.append("w_main and w_bn are both 0, so nothing trains the decoder")
        for name in ("latent_dim", "bottleneck_dim", "hidden"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1")
        if problems:
            raise InputError("LiVAE configuration", "; ".join(problems), "fix the method parameters in the config")

    @property
    def has_bottleneck(self) -> bool:
        """The le/ld path exists when something trains it: its reconstruction or L_geo on (z, ld)."""
        return self.w_bn > 0 or (self.lam > 0 and self.geo_pair == "bottleneck")


class LiVAE(EngineModel):
    """Encoder → z (→ le → ld) → shared softmax decoder → count likelihood on raw counts."""

    def __init__(self, config: LiVAEConfig):
        super().__init__()
        self.config = c = config
        self.likelihood = LIKELIHOODS[c.likelihood]
        g, h, d, k = c.n_input, c.hidden, c.latent_dim, c.bottleneck_dim
        self.encoder = nn.Sequential(nn.Linear(g, h), nn.LayerNorm(h), nn.ReLU(), nn.Linear(h, 2 * d))
        if c.has_bottleneck:
            self.bn_encode = nn.Linear(d, k)   # z → le (linear, no activation)
            self.bn_decode = nn.Linear(k, d)   # le → ld
        self.decoder = nn.Sequential(nn.Linear(d, h), nn.LayerNorm(h), nn.ReLU(), nn.Linear(h, g))
        if self.likelihood.dispersion:
            self.log_theta = nn.Parameter(torch.zeros(g))  # θ_g = exp(φ_g), shared by both paths
        if self.likelihood.zero_inflated:
            self.dropout_head = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, g))
        self.n_train = 1

    # ------------------------------------------------------------------ engine interface
    @property
    def loss_weights(self) -> dict[str, float]:
        c = self.config
        # β-TCVAE = KL + (β_tc − 1)·TC, since KL = index-code MI + TC + dimension-wise KL
        return {"nll_main": c.w_main, "nll_bn": c.w_bn, "kl": c.beta, "geo": c.lam,
                "tc": c.tc_beta - 1.0, "dip": 1.0, "mmd": c.mmd_weight}

    def on_fit_start(self, n_train: int) -> None:
        self.n_train = n_train

    def loss_terms(self, batch):
        c = self.config
        mu, logvar = self.encode(batch["x"])
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn_like(std)

        paths: list[tuple[str, torch.Tensor]] = []
        if c.w_main > 0:
            paths.append(("nll_main", z))
        ld = None
        if c.has_bottleneck:
            ld = self.bn_decode(self.bn_encode(z))
            if c.w_bn > 0:
                paths.append(("nll_bn", ld))
        nll = self._nll(batch, torch.cat([p for _, p in paths]) if len(paths) > 1 else paths[0][1], len(paths))
        terms = {name: nll[i] for i, (name, _) in enumerate(paths)}

        if c.beta > 0:
            terms["kl"] = gaussian_kl(mu, logvar).mean()
        if c.lam > 0:
            other = mu + std * torch.randn_like(std) if c.geo_pair == "views" else ld
            terms["geo"] = lorentz.squared_distance_loss(z, other, c.max_tangent_norm)
        if c.regularizer == "tc" and c.tc_beta != 1.0:
            terms["tc"] = total_correlation(z, mu, logvar, self.n_train)
        elif c.regularizer == "dip":
            terms["dip"] = dip_ii_penalty(mu, logvar, c.dip_lambda_od, c.dip_lambda_d)
        elif c.regularizer == "mmd" and c.mmd_weight > 0:
            terms["mmd"] = mmd_rbf(z, torch.randn_like(z))
        return terms

    # ------------------------------------------------------------------ pieces
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode_params(self, h: torch.Tensor, log_lib: torch.Tensor):
        """log mean (log l + log softmax), log θ and dropout logits for latent codes h (..., B, d)."""
        log_mu = F.log_softmax(self.decoder(h), dim=-1) + log_lib.unsqueeze(-1)
        pi_logits = self.dropout_head(h) if self.likelihood.zero_inflated else None
        return log_mu, getattr(self, "log_theta", None), pi_logits

    def _nll(self, batch, h: torch.Tensor, n_paths: int) -> torch.Tensor:
        """Mean NLL (summed over features) for each of ``n_paths`` stacked decoder inputs; shape (n_paths,)."""
        counts = batch["counts"]
        h = h.view(n_paths, counts.shape[0], -1)
        log_mu, log_theta, pi_logits = self.decode_params(h, batch["log_lib"])
        rate = self.likelihood.rate_rowsum(counts, log_mu, log_theta, pi_logits)       # (P, B)
        count = self.likelihood.count_total(batch, log_theta, self.config.count_cap)  # once for all paths
        return -(rate.mean(-1) + count / counts.shape[0])

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray | None]:
        """μ (the embedding) and, for bottleneck models, le = W_e μ + b_e, as float32 arrays."""
        was_training = self.training
        self.eval()
        mus, les = [], []
        for chunk in torch.split(x, batch_size):
            mu, _ = self.encode(chunk)
            mus.append(mu)
            if self.config.has_bottleneck:
                les.append(self.bn_encode(mu))
        self.train(was_training)
        mu = torch.cat(mus).float().cpu().numpy()
        le = torch.cat(les).float().cpu().numpy() if les else None
        return mu, le

    def latents(self, data) -> dict[str, np.ndarray]:
        """``X_latent`` = μ and, for bottleneck models, ``X_bottleneck`` = le."""
        device = next(self.parameters()).device
        mu, le = self.embed(data["x"].to(device))
        return {"X_latent": mu} if le is None else {"X_latent": mu, "X_bottleneck": le}

    def describe(self) -> dict:
        return {"class": type(self).__name__, **asdict(self.config)}
