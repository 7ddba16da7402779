"""scGNN: a feature autoencoder, a kNN cell graph from its embedding and a graph autoencoder, iterated.

Reimplemented from the paper's description (Wang et al. 2021, Nat. Commun. 12:1882), see
``docs/methods.md §7``. Training runs in phases on the benchmark engine:

1. ``feature_ae`` — an autoencoder (G → hidden → feature_dim → hidden → G, ReLU) reconstructs the
   log-normalized expression (``layers['lognorm']``, mean squared error), minibatched over cells.
2. ``graph_ae_1`` — a kNN graph (k nearest cells, Euclidean, symmetrized) on the feature embedding;
   a graph autoencoder — a two-layer GCN encoder Z = Â·ReLU(Â X W₁)·W₂ with
   Â = D^-1/2 (A + I) D^-1/2 and an inner-product decoder σ(z_i·z_j) — learns to reconstruct the
   graph's edges from the (standardized) feature embedding as node features.
3. ``graph_ae_2`` … ``graph_ae_T`` — the graph is rebuilt from the current graph embedding Z and
   mixed with the first one, A_t = λ A_1 + (1 − λ) kNN(Z_{t−1}) (λ = ``graph_mix``, the paper's
   convergence-controlling mixture), and the graph autoencoder continues training on it.

The embedding (``X_latent``) is the graph autoencoder's Z (``latent_dim`` columns) on the last graph.

The graph tensors live in model buffers (they travel with the model to its device and into the
checkpoint); the engine's data holds the expression and a per-cell index ``idx``. Graph phases train
full-batch (one step per epoch over every cell's edges, as graph autoencoders are usually trained);
the loss only looks at the edges leaving the cells of the minibatch, so smaller batches also work.

What this implementation simplifies, and why:

* **No LTMG regulatory signal** (the paper's optional gene-regulation regularizer of the feature AE)
  and **no cluster autoencoders or imputation autoencoder**: they serve clustering and imputation
  outputs, not the cell embedding benchmarked here. Consequently the feature AE is trained once; the
  iterations rebuild the graph and retrain the graph AE, not the feature AE.
* **No isolation-forest pruning** of kNN edges; the kNN graph is symmetrized (an edge when either
  cell is among the other's k nearest).
* **Edge reconstruction by negative sampling.** The dense σ(ZZᵀ) against the full n × n adjacency is
  replaced by binary cross-entropy on the graph's edges (target 1, each weighted by its edge weight)
  and on as many random cell pairs (target 0): O(edges) instead of O(n²) memory, the usual scalable
  form of the same loss.
* **Plain GAE**, not the variational one, and the engine's Adam with a fixed epoch count.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..training import EngineModel

__all__ = ["ScGNN", "ScGNNConfig", "knn_edges", "symmetric_graph", "normalized_adjacency", "edge_index_of"]

log = logging.getLogger("livaebench")


# ---------------------------------------------------------------------------- graph helpers
def knn_edges(embedding: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each cell's k nearest other cells (Euclidean, exact)."""
    from sklearn.neighbors import NearestNeighbors

    emb = np.ascontiguousarray(embedding, dtype=np.float64)
    n = emb.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k = {k} nearest neighbours needs 1 <= k < number of cells ({n})")
    ind = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb, return_distance=False)
    keep = ind != np.arange(n)[:, None]
    keep[~(~keep).any(axis=1), -1] = False  # a cell with duplicates may not list itself: drop the farthest
    return ind[keep].reshape(n, k)


def symmetric_graph(neighbours: np.ndarray) -> sp.csr_matrix:
    """Binary symmetric adjacency (no self loops) with an edge where either cell lists the other."""
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((np.ones(n * k, dtype=np.float32), (rows, neighbours.ravel())), shape=(n, n))
    a = a.maximum(a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    a.sort_indices()
    return a


def edge_index_of(adj: sp.spmatrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, E) long edge index (row = source, col = target) and (E,) float weights of a sparse adjacency."""
    coo = sp.csr_matrix(adj).tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return index, torch.from_numpy(coo.data.astype(np.float32))


def normalized_adjacency(edge_index: torch.Tensor, edge_weight: torch.Tensor,
                         n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Â = D^-1/2 (A + I) D^-1/2 of a symmetric weighted graph without self loops, as (edge_index, weight).

    D is the degree of A + I (row sums). The self loops are appended after the edges.
    """
    loops = torch.arange(n, device=edge_index.device)
    index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    weight = torch.cat([edge_weight, torch.ones(n, dtype=edge_weight.dtype, device=edge_weight.device)])
    deg = torch.zeros(n, dtype=weight.dtype, device=weight.device).index_add_(0, index[0], weight)
    inv_sqrt = deg.rsqrt()
    return index, inv_sqrt[index[0]] * weight * inv_sqrt[index[1]]


# ---------------------------------------------------------------------------- model
@dataclass
class ScGNNConfig:
    n_input: int
    latent_dim: int = 10
    hidden: int = 512          # feature AE hidden layer
    feature_dim: int = 128     # feature AE embedding (the node features of the graph AE)
    graph_hidden: int = 32     # GCN hidden layer
    k: int = 10
    n_iterations: int = 3
    graph_mix: float = 0.5     # λ: weight of the first graph in every later one
    graph_epochs: int = 200
    graph_lr: float = 0.01


class GCNEncoder(nn.Module):
    """Two GCN layers (torch-geometric's GCNConv on a pre-normalized Â): Â·ReLU(Â X W₁)·W₂."""

    def __init__(self, n_input: int, hidden: int, latent_dim: int):
        super().__init__()
        from torch_geometric.nn import GCNConv

        # normalize=False: Â is computed once per graph by normalized_adjacency (self loops included).
        self.conv1 = GCNConv(n_input, hidden, normalize=False, add_self_loops=False)
        self.conv2 = GCNConv(hidden, latent_dim, normalize=False, add_self_loops=False)

    def forward(self, x, edge_index, edge_weight):
        return self.conv2(F.relu(self.conv1(x, edge_index, edge_weight)), edge_index, edge_weight)


def _empty_graph() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)


