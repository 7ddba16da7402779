"""scDeepCluster (Tian et al., 2019): a ZINB denoising autoencoder with a Student-t clustering layer.

Specification: docs/methods.md §7 (methods without a maintained package). Written from the paper's
description on the project's training engine; no code of the authors' was copied.

Model. Encoder x̃ + N(0, σ²) → 256 → 64 → z (ReLU, linear last layer); decoder z → 64 → 256 → three
heads per gene: the mean m = s_i · clamp(exp(·), 1e-5, 1e6) scaled by the size factor s_i = l_i / median(l)
(l_i: library size of the selected genes), the dispersion θ = clamp(softplus(·), 1e-4, 1e4) and the
dropout probability π = sigmoid(·). The likelihood is the ZINB of ``likelihoods`` on the raw counts.
Training has two phases (``EngineModel.phases``):

1. ``pretrain`` — the ZINB reconstruction of the counts from the noisy input (term ``zinb``);
2. ``cluster`` — centres c_j initialised by k-means on the clean-input latent of every cell, then
   ``zinb`` + γ · ``kl_cluster`` with KL(P‖Q) between the target P and the Student-t soft assignment Q
   of the clean-input latent (docs/methods.md §7):

       q_ij ∝ (1 + ‖z_i − c_j‖²/α)^(−(α+1)/2),   p_ij ∝ q_ij² / f_j,  f_j = Σ_i q_ij

The embedding (``X_latent``) is the encoder output z for the clean input.

Training follows the authors' PyTorch release (ttgump/scDeepCluster_pytorch): pretraining for a fixed
``pretrain_epochs`` (300) with AMSGrad (lr 1e-3) on every cell; then clustering with Adadelta (lr 1) for
at most ``epochs`` (2000), ended by the model's own rule (``stop_rule``): after each clustering epoch the
hard assignments argmax_j q_ij of every cell are compared with those after the previous epoch (the first
time: with those of the k-means initialisation), and the phase ends when fewer than ``tol`` (0.1 %) of
the cells changed cluster. The last assignments live in a buffer, so a resumed run decides the same way;
the reason is the phase's ``stop_detail`` in ``train_info.json`` and ``convergence.json``.

Differences from the authors' code (each is a ``Deviation`` of the registry entry,
``methods/deep_clustering.py``):

* **Target update once per epoch.** P is recomputed from Q over all cells at the start of every
  clustering epoch (the engine's step counter gives the epoch boundary), as the release does with its
  default update interval; Q is recomputed per minibatch. Clustering minibatches are reshuffled every
  epoch (the release walks the cells in a fixed order).
* **Number of clusters.** ``n_clusters`` (0: the number of label categories of the dataset when it has
  labels, else 8), centres by k-means (20 starts); the release estimates the number with Louvain
  clustering of the pretrained latent and starts from the Louvain cluster means.
* **Numerics.** float32 (the release: float64); the ZINB of ``likelihoods`` (no ε guards). Adadelta
  uses torch's ρ = 0.9 (the release: 0.95); the engine has no ρ setting.
* **Loss scale.** As in the release, the ZINB term is the mean over genes (and cells) of the negative
  log-likelihood, so γ = 1 weighs the clustering KL as the authors do.
* **Latent size.** The registry default is the authors' 32; the workflow's ``latent_dim`` (10 in the
  shipped configs) replaces it, as for every method.
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
from .likelihoods import nb_rate, zero_inflate

# Output activations of the decoder heads (the paper's ranges).
LOG_MEAN_MIN, LOG_MEAN_MAX = math.log(1e-5), math.log(1e6)
THETA_MIN, THETA_MAX = 1e-4, 1e4


def zinb_nll_sum(counts: torch.Tensor, log_mu: torch.Tensor, log_theta: torch.Tensor,
                 pi_logits: torch.Tensor, log_factorial: torch.Tensor) -> torch.Tensor:
    """−Σ over cells and genes of log ZINB(x; m, θ, π) with a per-entry dispersion θ (a scalar).

    The mean-dependent part is ``likelihoods.zero_inflate(x, nb_rate(...))``, the count part
    lgamma(x+θ) − lgamma(θ) − lgamma(x+1), where ``log_factorial`` holds Σ_g lgamma(x_ig + 1) per cell
    (``count_tensors``). The per-entry θ rules out ``likelihoods``' histogram form of the count part;
    restricting the lgamma pair to the non-zero entries does not pay at RNA densities (~40 % on the
    pancreas HVGs: the gather and scatter cost more than the saved digammas), so it is dense.
    """
    rate = zero_inflate(counts, nb_rate(counts, log_mu, log_theta), pi_logits).sum()
    theta = torch.exp(log_theta)
    gamma_part = (torch.lgamma(counts + theta) - torch.lgamma(theta)).sum()
    return -(rate + gamma_part - log_factorial.sum())


def soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t soft assignment q_ij ∝ (1 + ‖z_i − c_j‖²/α)^(−(α+1)/2); rows sum to 1."""
    return torch.exp(log_soft_assign(z, centres, alpha))


