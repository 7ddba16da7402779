"""scGCC: a graph attention encoder on a kNN cell graph, trained by momentum contrast between graph views.

Reimplemented from the paper's description (scGCC: graph contrastive clustering with neighbourhood
augmentations for scRNA-seq data), see ``docs/methods.md §7``. The cells are the nodes of a kNN graph
built on the principal components of the model input ``.X``, and those components (scaled to unit
overall standard deviation) are the node features. Each step draws two augmented views of the graph
and encodes them with a query GAT encoder and its momentum-updated copy (MoCo); for the cells of the
minibatch, each query must pick the key of the same cell in the other view out of a queue of earlier
keys (InfoNCE). A view masks node features at random, adds Gaussian noise, replaces part of some
cells' features by those of a random graph neighbour (the paper's neighbourhood augmentation) and
drops a random subset of edges. The embedding (``X_latent``) is the L2-normalized query encoder output
on the unaugmented graph.

The graph and node features are model buffers; the engine's data is a per-cell index ``idx``, and a
minibatch chooses the anchor cells of a step. The encoder runs on the whole graph at every step, so
every anchor sees its full neighbourhood.

What this implementation simplifies, and why:

* **Node features are principal components** (``n_pcs``, default 50) of ``.X`` rather than the
  highly variable genes, and the augmentations act on them rather than on genes: the encoder runs on
  the whole graph at every step, and a first attention layer (and augmentations) on thousands of genes
  would dominate the cost. The graph is built on the same components.
* **Whole-graph encoding.** The paper encodes the subgraph induced by each minibatch; here the whole
  graph is encoded and the minibatch selects the anchors, so neighbourhoods are complete.
* **Smaller encoder.** 4 attention heads of 32 units (the paper: 20 of 128), no dropout, and a linear
  output of ``latent_dim`` units instead of a ReLU one (which would confine the normalized embedding
  to one orthant). No projection head: the contrast acts on the embedding.
* **Only the instance-level contrast** (MoCo InfoNCE); the clustering module is not part of the
  embedding, and clustering is done downstream for every method alike.
* **Optimizer and schedule** are the benchmark engine's (Adam, fixed epochs, no validation split)
  instead of SGD with a cosine schedule.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..training import EngineModel
from .clear import enqueue, info_nce, momentum_update
from .scgnn import edge_index_of, knn_edges, symmetric_graph

__all__ = ["ScGCC", "ScGCCConfig", "GATEncoder", "pca_features", "drop_edges"]


def pca_features(x: np.ndarray, n_pcs: int, seed: int) -> np.ndarray:
    """Principal components of ``x`` (cells x features), divided by their overall standard deviation."""
    from sklearn.decomposition import PCA

    n_pcs = int(min(n_pcs, x.shape[0] - 1, x.shape[1]))
    pcs = PCA(n_components=n_pcs, svd_solver="randomized", random_state=seed).fit_transform(
        np.asarray(x, dtype=np.float64))
    return (pcs / max(float(pcs.std()), 1e-12)).astype(np.float32)


def drop_edges(edge_index: torch.Tensor, p: float) -> torch.Tensor:
    """The edges kept, each independently with probability 1 − p."""
    if p <= 0:
        return edge_index
    return edge_index[:, torch.rand(edge_index.shape[1], device=edge_index.device) >= p]


@dataclass
class ScGCCConfig:
    n_input: int               # node features (principal components)
    latent_dim: int = 10
    hidden: int = 32           # units per attention head
    heads: int = 4
    queue_size: int = 1024
    momentum: float = 0.99
    temperature: float = 0.2
    feature_mask: float = 0.2  # probability that a node feature is zeroed in a view
    feature_noise: float = 0.1  # standard deviation of the Gaussian noise added to node features
    exchange_prob: float = 0.5  # probability that a cell exchanges features with a random graph neighbour
    exchange_rate: float = 0.3  # fraction of its features it takes from that neighbour
    edge_drop: float = 0.2     # probability that an edge is dropped in a view


class GATEncoder(nn.Module):
    """GATConv(heads, concatenated) → ReLU → GATConv(1 head) → latent_dim (torch-geometric, self loops added)."""

    def __init__(self, n_input: int, hidden: int, heads: int, latent_dim: int):
        super().__init__()
        from torch_geometric.nn import GATConv

        self.conv1 = GATConv(n_input, hidden, heads=heads)
        self.conv2 = GATConv(hidden * heads, latent_dim, heads=1)

    def forward(self, x, edge_index):
        return self.conv2(F.relu(self.conv1(x, edge_index)), edge_index)


class ScGCC(EngineModel):
    """Query GAT + momentum key GAT + queue; InfoNCE between two augmented views of the cell graph."""

    def __init__(self, config: ScGCCConfig, features: torch.Tensor, neighbours: torch.Tensor,
                 edge_index: torch.Tensor):
        super().__init__()
        self.config = c = config
        self.encoder_q = GATEncoder(c.n_input, c.hidden, c.heads, c.latent_dim)
        self.encoder_k = GATEncoder(c.n_input, c.hidden, c.heads, c.latent_dim)
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.register_buffer("features", features)
        self.register_buffer("neighbours", neighbours)  # (n, k): each cell's k nearest cells
        self.register_buffer("edge_index", edge_index)  # symmetrized kNN graph
        self.register_buffer("queue", F.normalize(torch.randn(c.queue_size, c.latent_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @classmethod
    def from_input(cls, config: ScGCCConfig, x: np.ndarray, *, n_pcs: int, k: int, seed: int) -> "ScGCC":
        feats = pca_features(x, n_pcs, seed)
        neighbours = knn_edges(feats, k)
        index, _ = edge_index_of(symmetric_graph(neighbours))
        config.n_input = feats.shape[1]
        return cls(config, torch.from_numpy(feats), torch.from_numpy(neighbours.astype(np.int64)), index)

    def view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One random view of the graph: augmented node features and a random subset of the edges."""
        c = self.config
        x = self.features
        n, p = x.shape
        dev = x.device
        # neighbourhood augmentation: part of a cell's features come from one of its k nearest cells
        pick = torch.randint(0, self.neighbours.shape[1], (n, 1), device=dev)
        partner = self.neighbours.gather(1, pick).squeeze(1)
        hit = (torch.rand(n, 1, device=dev) < c.exchange_prob) & (torch.rand(n, p, device=dev) < c.exchange_rate)
        x = torch.where(hit, x[partner], x)
        x = x * (torch.rand_like(x) >= c.feature_mask) + c.feature_noise * torch.randn_like(x)
        return x, drop_edges(self.edge_index, c.edge_drop)

    def on_step(self, step: int) -> None:
        # called by the engine before each optimization step: the key encoder follows the query encoder
        momentum_update(self.encoder_k, self.encoder_q, self.config.momentum)

    def loss_terms(self, batch):
        idx = batch["idx"]
        q = F.normalize(self.encoder_q(*self.view())[idx], dim=1)
        with torch.no_grad():
            k = F.normalize(self.encoder_k(*self.view())[idx], dim=1)
        loss = info_nce(q, k, self.queue.clone(), self.config.temperature)
        if self.training:  # validation passes leave the queue alone
            enqueue(self.queue, self.queue_ptr, k)
        return {"infonce": loss}

    @torch.no_grad()
    def latents(self, data):
        self.eval()
        z = F.normalize(self.encoder_q(self.features, self.edge_index), dim=1)
        return {"X_latent": z.cpu().numpy().astype(np.float32)}

    def describe(self) -> dict:
        return {"class": type(self).__name__, **asdict(self.config), "n_cells": int(self.features.shape[0]),
                "n_edges": int(self.edge_index.shape[1])}