class ScGNN(EngineModel):
    """Feature autoencoder, then T rounds of (kNN graph, graph autoencoder)."""

    def __init__(self, config: ScGNNConfig, n_cells: int):
        super().__init__()
        self.config = c = config
        self.n_cells = n_cells
        self.feature_encoder = nn.Sequential(nn.Linear(c.n_input, c.hidden), nn.ReLU(),
                                             nn.Linear(c.hidden, c.feature_dim))
        self.feature_decoder = nn.Sequential(nn.Linear(c.feature_dim, c.hidden), nn.ReLU(),
                                             nn.Linear(c.hidden, c.n_input))
        self.graph_encoder = GCNEncoder(c.feature_dim, c.graph_hidden, c.latent_dim)
        self.phase = "feature_ae"
        # Graph state (rebuilt by start_phase): node features, first graph A_1, current graph A_t and Â_t.
        self.register_buffer("node_features", torch.zeros(0, c.feature_dim))
        for name in ("first", "graph", "norm"):
            index, weight = _empty_graph()
            self.register_buffer(f"{name}_index", index)
            self.register_buffer(f"{name}_weight", weight)

    # --- phases
    def phases(self):
        c = self.config
        graph = {"epochs": c.graph_epochs, "lr": c.graph_lr, "batch_size": None, "val_frac": 0.0}
        return [{"name": "feature_ae"}] + [{"name": f"graph_ae_{t}", **graph} for t in range(1, c.n_iterations + 1)]

    def start_phase(self, name, data):
        self.phase = name
        graph_phase = name.startswith("graph_ae_")
        for module, train_it in ((self.feature_encoder, not graph_phase), (self.feature_decoder, not graph_phase),
                                 (self.graph_encoder, graph_phase)):
            for p in module.parameters():
                p.requires_grad_(train_it)
        if not graph_phase:
            return
        device = next(self.parameters()).device
        c = self.config
        if name == "graph_ae_1":
            h = self._feature_embedding(data["x"].to(device))
            adj = symmetric_graph(knn_edges(h.cpu().numpy(), c.k))
            std = h.std(dim=0, unbiased=False).clamp_min(1e-6)
            self.node_features = ((h - h.mean(dim=0)) / std).contiguous()
            self.first_index, self.first_weight = (t.to(device) for t in edge_index_of(adj))
        else:
            first = sp.csr_matrix((self.first_weight.cpu().numpy(), self.first_index.cpu().numpy()),
                                  shape=(self.n_cells, self.n_cells))
            z = self.graph_embedding().cpu().numpy()
            new = symmetric_graph(knn_edges(z, c.k))
            adj = (c.graph_mix * first + (1.0 - c.graph_mix) * new).tocsr()
            adj.eliminate_zeros()
            adj.sort_indices()
            previous = sp.csr_matrix((self.graph_weight.cpu().numpy(), self.graph_index.cpu().numpy()),
                                     shape=(self.n_cells, self.n_cells))
            kept = previous.multiply(adj).nnz / max(previous.nnz, 1)
            log.info("scGNN %s: %d edges, %.1f%% of the previous graph's edges kept", name, adj.nnz, 100 * kept)
        self.graph_index, self.graph_weight = (t.to(device) for t in edge_index_of(adj))
        self.norm_index, self.norm_weight = normalized_adjacency(self.graph_index, self.graph_weight, self.n_cells)

    # --- pieces
    @torch.no_grad()
    def _feature_embedding(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        was_training = self.training
        self.eval()
        h = torch.cat([self.feature_encoder(xb) for xb in torch.split(x, batch_size)])
        self.train(was_training)
        return h

    def _graph_forward(self) -> torch.Tensor:
        return self.graph_encoder(self.node_features, self.norm_index, self.norm_weight)

    @torch.no_grad()
    def graph_embedding(self) -> torch.Tensor:
        return self._graph_forward()

    def loss_terms(self, batch):
        if self.phase == "feature_ae":
            x = batch["x"]
            recon = self.feature_decoder(self.feature_encoder(x))
            return {"mse": F.mse_loss(recon, x)}
        z = self._graph_forward()
        in_batch = torch.zeros(self.n_cells, dtype=torch.bool, device=z.device)
        in_batch[batch["idx"]] = True
        src, dst = self.graph_index
        keep = in_batch[src]
        src, dst, target = src[keep], dst[keep], self.graph_weight[keep]
        pos = (z[src] * z[dst]).sum(dim=1)
        # as many random cell pairs as edges, from the same source cells (the non-edges the decoder must reject)
        rnd = torch.randint(0, self.n_cells, dst.shape, device=z.device)
        neg = (z[src] * z[rnd]).sum(dim=1)
        # every edge is a 1 to reconstruct; its weight (1, or λ / 1 − λ for an edge of only one of the
        # mixed graphs) weighs its term, as it weighs its message in the GCN
        edge = (target * F.softplus(-pos)).sum() / target.sum().clamp_min(1e-12)
        return {"edge_bce": edge, "nonedge_bce": F.softplus(neg).mean()}

    def latents(self, data):
        return {"X_latent": self.graph_embedding().cpu().numpy().astype(np.float32)}

    def describe(self) -> dict:
        return {"class": type(self).__name__, **asdict(self.config), "n_cells": self.n_cells}
