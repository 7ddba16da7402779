"""UniCoord: a joint VAE with supervised and free, continuous and discrete latent coordinates (docs/methods.md §6.1).

The latent of a cell is ``[supervised continuous | diffusion | free continuous | one-hot per discrete
variable]``. Supervised continuous coordinates are tied to numeric ``obs`` columns (regression of
their μ onto the z-scored value), supervised discrete ones to categorical columns (cross-entropy);
setting a coordinate and decoding is "in silico reconfiguration". Input and reconstruction target are
the paper's log1p(normalize_total 1e4, exclude_highly_expressed) values of the selected genes
(:func:`model_input`: genes above 5 % of a cell's counts in any cell leave the size factors).

Loss per minibatch (per-cell means), weighted in :attr:`UniCoord.loss_weights` and divided by the
number of genes G as in the authors' code::

    G·MSE + γ|C(t) − KL_cont| + γ|C(t) − KL_disc| + w_reg·regression + w_cls·classification
          + w_diff·diffusion + w_hier·hierarchical

with the capacity C(t) rising linearly from 0 to ``capacity`` nats over ``capacity_steps`` optimisation
steps, set by :meth:`UniCoord.on_step` from the engine's global step (so a resumed run continues the
schedule exactly). The discrete channels' capacity is C(t) capped at Σ_k log K_k, the most their KL to
the uniform priors can be (joint-VAE capacity control, as in the authors' code).

Deviations from the authors' code (docs/methods.md §6.4):

* inference (embeddings, label prediction, decoding) runs in ``eval()`` mode: dropout off; the
  embedding is μ and the discrete probabilities; generated cells are decoded from a seeded sample of
  the (modified) posterior, :func:`posterior_sample`, as the paper describes (the authors' package
  decodes μ and the argmax one-hot, with dropout left on);
* the cross-entropy receives the logits (the authors apply softmax twice);
* no chunked training: ``epochs`` passes over all training cells, the same number of optimisation
  steps as the authors' 100 epochs per 20,000-cell chunk (the order of the minibatches differs);
* diffusion term: the neighbours of a cell are the other cells of its minibatch, weighted by
  exp(−d²/bandwidth) with d the distance in the diffusion coordinates; the cell itself is left out;
* hierarchical term: −Σ_p (q_child · M)_p log q_parent,p, M the child→parent map (each child
  category's most frequent parent), a cross-entropy between the child probabilities aggregated
  through the tree and the parent head; its weight (default 100) is not given by the paper;
* unlabelled cells (NaN in a supervised column) contribute no regression/classification term;
* supervised continuous coordinates regress onto the z-scored obs value (the authors: the raw value).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..training import EngineModel

RARE = "rare"
TARGET_SUM = 1e4
MAX_FRACTION = 0.05  # scanpy's normalize_total(exclude_highly_expressed=True) threshold


def gumbel_softmax_sample(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """A relaxed one-hot sample: softmax((logits + Gumbel noise) / temperature)."""
    u = torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-7)
    return F.softmax((logits - torch.log(-torch.log(u))) / temperature, dim=-1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per cell, summed over dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def uniform_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) ‖ uniform) per cell: Σ q log q + log K."""
    logq = F.log_softmax(logits, dim=-1)
    return (logq.exp() * logq).sum(dim=1) + math.log(logits.shape[1])


def capacity_at(step: int, capacity: float, capacity_steps: int) -> float:
    """C(t): linear from 0 to ``capacity`` nats over ``capacity_steps`` steps, then constant."""
    if capacity_steps <= 0:
        return float(capacity)
    return float(capacity) * min(1.0, step / capacity_steps)


def max_discrete_capacity(sizes) -> float:
    """Σ_k log K_k: the largest KL a set of categorical posteriors can have from their uniform priors."""
    return float(sum(math.log(k) for k in sizes))


