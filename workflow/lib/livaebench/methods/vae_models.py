"""LiVAE, its ablations, likelihood variants and sweeps, and the VAE-family baselines, registered as methods.

Every entry is one configuration of ``models.livae.LiVAE`` trained through the engine adapter
(``methods.engine.fit_engine_model``); each writes the ``model`` artifact.

Families (the ``family`` column that comparisons and figures group by):

* ``livae``      — vae, ivae, livae (the paper's main comparison, Table 1)
* ``ablation``   — ivae_nomain, ivae_nobn, livae_nomain, livae_nobn, livae_views
* ``likelihood`` — livae_nb, livae_zinb, livae_poisson, livae_zip
* ``sweep``      — livae_lambda{1,5,10}, livae_k{2,4,6,8,10}, livae_d{5,10,15,20}
* ``vae_family`` — betavae, betatcvae, dipvae, infovae (docs/methods.md §7.2; same trunk, other regularizer)

Notes on the variant table of docs/methods.md §2.6: ``ivae_nobn`` (λ = 0, w_bn = 0) leaves the bottleneck untrained and
is therefore the plain VAE; it is kept because the paper's ablation lists it. A model exports
``X_bottleneck`` (le, k-dimensional: 2-D at the default k) only when its bottleneck is trained.
"""
from __future__ import annotations

import numpy as np

from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, Deviation, FitContext, Origin, Resources, register

# The LiVAE trunk's parameters, on top of the engine's (ctx.params = both, updated by method_params).
MODEL_DEFAULTS = {
    "latent_dim": 10, "bottleneck_dim": 2, "hidden": 128, "likelihood": "auto",
    "w_main": 1.0, "w_bn": 1.0, "beta": 1.0, "lam": 10.0,
}
COMMON_DEFAULTS = {**ENGINE_DEFAULTS, **MODEL_DEFAULTS}
CHECKS = {**ENGINE_CHECKS, "bottleneck_dim": Check(minimum=1), "hidden": Check(minimum=1),
          "likelihood": Check(choices=("auto", "nb", "zinb", "poisson", "zip")),
          **{k: Check(minimum=0) for k in ("w_main", "w_bn", "beta", "lam", "tc_beta", "dip_lambda_od",
                                           "dip_lambda_d", "mmd_weight")}}
_MODEL_KEYS = ("latent_dim", "bottleneck_dim", "hidden", "w_main", "w_bn", "beta", "lam",
               "tc_beta", "dip_lambda_od", "dip_lambda_d", "mmd_weight")
# Dense float32 input and counts plus the count tables: ~3 copies of cells x features, 4 bytes each.
RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=16, runtime_min_base=10, runtime_min_per_kcell=2.0)


def build_vae_model(ctx: FitContext, *, geo_pair: str = "bottleneck", regularizer: str = "none"):
    """One LiVAE-class model for ``ctx`` and its tensors (the engine adapter trains it)."""
    from ..models.likelihoods import get_likelihood
    from ..models.livae import LiVAE, LiVAEConfig, count_tensors

    p = ctx.params
    likelihood = get_likelihood(p["likelihood"], ctx.modality).name
    data, cap = count_tensors(ctx.adata, ctx.dataset)
    config = LiVAEConfig(n_input=data["x"].shape[1], likelihood=likelihood, geo_pair=geo_pair, count_cap=cap,
                         regularizer=regularizer, **{k: p[k] for k in _MODEL_KEYS if k in p})
    ctx.log.info("%s/%s: likelihood %s", ctx.dataset, ctx.method, likelihood)
    return LiVAE(config), data


# The LiVAE paper's settings (its methods section; the early-stopping split and patience from the authors'
# successor code): every variant is one of them with its defining changes.
LIVAE_SOURCE = "LiVAE (Fu et al., Lorentz-regularized interpretable VAE; the seed paper of this benchmark)"
LIVAE_URL = "https://github.com/PeterPonyu/LiVAE"
LIVAE_ORIGINAL = {
    "epochs": 400, "batch_size": 128, "lr": 1e-4, "weight_decay": 0.0, "grad_clip": 1.0, "optimizer": "adam",
    "val_frac": 0.15, "patience": 25, **MODEL_DEFAULTS, "likelihood": "auto",
}
LIVAE_BUDGET = "Adam lr 1e-4, batch 128, <= 400 epochs, early stopping on a 15 % validation split (patience 25)"
LIVAE_DEVIATIONS = (
    Deviation("posterior scale", "sigma = exp(0.5 log sigma^2) in sampling and KL",
              "softplus of the variance head in sampling, log-variance in the KL",
              "the authors' KL is then not the KL of the distribution sampled", "either"),
    Deviation("geodesic distance", "hyperbolic law of cosines on tangent vectors", "arcosh(-<a, b>_L)",
              "the same distance; arcosh of the Lorentz product loses all precision for close points in float32",
              "none"),
)
# The VAE-family baselines: each paper's regularizer on the LiVAE trunk, as the LiVAE paper compares them.
_TRUNK = Deviation("architecture", "LiVAE trunk: 128-unit LayerNorm MLP encoder/decoder, NB (RNA) / ZINB (ATAC) "
                   "likelihood on counts, the shared engine", "the original paper's image networks and "
                   "Bernoulli/Gaussian decoders", "image architectures do not apply to count data; one trunk for "
                   "every VAE isolates the regularizer", "either")