def log_soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    sq = (z.unsqueeze(1) - centres.unsqueeze(0)).square().sum(-1)
    return torch.log_softmax(-0.5 * (alpha + 1.0) * torch.log1p(sq / alpha), dim=1)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """p_ij = (q_ij² / f_j) / Σ_j′ (q_ij′² / f_j′) with cluster frequencies f_j = Σ_i q_ij."""
    weight = q.square() / q.sum(0, keepdim=True)
    return weight / weight.sum(1, keepdim=True)


def cluster_kl(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-cell KL(P_i ‖ Q_i) = Σ_j p_ij (log p_ij − log q_ij) (0 log 0 = 0)."""
    return (torch.special.xlogy(p, p) - p * log_q).sum(-1)


@dataclass
class SCDeepClusterConfig:
    n_input: int
    latent_dim: int = 32
    hidden: tuple[int, ...] = (256, 64)
    noise_sd: float = 2.5          # σ of the Gaussian noise on the (z-scored) input, training only
    gamma: float = 1.0             # weight of KL(P ‖ Q)
    alpha: float = 1.0             # degrees of freedom of the Student-t kernel
    n_clusters: int = 8
    pretrain_epochs: int = 300
    pretrain_lr: float = 1e-3      # the clustering phase takes the engine's lr and optimizer
    pretrain_optimizer: str = "amsgrad"
    batch_size: int = 256          # the engine's batch size (gives the epoch boundary for the P update)
    kmeans_n_init: int = 20
    tol: float = 1e-3              # the clustering phase ends when fewer than this share of cells change cluster
    seed: int = 0                  # k-means seed

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.n_clusters < 2:
            raise InputError("scDeepCluster configuration", f"n_clusters = {self.n_clusters}",
                             "use at least 2 clusters")


class SCDeepCluster(EngineModel):
    """ZINB denoising autoencoder (phase ``pretrain``) + Student-t clustering KL (phase ``cluster``)."""

    def __init__(self, config: SCDeepClusterConfig):
        super().__init__()
        self.config = c = config
        enc, dims = [], (c.n_input, *c.hidden)
        for a, b in zip(dims[:-1], dims[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        self.encoder = nn.Sequential(*enc, nn.Linear(dims[-1], c.latent_dim))
        dec, dims = [], (c.latent_dim, *reversed(c.hidden))
        for a, b in zip(dims[:-1], dims[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec)
        self.mean_head = nn.Linear(dims[-1], c.n_input)
        self.disp_head = nn.Linear(dims[-1], c.n_input)
        self.pi_head = nn.Linear(dims[-1], c.n_input)
        self.centres = nn.Parameter(torch.zeros(c.n_clusters, c.latent_dim))
        self.phase = "pretrain"
        self._n_batches = 1
        self._x_all: torch.Tensor | None = None   # every cell's input (CPU), for the target update
        self._target_fresh = False                # the stop rule already computed the next epoch's target
        self.register_buffer("target", torch.zeros(0, c.n_clusters), persistent=False)
        # Stop-rule state, saved with the checkpoint: every cell's hard assignment at the last check (set by
        # start_phase('cluster')) and the share of cells that changed cluster then (-1: no check yet).
        self.register_buffer("last_labels", torch.zeros(0, dtype=torch.long))
        self.register_buffer("label_change", torch.tensor(-1.0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the assignments buffer has one entry per cell once clustering started: take the saved length
        saved = state_dict.get(prefix + "last_labels")
        if saved is not None and saved.shape != self.last_labels.shape:
            self.last_labels = torch.zeros(saved.shape, dtype=torch.long, device=self.last_labels.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ engine interface
    def phases(self):
        c = self.config
        pre = [{"name": "pretrain", "epochs": c.pretrain_epochs, "lr": c.pretrain_lr,
                "optimizer": c.pretrain_optimizer}] if c.pretrain_epochs > 0 else []
        # No early stopping while clustering (the stop rule ends it): its loss measures the distance from a
        # target that moves every epoch (and the departure from the pretrained optimum the phase is meant to make).
        return pre + [{"name": "cluster", "patience": 0}]

    def start_phase(self, name, data) -> None:
        self.phase = name
        if name != "cluster":
            return
        from sklearn.cluster import KMeans

        self._x_all = data["x"]
        z = self.embed(self._x_all).astype(np.float64)
        km = KMeans(self.config.n_clusters, n_init=self.config.kmeans_n_init, random_state=self.config.seed).fit(z)
        with torch.no_grad():
            self.centres.copy_(torch.as_tensor(km.cluster_centers_, dtype=self.centres.dtype))
        # the assignments the first check compares with (a resumed run overwrites them from its checkpoint)
        self.last_labels = self.update_target().to(self.last_labels.device)
        self.label_change.fill_(-1.0)

    def stop_rule(self, epoch, data):
        """End clustering once fewer than ``tol`` of the cells changed their hard assignment over the epoch."""
        if self.phase != "cluster":
            return None
        labels = self.update_target()
        changed = float((labels != self.last_labels).float().mean())
        self.last_labels.copy_(labels)
        self.label_change.fill_(changed)
        self._target_fresh = True  # these parameters start the next epoch: its target is the one just computed
        if changed < self.config.tol:
            return (f"{100 * changed:.3g} % of the cells changed cluster in clustering epoch {epoch}, fewer than "
                    f"the tolerance of {100 * self.config.tol:.3g} %")
        return None

    def on_fit_start(self, n_train: int) -> None:
        self._n_batches = max(1, math.ceil(n_train / min(self.config.batch_size, n_train)))

    def on_step(self, step: int) -> None:
        if self.phase == "cluster" and step % self._n_batches == 0:
            if not self._target_fresh:  # the first epoch of the phase, or the first after a resume
                self.update_target()
            self._target_fresh = False

    @property
    def loss_weights(self):
        return {"zinb": 1.0, "kl_cluster": self.config.gamma}

    def loss_terms(self, batch):
        x = batch["x"]
        # Noise in validation too (the engine draws the same validation noise every epoch), so the
        # validation loss estimates the objective being trained; the embedding reads the clean input.
        noisy = x + self.config.noise_sd * torch.randn_like(x) if self.config.noise_sd > 0 else x
        z_noisy = self.encoder(noisy)
        log_mu, log_theta, pi_logits = self.decode(z_noisy, batch["log_sf"])
        counts = batch["counts"]
        nll = zinb_nll_sum(counts, log_mu, log_theta, pi_logits, batch["log_factorial"])
        terms = {"zinb": nll / counts.numel()}  # mean over cells and genes, as the paper's loss
        if self.phase == "cluster":
            z = self.encoder(x) if noisy is not x else z_noisy
            log_q = log_soft_assign(z, self.centres, self.config.alpha)
            p = self.target.index_select(0, batch["index"])
            terms["kl_cluster"] = cluster_kl(p, log_q).mean()
        return terms

    def latents(self, data):
        return {"X_latent": self.embed(data["x"]).astype(np.float32)}

    def describe(self):
        return {"class": type(self).__name__, **asdict(self.config)}

    # ------------------------------------------------------------------ pieces
    def decode(self, z: torch.Tensor, log_sf: torch.Tensor):
        """log mean (size-factor scaled), log θ and dropout logits of every gene for latent codes z."""
        h = self.decoder(z)
        log_mu = torch.clamp(self.mean_head(h), LOG_MEAN_MIN, LOG_MEAN_MAX) + log_sf.unsqueeze(-1)
        log_theta = torch.log(torch.clamp(F.softplus(self.disp_head(h)), THETA_MIN, THETA_MAX))
        return log_mu, log_theta, self.pi_head(h)

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        """Encoder output of the clean input for every row of x (on the model's device)."""
        device = self.centres.device
        return torch.cat([self.encoder(chunk.to(device)) for chunk in torch.split(x, batch_size)]).cpu().numpy()

    @torch.no_grad()
    def update_target(self) -> torch.Tensor:
        """P from Q over every cell, for the next clustering epoch; returns each cell's hard assignment."""
        z = torch.from_numpy(self.embed(self._x_all)).to(self.centres.device)
        q = soft_assign(z, self.centres, self.config.alpha)
        self.target = target_distribution(q)
        return q.argmax(1)


def build_tensors(adata, dataset: str) -> dict[str, torch.Tensor]:
    """The training tensors: input, raw counts, log size factor, Σ log x!, and each cell's row index."""
    from .tensors import count_tensors

    data, _ = count_tensors(adata, dataset)
    log_lib = data["log_lib"]
    return {"x": data["x"], "counts": data["counts"], "log_sf": log_lib - log_lib.median(),
            "log_factorial": data["log_factorial"], "index": torch.arange(adata.n_obs)}