def posterior_sample(mu: torch.Tensor, logvar: torch.Tensor, probs: list[torch.Tensor], *, seed: int,
                     fixed: Mapping[int, int] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A seeded draw from the posterior: z = μ + σ·ε and, per discrete variable, a category drawn from its
    probabilities (one-hot; Gumbel-max). ``fixed`` {variable index: category} sets variables to a category.

    The same seed on the same cells gives the same draw, and every variable's noise is drawn whether it is
    fixed or not, so two reconfigurations of the same cells share their noise (a paired comparison).
    """
    gen = torch.Generator().manual_seed(int(seed))
    z = mu + torch.randn(mu.shape, generator=gen, dtype=mu.dtype) * (0.5 * logvar).exp()
    onehots = []
    for j, p in enumerate(probs):
        u = torch.rand(p.shape, generator=gen, dtype=p.dtype).clamp_(1e-10, 1.0 - 1e-7)
        pick = (p.clamp_min(1e-30).log() - torch.log(-torch.log(u))).argmax(dim=1)
        if fixed and j in fixed:
            pick = torch.full_like(pick, int(fixed[j]))
        onehots.append(F.one_hot(pick, p.shape[1]).to(mu.dtype))
    return z, onehots


def soft_neighbour_average(z_free: torch.Tensor, z_diff: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Each cell's free coordinates replaced by the kernel-weighted mean of the other cells' (kernel
    exp(−d²/bandwidth), d the distance between their diffusion coordinates)."""
    d2 = torch.cdist(z_diff, z_diff).pow(2)
    logits = -d2 / bandwidth
    logits = logits.masked_fill(torch.eye(len(z_diff), dtype=torch.bool, device=z_diff.device), float("-inf"))
    return F.softmax(logits, dim=1) @ z_free  # normalized weights; softmax is the stable form


class UniCoord(EngineModel):
    """The model; ``layout`` is the dict :func:`livaebench.methods.unicoord.build_layout` makes.

    ``layout`` keys: ``continuous`` (list of {key, mean, sd}), ``n_diffusion``, ``n_free``, ``discrete``
    (list of {key, categories}), ``free_discrete`` (list of category counts), ``parents`` (list of
    {child, parent, map}: the parent index of each child category), ``var_names``; ``hyper`` holds the
    loss settings (temperature, gamma, capacity, capacity_steps, weights, bandwidth).
    """

    def __init__(self, n_input: int, layout: Mapping[str, Any], hyper: Mapping[str, float]):
        super().__init__()
        self.n_input = int(n_input)
        self.layout = dict(layout)
        self.hyper = dict(hyper)
        self.n_sup = len(layout["continuous"])
        self.n_diff = int(layout["n_diffusion"])
        self.n_cont = self.n_sup + self.n_diff + int(layout["n_free"])
        self.disc_sizes = [len(d["categories"]) for d in layout["discrete"]] + [int(k) for k in layout["free_discrete"]]
        self.n_latent = self.n_cont + sum(self.disc_sizes)
        drop = 0.1
        self.encoder = nn.Sequential(nn.Linear(n_input, 512), nn.ReLU(), nn.Dropout(drop),
                                     nn.Linear(512, 256), nn.ReLU(), nn.Dropout(drop),
                                     nn.Linear(256, 128), nn.ReLU())
        self.mu = nn.Linear(128, self.n_cont)
        self.logvar = nn.Linear(128, self.n_cont)
        self.disc_heads = nn.ModuleList(nn.Linear(128, k) for k in self.disc_sizes)
        self.decoder = nn.Sequential(nn.Linear(self.n_latent, 128), nn.ReLU(),
                                     nn.Linear(128, 256), nn.ReLU(), nn.Dropout(drop),
                                     nn.Linear(256, 512), nn.ReLU(), nn.Dropout(drop),
                                     nn.Linear(512, n_input), nn.ReLU())
        # parent maps as (K_child x K_parent) 0/1 matrices, between discrete head indices
        index = {d["key"]: i for i, d in enumerate(layout["discrete"])}
        self.tree = []
        for j, link in enumerate(layout.get("parents", [])):
            child, parent = index[link["child"]], index[link["parent"]]
            m = torch.zeros(self.disc_sizes[child], self.disc_sizes[parent])
            m[torch.arange(self.disc_sizes[child]), torch.as_tensor(link["map"])] = 1.0
            self.register_buffer(f"tree_{j}", m)
            self.tree.append((child, parent, f"tree_{j}"))
        self.capacity = 0.0
        self.max_disc_capacity = max_discrete_capacity(self.disc_sizes)

    # ------------------------------------------------------------------ engine interface
    @property
    def loss_weights(self) -> dict[str, float]:
        h, g = self.hyper, float(self.n_input)
        return {"recon": 1.0 / g, "kl_cont": h["gamma"] / g, "kl_disc": h["gamma"] / g,
                "regression": h["regression_weight"] / g, "classification": h["classification_weight"] / g,
                "diffusion": h["diffusion_weight"] / g, "hierarchical": h["hierarchical_weight"] / g}

    def on_step(self, step: int) -> None:
        self.capacity = capacity_at(step, self.hyper["capacity"], int(self.hyper["capacity_steps"]))

    @property
    def disc_capacity(self) -> float:
        """The discrete channels' capacity: C(t), never above Σ_k log K_k."""
        return min(self.capacity, self.max_disc_capacity)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(-15.0, 15.0), [head(h) for head in self.disc_heads]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def sample(self, mu, logvar, logits) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Training: reparameterized z and Gumbel-softmax samples; eval: μ and hard one-hots."""
        if self.training:
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            return z, [gumbel_softmax_sample(lg, self.hyper["temperature"]) for lg in logits]
        return mu, [F.one_hot(lg.argmax(dim=1), lg.shape[1]).to(mu.dtype) for lg in logits]

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        mu, logvar, logits = self.encode(x)
        z, ys = self.sample(mu, logvar, logits)
        recon = (self.decode(torch.cat([z, *ys], dim=1)) - x).pow(2).sum(dim=1).mean()
        zero = x.new_zeros(())
        kl_cont = gaussian_kl(mu, logvar).mean()
        kl_disc = sum((uniform_kl(lg).mean() for lg in logits), zero)
        # regression: μ of each supervised coordinate against its z-scored value (labelled cells only)
        regression = zero
        if self.n_sup:
            mask = batch["m_cont"]
            regression = ((mu[:, :self.n_sup] - batch["y_cont"]).pow(2) * mask).sum() / mask.sum().clamp(min=1.0)
        classification = zero
        n_sup_disc = len(self.layout["discrete"])
        for i in range(n_sup_disc):
            target = batch["y_disc"][:, i]
            # mean over labelled cells; written out so that an all-unlabelled batch gives 0, not NaN
            ce = F.cross_entropy(logits[i], target.clamp(min=0), reduction="none")
            labelled = (target >= 0).to(ce.dtype)
            classification = classification + (ce * labelled).sum() / labelled.sum().clamp(min=1.0)
        diffusion = zero
        if self.n_diff and x.shape[0] > 1:
            s, d = self.n_sup, self.n_sup + self.n_diff
            z_free = soft_neighbour_average(z[:, d:], z[:, s:d], self.hyper["bandwidth"])
            z_nb = torch.cat([z[:, :d], z_free, *ys], dim=1)
            diffusion = (self.decode(z_nb) - x).pow(2).sum(dim=1).mean()
        hierarchical = zero
        for child, parent, name in self.tree:
            aggregated = F.softmax(logits[child], dim=1) @ getattr(self, name)
            hierarchical = hierarchical - (aggregated * F.log_softmax(logits[parent], dim=1)).sum(dim=1).mean()
        c = self.capacity
        kl_disc = (kl_disc - self.disc_capacity).abs() if logits else zero
        return {"recon": recon, "kl_cont": (kl_cont - c).abs(), "kl_disc": kl_disc,
                "regression": regression, "classification": classification, "diffusion": diffusion,
                "hierarchical": hierarchical}

    # ------------------------------------------------------------------ inference (eval mode)
    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 1024) -> dict[str, torch.Tensor]:
        """μ and log σ² of the continuous coordinates and softmax probabilities of each discrete variable."""
        self.eval()
        mus, logvars, probs = [], [], [[] for _ in self.disc_sizes]
        device = next(self.parameters()).device
        for chunk in torch.split(x, batch_size):
            mu, logvar, logits = self.encode(chunk.to(device))
            mus.append(mu.cpu())
            logvars.append(logvar.cpu())
            for i, lg in enumerate(logits):
                probs[i].append(F.softmax(lg, dim=1).cpu())
        return {"mu": torch.cat(mus), "logvar": torch.cat(logvars), "probs": [torch.cat(p) for p in probs]}

    @torch.no_grad()
    def decode_latent(self, z: torch.Tensor, onehots: list[torch.Tensor], batch_size: int = 1024) -> torch.Tensor:
        """Expression decoded (eval mode) from continuous coordinates and one-hot discrete ones."""
        self.eval()
        device = next(self.parameters()).device
        z = torch.cat([z, *onehots], dim=1)
        return torch.cat([self.decode(chunk.to(device)).cpu() for chunk in torch.split(z, batch_size)])

    def latents(self, data: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        out = self.embed(data["x"])
        return {"X_latent": torch.cat([out["mu"], *out["probs"]], dim=1).numpy().astype(np.float32)}

    def describe(self) -> dict[str, Any]:
        return {"class": "UniCoord", "n_input": self.n_input, "layout": self.layout, "hyper": self.hyper}


def load_unicoord(path, device: str | None = "cpu") -> tuple[UniCoord, dict[str, Any]]:
    """A saved UniCoord (``model.pt``) in eval mode, and its saved dict (config, var_names, train_info)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = saved["config"]
    model = UniCoord(cfg["n_input"], cfg["layout"], cfg["hyper"])
    model.load_state_dict(saved["state_dict"])
    model.to(device or "cpu").eval()
    return model, saved


# ---------------------------------------------------------------------------- data → layout and tensors
def normalize_log1p(counts, totals=None, max_fraction: float = MAX_FRACTION) -> np.ndarray:
    """Dense float32 log1p(normalize_total 1e4) with highly expressed genes left out of the size factors,
    as scanpy's ``normalize_total(target_sum=1e4, exclude_highly_expressed=True)`` then ``log1p``.

    ``totals``: each cell's count over all genes (default: the row sums of ``counts``). A gene whose count
    exceeds ``max_fraction`` of a cell's total in any cell is excluded; a cell's size factor is its total
    minus its counts of the excluded genes. With ``counts`` a subset of the genes this is exact when every
    highly expressed gene is in the subset.
    """
    import scipy.sparse as sp

    x = sp.csr_matrix(counts, dtype=np.float64)
    totals = np.asarray(x.sum(axis=1)).ravel() if totals is None else np.asarray(totals, dtype=np.float64)
    above = x.multiply(1.0 / np.where(totals > 0, totals, 1.0)[:, None]).tocsr() > max_fraction
    excluded = np.asarray(above.sum(axis=0)).ravel() > 0
    library = totals - np.asarray(x[:, excluded].sum(axis=1)).ravel()
    out = sp.csr_matrix(x.multiply(TARGET_SUM / np.where(library > 0, library, 1.0)[:, None]))
    np.log1p(out.data, out=out.data)  # log1p(0) = 0: only the stored values change
    return out.astype(np.float32).toarray()


def model_input(adata, what: str) -> np.ndarray:
    """UniCoord's input of a preprocessed AnnData: :func:`normalize_log1p` of ``layers['counts']`` with the
    cells' totals over all genes (``obs['total_counts']``, written by the preprocessing)."""
    from ..errors import InputError

    if "counts" not in adata.layers or "total_counts" not in adata.obs:
        raise InputError(what, "has no layers['counts'] and obs['total_counts'] (raw counts and each cell's total)",
                         "use the output of the preprocessing step (results/data/{dataset}/preprocessed.h5ad)")
    counts = adata.layers["counts"]
    values = counts.data if hasattr(counts, "data") and not isinstance(counts, np.ndarray) else np.asarray(counts)
    totals = adata.obs["total_counts"].to_numpy(dtype=np.float64)
    if (np.asarray(values) < 0).any() or not np.isfinite(totals).all() or (totals <= 0).any():
        raise InputError(what, "layers['counts'] has negative values or obs['total_counts'] is not positive",
                         "re-run preprocessing on raw counts")
    return normalize_log1p(counts, totals)


def _obs_column(adata, key: str, what: str, kind: str, dataset: str):
    from ..errors import InputError

    if key not in adata.obs.columns:
        raise InputError(what, f"obs has no column '{key}' ({kind}; obs columns: {', '.join(map(str, adata.obs.columns))})",
                         f"name an existing column in dataset_method_params.{dataset}.unicoord.{kind} "
                         "or add the column to the dataset")
    return adata.obs[key]


def build_layout(adata, *, dataset: str, discrete_keys, continuous_keys, parent_keys, min_obs: int,
                 n_diffusion: int, n_free: int, free_discrete, log=None) -> tuple[dict, dict[str, np.ndarray]]:
    """The latent layout (categories, z-score statistics, parent maps) and the supervision arrays.

    Categorical columns become discrete coordinates (categories with fewer than ``min_obs`` cells pooled
    as "rare"), numeric ones continuous (z-scored); missing values are unlabelled (-100 / mask 0).
    ``parent_keys`` maps a child column to its parent column; both become discrete coordinates.
    Returns (layout, {"y_cont", "m_cont", "y_disc"}).
    """
    import pandas as pd

    from ..errors import InputError

    what = f"dataset '{dataset}', method 'unicoord'"
    parent_keys = dict(parent_keys or {})
    keys = list(dict.fromkeys([*discrete_keys, *parent_keys, *parent_keys.values()]))
    discrete, codes = [], []
    for key in keys:
        col = _obs_column(adata, key, what, "parent_keys" if key not in discrete_keys else "discrete_keys", dataset)
        values = [None if pd.isna(v) else str(v) for v in col]
        counts = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
        if isinstance(col.dtype, pd.CategoricalDtype):
            order = [str(c) for c in col.cat.categories if str(c) in counts.index]
        else:
            order = sorted(counts.index)
        rare = [c for c in order if counts[c] < min_obs]
        kept = [c for c in order if c not in rare]
        if rare and log is not None:
            log.info("%s: '%s' categories with < %d cells pooled as '%s': %s", what, key, min_obs, RARE, ", ".join(rare))
        categories = kept + ([RARE] if rare else [])
        if len(categories) < 2:
            raise InputError(what, f"discrete column '{key}' has {len(categories)} category with >= {min_obs} cells",
                             "supervise it with a column of at least two categories, or lower min_obs")
        index = {c: i for i, c in enumerate(kept)}
        code = np.array([-100 if v is None else index.get(v, len(kept)) for v in values], dtype=np.int64)
        discrete.append({"key": key, "categories": categories})
        codes.append(code)
    parents = []
    for child, parent in parent_keys.items():
        ci, pi = keys.index(child), keys.index(parent)
        both = (codes[ci] >= 0) & (codes[pi] >= 0)
        table = np.zeros((len(discrete[ci]["categories"]), len(discrete[pi]["categories"])), dtype=np.int64)
        np.add.at(table, (codes[ci][both], codes[pi][both]), 1)
        if (table.sum(axis=1) == 0).any():
            raise InputError(what, f"a category of '{child}' has no cell with a '{parent}' value",
                             "check parent_keys: every child category needs a parent")
        if ((table > 0).sum(axis=1) > 1).any() and log is not None:
            log.warning("%s: some '%s' categories have cells of several '%s' categories; each gets its most "
                        "frequent parent", what, child, parent)
        parents.append({"child": child, "parent": parent, "map": table.argmax(axis=1).tolist()})
    continuous, y_cont, m_cont = [], [], []
    for key in continuous_keys:
        col = _obs_column(adata, key, what, "continuous_keys", dataset)
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            raise InputError(what, f"continuous column '{key}' is not numeric ({col.dtype})",
                             "list categorical columns under discrete_keys and numeric ones under continuous_keys")
        v = col.to_numpy(dtype=np.float64)
        ok = np.isfinite(v)
        if ok.sum() < 2:
            raise InputError(what, f"continuous column '{key}' has fewer than 2 finite values", "supervise another column")
        mean, sd = float(v[ok].mean()), float(v[ok].std())
        sd = sd if sd > 0 else 1.0
        continuous.append({"key": key, "mean": mean, "sd": sd})
        y_cont.append(np.where(ok, (v - mean) / sd, 0.0))
        m_cont.append(ok.astype(np.float64))
    n = adata.n_obs
    layout = {"continuous": continuous, "n_diffusion": int(n_diffusion), "n_free": int(n_free),
              "discrete": discrete, "free_discrete": [int(k) for k in free_discrete], "parents": parents,
              "var_names": [str(v) for v in adata.var_names]}
    arrays = {"y_cont": np.stack(y_cont, axis=1).astype(np.float32) if y_cont else np.zeros((n, 0), np.float32),
              "m_cont": np.stack(m_cont, axis=1).astype(np.float32) if m_cont else np.zeros((n, 0), np.float32),
              "y_disc": np.stack(codes, axis=1) if codes else np.zeros((n, 0), np.int64)}
    return layout, arrays


def latent_columns(layout: Mapping[str, Any]) -> list[str]:
    """Names of the latent's columns: supervised keys, diff<i>, free<i>, then key=category per one-hot."""
    names = [c["key"] for c in layout["continuous"]]
    names += [f"diff{i}" for i in range(layout["n_diffusion"])] + [f"free{i}" for i in range(layout["n_free"])]
    for d in layout["discrete"]:
        names += [f"{d['key']}={c}" for c in d["categories"]]
    for j, k in enumerate(layout["free_discrete"]):
        names += [f"free_discrete{j}={i}" for i in range(k)]
    return names