_FAMILY_ORIGINS = {
    "betavae": ("β-VAE (Higgins et al., ICLR 2017)", "https://openreview.net/forum?id=Sy2fzU9gl", {"beta": 4.0}),
    "betatcvae": ("β-TCVAE (Chen et al., NeurIPS 2018)", "https://github.com/rtqichen/beta-tcvae",
                  {"tc_beta": 6.0}),
    "dipvae": ("DIP-VAE-II (Kumar et al., ICLR 2018)", "https://openreview.net/forum?id=H1kG7GZAW",
               {"dip_lambda_od": 10.0, "dip_lambda_d": 10.0}),
    # InfoVAE's NLL + (1 - α) KL + (α + λ - 1) MMD at α = 0, λ = 1000
    "infovae": ("InfoVAE (Zhao et al., AAAI 2019)", "https://github.com/ShengjiaZhao/InfoVAE",
                {"mmd_weight": 999.0}),
}


def _origin(name: str, family: str, params: dict, structure: dict) -> tuple[Origin, tuple[Deviation, ...]]:
    """A variant's original: the LiVAE paper's settings plus the variant's defining changes; for the VAE family,
    the regularizer's paper on the LiVAE trunk."""
    if family == "vae_family":
        source, url, own = _FAMILY_ORIGINS[name]
        original = {**LIVAE_ORIGINAL, **_NO_BN, **own}
        deviations = [_TRUNK]
        if name == "infovae":
            deviations.append(Deviation("mmd_weight", "1000", "999 (α + λ − 1 at α = 0, λ = 1000)",
                                        "a round weight; 0.1 % apart", "none"))
        return (Origin(f"{source}; as a baseline of the LiVAE paper", url, original,
                       budget=f"as LiVAE: {LIVAE_BUDGET}"), tuple(deviations))
    return (Origin(LIVAE_SOURCE, LIVAE_URL, {**LIVAE_ORIGINAL, **params}, budget=LIVAE_BUDGET), LIVAE_DEVIATIONS)


def _register(name: str, family: str, description: str, *, params: dict | None = None,
              structure: dict | None = None) -> None:
    """``params``: the variant's defaults, pinned against workflow-wide settings (a global latent_dim does
    not undo livae_d5) but still open to per-method overrides; ``structure``: fixed, defines the method."""
    structure, params = dict(structure or {}), dict(params or {})

    def run(ctx: FitContext) -> dict[str, np.ndarray]:
        return fit_engine_model(ctx, lambda c: build_vae_model(c, **structure))

    origin, deviations = _origin(name, family, params, structure)
    register(name, family, run, {**COMMON_DEFAULTS, **params}, uses_gpu=True, description=description,
             pinned=tuple(params), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
             origin=origin, deviations=deviations)


_NO_BN = {"w_bn": 0.0, "lam": 0.0}

# --- main models (paper Table 1)
_register("vae", "livae", "VAE on the LiVAE trunk (w_bn = 0, λ = 0)", params=_NO_BN)
_register("ivae", "livae", "information-bottleneck VAE (λ = 0)", params={"lam": 0.0})
_register("livae", "livae", "LiVAE: bottleneck path + Lorentz regularizer (full model)")

# --- ablations
_register("ivae_nomain", "ablation", "iVAE without the main reconstruction (w_main = 0)",
          params={"lam": 0.0, "w_main": 0.0})
_register("ivae_nobn", "ablation", "iVAE without the bottleneck reconstruction (= plain VAE)", params=_NO_BN)
_register("livae_nomain", "ablation", "LiVAE without the main reconstruction (w_main = 0)", params={"w_main": 0.0})
_register("livae_nobn", "ablation", "LiVAE without the bottleneck reconstruction (w_bn = 0)", params={"w_bn": 0.0})
_register("livae_views", "ablation", "LiVAE with L_geo between two posterior samples instead of (z, ld)",
          structure={"geo_pair": "views"})

# --- likelihoods
for _lik in ("nb", "zinb", "poisson", "zip"):
    _register(f"livae_{_lik}", "likelihood", f"LiVAE with the {_lik.upper()} likelihood", params={"likelihood": _lik})

# --- sensitivity sweeps (paper §3.9)
for _lam in (1, 5, 10):
    _register(f"livae_lambda{_lam}", "sweep", f"LiVAE, λ = {_lam}", params={"lam": float(_lam)})
for _k in (2, 4, 6, 8, 10):
    _register(f"livae_k{_k}", "sweep", f"LiVAE, bottleneck dimension k = {_k}", params={"bottleneck_dim": _k})
for _d in (5, 10, 15, 20):
    _register(f"livae_d{_d}", "sweep", f"LiVAE, latent dimension d = {_d}", params={"latent_dim": _d})

# --- VAE-family baselines (docs/methods.md §7.2), same trunk and engine, no bottleneck
_register("betavae", "vae_family", "β-VAE (β = 4)", params={**_NO_BN, "beta": 4.0})
_register("betatcvae", "vae_family", "β-TCVAE: KL + (β−1)·total correlation (minibatch-weighted sampling, β = 6)",
          params={**_NO_BN, "tc_beta": 6.0}, structure={"regularizer": "tc"})
_register("dipvae", "vae_family", "DIP-VAE-II: KL + λ_od, λ_d penalties on Cov[μ] + E[diag σ²]",
          params={**_NO_BN, "dip_lambda_od": 10.0, "dip_lambda_d": 10.0}, structure={"regularizer": "dip"})
# InfoVAE objective NLL + (1−α)·KL + (α+λ−1)·MMD with α = 0 and λ = 1000: beta = 1, mmd_weight ≈ 1000.
# The NLL is summed over thousands of features, so the MMD needs a weight of this order to shape q(z).
_register("infovae", "vae_family", "InfoVAE: KL + MMD(q(z) ‖ N(0, I)) (α = 0, λ = 1000)",
          params={**_NO_BN, "mmd_weight": 1000.0}, structure={"regularizer": "mmd"})
