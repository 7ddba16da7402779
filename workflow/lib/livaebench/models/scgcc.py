"""scGCC: a graph attention encoder on a kNN cell graph, trained by momentum contrast with neighbourhood augmentations.

Reimplemented from the paper (scGCC: graph contrastive clustering with neighbourhood augmentations for
scRNA-seq data) and the authors' code (github.com/tswstart/scGCC: ``scGCC.py``, ``layer.py``,
``loader.py``), see ``docs/methods.md §7``. The cells are the nodes of a kNN graph (k = 10, Euclidean,
on the first 50 principal components of the model input ``.X``, as scanpy's ``neighbors`` builds it;
symmetrized); the node features are the cells' gene profiles (``.X``). Each step takes a minibatch of
cells and the subgraph they induce; a query GAT encoder sees the clean profiles, its momentum-updated
copy (the key encoder) an augmented copy of them, and each query must pick its own key out of a queue of
keys of earlier minibatches (MoCo InfoNCE). The augmentation is CLEAR's (:func:`..clear.augment_profiles`)
with graph neighbours as donors: mask 20 % of the genes, Gaussian noise (σ 0.2) on 70 %, swap 20 % in
pairs, copy 30 % from one random graph neighbour, copy 30 % from random graph neighbours (one each), each
applied with probability ``aug_prob`` = 0.5.

Encoder (the authors'): GATConv(genes → ``hidden`` per head, ``heads`` heads concatenated, attention
dropout 0.4) → ReLU → dropout 0.4 → GATConv(``heads`` heads averaged → ``latent_dim``) → dropout 0.4; with
the paper's 20 heads of 128 units. The embedding (``X_latent``) is the L2-normalized key encoder output
on the whole graph with clean features (the authors' evaluation embedding). Training: SGD (lr 1,
momentum 0.9, weight decay 1e-4) with a cosine learning-rate schedule over 100 epochs of 512-cell
minibatches, queue 1024, momentum 0.99, temperature 0.2.

Where this differs from the authors' code, and why (declared in the registry, ``methods/graph_contrastive``):

* **No ReLU on the output** and ``latent_dim`` output units (the authors: 256 after a ReLU): the benchmark
  compares embeddings of ``latent_dim`` dimensions, and a ReLU would confine the normalized embedding to
  one orthant. No projection head (the authors' default, ``--mlp`` off).
* **No label-based epoch selection.** The authors evaluate every 10 epochs and keep the embedding of the
  evaluation with the best ARI against the true labels; here the embedding is that of the last epoch.
* **The clustering module** (UMAP + HDBSCAN on the embedding, or k-means) is not a trained head: it
  clusters the finished embedding, which the benchmark does for every method alike, so it is not run.
* **Vectorized augmentation** (see ``models/clear.py``): Bernoulli gene fractions, one random gene
  pairing per minibatch for the swaps, and the crossover changes only the augmented cell.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..training import EngineModel
from .clear import Augmentation, augment_profiles, enqueue, info_nce, momentum_update
from .scgnn import edge_index_of, knn_edges, symmetric_graph

__all__ = ["ScGCC", "ScGCCConfig", "GATEncoder", "pca_features", "induced_subgraph", "SCGCC_AUGMENTATION"]


def scgcc_augmentation(prob: float) -> Augmentation:
    """The authors' rates (``scGCC.py``): every augmentation applied with ``prob``."""
    return Augmentation.applied_with(prob, mask_rate=0.2, noise_rate=0.7, noise_sigma=0.2, swap_rate=0.2,
                                     cross_rate=0.3, replace_rate=0.3)


SCGCC_AUGMENTATION = scgcc_augmentation(0.5)


def pca_features(x: np.ndarray, n_pcs: int, seed: int) -> np.ndarray:
    """Principal components of ``x`` (cells x features), divided by their overall standard deviation."""
    from sklearn.decomposition import PCA

    n_pcs = int(min(n_pcs, x.shape[0] - 1, x.shape[1]))
    pcs = PCA(n_components=n_pcs, svd_solver="randomized", random_state=seed).fit_transform(
        np.asarray(x, dtype=np.float64))
    return (pcs / max(float(pcs.std()), 1e-12)).astype(np.float32)


def induced_subgraph(edge_index: torch.Tensor, nodes: torch.Tensor, n: int) -> torch.Tensor:
    """The edges among ``nodes`` (a 1-D index of distinct nodes), relabelled 0 … len(nodes) − 1 in their order."""
    position = torch.full((n,), -1, dtype=torch.long, device=edge_index.device)
    position[nodes] = torch.arange(nodes.shape[0], device=edge_index.device)
    relabelled = position[edge_index]
    return relabelled[:, (relabelled >= 0).all(dim=0)]


@dataclass
class ScGCCConfig:
    n_input: int               # genes (node features)
    latent_dim: int = 10
    hidden: int = 128          # units per attention head of the first layer
    heads: int = 20
    dropout: float = 0.4       # attention dropout of the first layer and feature dropout after each layer
    queue_size: int = 1024
    momentum: float = 0.99     # MoCo: the key encoder's momentum
    temperature: float = 0.2
    aug_prob: float = 0.5      # probability of each augmentation of the key view
    sgd_momentum: float = 0.9  # the optimizer's momentum (the authors' SGD)
    lr_schedule: str = "cosine"


class GATEncoder(nn.Module):
    """GATConv(heads concatenated) → ReLU → dropout → GATConv(heads averaged) → dropout (torch-geometric)."""

    def __init__(self, n_input: int, hidden: int, heads: int, latent_dim: int, dropout: float = 0.0):
        super().__init__()
        from torch_geometric.nn import GATConv

        self.dropout = dropout
        self.conv1 = GATConv(n_input, hidden, heads=heads, dropout=dropout, concat=True)
        self.conv2 = GATConv(hidden * heads, latent_dim, heads=heads, concat=False)

    def forward(self, x, edge_index):
        h = F.dropout(F.relu(self.conv1(x, edge_index)), p=self.dropout, training=self.training)
        return F.dropout(self.conv2(h, edge_index), p=self.dropout, training=self.training)


class ScGCC(EngineModel):
    """Query GAT on clean profiles + momentum key GAT on augmented ones + queue; InfoNCE over a minibatch subgraph."""

    def __init__(self, config: ScGCCConfig, features: torch.Tensor, edge_index: torch.Tensor):
        super().__init__()
        self.config = c = config
        self.augmentation = scgcc_augmentation(c.aug_prob)
        self.encoder_q = GATEncoder(c.n_input, c.hidden, c.heads, c.latent_dim, c.dropout)
        self.encoder_k = GATEncoder(c.n_input, c.hidden, c.heads, c.latent_dim, c.dropout)
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        n = features.shape[0]
        # the input and the graph are rebuilt from the data on every run: not part of the saved weights
        self.register_buffer("features", features, persistent=False)
        self.register_buffer("edge_index", edge_index, persistent=False)  # symmetric kNN graph, sorted by source
        counts = torch.bincount(edge_index[0], minlength=n)
        self.register_buffer("nbr_ptr", torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]),
                             persistent=False)
        self.register_buffer("queue", F.normalize(torch.randn(c.queue_size, c.latent_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @classmethod
    def from_input(cls, config: ScGCCConfig, x: np.ndarray, *, n_pcs: int, k: int, seed: int) -> "ScGCC":
        index, _ = edge_index_of(symmetric_graph(knn_edges(pca_features(x, n_pcs, seed), k)))  # sorted by source
        config.n_input = x.shape[1]
        return cls(config, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), index)

    def random_neighbours(self, cells: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """For each cell, random graph neighbours (uniform, with replacement) in an array of ``shape`` (cells first)."""
        start, degree = self.nbr_ptr[cells], self.nbr_ptr[cells + 1] - self.nbr_ptr[cells]
        expand = (-1,) + (1,) * (len(shape) - 1)
        offset = (torch.rand(shape, device=cells.device) * degree.view(expand)).long()
        return self.edge_index[1][start.view(expand) + offset]

    def key_view(self, cells: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """The augmented profiles ``x`` of ``cells`` (default: their rows of the input); crossover partner and
        replacement donors are graph neighbours."""
        x = self.features[cells] if x is None else x
        partner = self.random_neighbours(cells, (cells.shape[0],))
        donors = self.random_neighbours(cells, tuple(x.shape))
        return augment_profiles(x, self.augmentation, pool=self.features, partner=partner, donors=donors)

    def phases(self):
        # the optimizer's momentum and schedule are TrainConfig fields; "momentum" among the parameters is MoCo's
        return [{"name": "fit", "momentum": self.config.sgd_momentum, "lr_schedule": self.config.lr_schedule}]

    def on_step(self, step: int) -> None:
        # called by the engine before each optimization step: the key encoder follows the query encoder
        momentum_update(self.encoder_k, self.encoder_q, self.config.momentum)

    def loss_terms(self, batch):
        idx, x = batch["idx"], batch["x"]
        sub = induced_subgraph(self.edge_index, idx, self.features.shape[0])
        # the authors' views: the query sees the clean profiles, the key an augmented copy
        q = F.normalize(self.encoder_q(x, sub), dim=1)
        with torch.no_grad():
            k = F.normalize(self.encoder_k(self.key_view(idx, x), sub), dim=1)
        loss = info_nce(q, k, self.queue.clone(), self.config.temperature)
        if self.training:  # validation passes leave the queue alone
            enqueue(self.queue, self.queue_ptr, k)
        return {"infonce": loss}

    @torch.no_grad()
    def latents(self, data):
        self.eval()
        z = F.normalize(self.encoder_k(self.features, self.edge_index), dim=1)
        return {"X_latent": z.cpu().numpy().astype(np.float32)}

    def describe(self) -> dict:
        return {"class": type(self).__name__, **asdict(self.config), "n_cells": int(self.features.shape[0]),
                "n_edges": int(self.edge_index.shape[1]), "augmentation": asdict(self.augmentation)}

