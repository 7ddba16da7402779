"""scGNN: a feature autoencoder, a pruned kNN cell graph from its embedding and a graph autoencoder, iterated.

Reimplemented from the paper (Wang et al. 2021, Nat. Commun. 12:1882) and the authors' code
(github.com/juexinwang/scGNN: ``scGNN.py``, ``main_benchmark.py``, ``util_function.py``), see
``docs/methods.md §7``. Training runs in phases on the benchmark engine:

1. ``feature_ae`` — an autoencoder (G → 512 → 128 → 512 → G, ReLU on every layer, the embedding and the
   output included) reconstructs the log-normalized expression (``layers['lognorm']``, mean squared
   error); the authors train it for 500 full-batch epochs (Adam, lr 1e-3).
2. ``graph_ae_0`` — the cell graph A₀: each cell's k = 10 nearest cells in the feature embedding, pruned to
   those no farther than the mean + 1 sd of its k distances, symmetrized. A graph autoencoder — a
   two-layer GCN encoder Z = Â·ReLU(Â X W₁)·W₂ with Â = D^-1/2 (A + I) D^-1/2 and an inner-product
   decoder σ(z_i·z_j) — learns to reconstruct the graph's edges from the embedding binarized at each
   dimension's mean (the authors' node features), 200 full-batch epochs at lr 0.01.
3. Iterations t = 1 … ``n_iterations`` (10): ``feature_ae_t`` retrains the feature autoencoder for
   ``em_epochs`` (200) epochs, with the loss MSE + γ · R_A (γ = ``graph_reg``), where the graph term is the
   authors' graph-weighted reconstruction error over the current graph A_{t−1}:

       R_A = (1/n) Σ_i Σ_j A_ij e_j = (1/n) Σ_j d_j e_j,   e_j = mean_g (x̂_jg − x_jg)²,  d_j = Σ_i A_ij

   (on a minibatch: the mean of d_j e_j over its cells, with full-graph degrees). ``graph_ae_t`` rebuilds
   the pruned kNN graph from the retrained embedding, mixes it with the first, A_t = λ A₀ + (1 − λ) kNN_t
   (λ = ``graph_mix``, the paper's update), and trains a fresh graph autoencoder on it.
4. **Stop rule** (the authors' graph criterion): with Ã_t = kNN_t D⁻¹ (column-normalized) and L₀ the
   normalized Laplacian of A₀, the iterations end when

       δ_t = mean_ij |A'_t − A'_{t−1}| < ``converge_ratio`` · mean_ij |L₀|,
       A'_t = λ L₀ + (1 − λ) Ã_t,   A'_0 = L₀

   (0.01), or after ``n_iterations``. The engine re-reads :meth:`ScGNN.phases` after every phase, so the
   list ends at the converged iteration; :meth:`ScGNN.iteration_record` is the iterations' convergence
   record (one entry per iteration, δ_t as its loss).

The embedding (``X_latent``) is the last graph autoencoder's Z (``latent_dim`` columns; the authors'
``--useGAEembedding`` reproduction setting). The graph tensors live in model buffers (they travel with
the model to its device and into every checkpoint, so a resumed run rebuilds and decides the same); the
engine's data holds the expression and a per-cell index ``idx``. Graph phases train full-batch (one step
per epoch over every cell's edges); the loss only looks at the edges leaving the cells of the minibatch.

Where this differs from the authors' code, and why (declared in the registry, ``methods/graph_contrastive``):

* **The graph term is off by default** (γ = 0): in the authors' iterations the feature autoencoder is
  retrained without a regularizer (``EMreguTag`` off); their graph term weighs the final imputation
  autoencoder, which gives imputed expression, not the embedding. ``graph_reg`` > 0 applies it in the
  iterations.
* **Retraining input**: the original expression. The paper feeds the cluster autoencoders' reconstruction
  back in; the authors' code, as it runs, retrains on the original input too (its training function keeps
  the first data loader).
* **No LTMG regulatory signal**, **no cluster autoencoders**, **no imputation autoencoder** and no L1
  penalty on the weights: they serve clustering and imputation outputs, not the cell embedding.
* **Stop rule on the graph** (an option of the authors' code) instead of their default, the agreement
  (ARI > 0.99) of two successive Louvain/k-means clusterings, which needs a clustering step the
  benchmark leaves to its own pipeline.
* **Mixed graph for the GAE.** The paper's A_t = λ A₀ + (1 − λ) kNN_t is the graph the GAE trains on here;
  the authors' code computes the mixture only for the stop test and trains on kNN_t alone.
* **Edge reconstruction by negative sampling.** The dense σ(ZZᵀ) against the full n × n adjacency is
  replaced by binary cross-entropy on the graph's edges (target 1, each weighted by its edge weight)
  and on as many random cell pairs (target 0): O(edges) instead of O(n²) memory, the usual scalable
  form of the same loss. **Plain GAE**, not the variational one (the embedding is the mean in both).
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
def knn_edges(embedding: np.ndarray, k: int, return_distance: bool = False):
    """(n, k) indices of each cell's k nearest other cells (Euclidean, exact); with their distances on request."""
    from sklearn.neighbors import NearestNeighbors

    emb = np.ascontiguousarray(embedding, dtype=np.float64)
    n = emb.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k = {k} nearest neighbours needs 1 <= k < number of cells ({n})")
    dist, ind = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb)
    keep = ind != np.arange(n)[:, None]
    keep[~(~keep).any(axis=1), -1] = False  # a cell with duplicates may not list itself: drop the farthest
    ind = ind[keep].reshape(n, k)
    return (ind, dist[keep].reshape(n, k)) if return_distance else ind


def symmetric_graph(neighbours: np.ndarray, keep: np.ndarray | None = None) -> sp.csr_matrix:
    """Binary symmetric adjacency (no self loops) with an edge where either cell lists the other.

    ``keep`` ((n, k) boolean, optional): which of the listed neighbours count (the others are pruned).
    """
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    values = np.ones(n * k, dtype=np.float32) if keep is None else np.asarray(keep, dtype=np.float32).ravel()
    a = sp.csr_matrix((values, (rows, neighbours.ravel())), shape=(n, n))
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


def pruned_knn_graph(embedding: np.ndarray, k: int) -> sp.csr_matrix:
    """scGNN's cell graph: each cell's k nearest cells, keeping those no farther than the mean + 1 sd of its
    k distances (the authors' ``KNNgraphStatsSingleThread``), symmetrized (an edge where either cell keeps it)."""
    neighbours, dist = knn_edges(embedding, k, return_distance=True)
    return symmetric_graph(neighbours, dist <= dist.mean(axis=1, keepdims=True) + dist.std(axis=1, keepdims=True))


def column_normalized(adj: sp.spmatrix) -> sp.csr_matrix:
    """A D⁻¹: each column divided by its sum (the authors' A / Σ_i A_ij); an empty column stays 0."""
    colsum = np.asarray(adj.sum(axis=0)).ravel()
    return sp.csr_matrix(adj @ sp.diags(np.divide(1.0, colsum, out=np.zeros_like(colsum, dtype=np.float64),
                                                   where=colsum > 0)))


def graph_change(new_knn: sp.spmatrix, reference: sp.spmatrix, mix: float) -> float:
    """scGNN's graph-convergence quantity mean_ij |A_t − A_{t−1}|, with A_t = λ L₀ + (1 − λ) Ã_t.

    λ L₀ cancels from the difference, leaving (1 − λ) mean |Ã_t − B|: ``reference`` B is Ã_{t−1} (the
    column-normalized graph of the previous iteration) or, in the first iteration, L₀ (the authors' A₀).
    """
    n = new_knn.shape[0]
    return (1.0 - mix) * float(abs(column_normalized(new_knn) - reference).sum()) / n**2


def normalized_laplacian(adj: sp.spmatrix) -> sp.csr_matrix:
    """L = I − D^-1/2 A D^-1/2 of a symmetric graph (an isolated node's row stays 0, as in networkx)."""
    from scipy.sparse.csgraph import laplacian

    return sp.csr_matrix(laplacian(sp.csr_matrix(adj, dtype=np.float64), normed=True))


# ---------------------------------------------------------------------------- model
@dataclass
class ScGNNConfig:
    n_input: int
    latent_dim: int = 10
    hidden: int = 512           # feature AE hidden layer
    feature_dim: int = 128      # feature AE embedding (binarized: the node features of the graph AE)
    graph_hidden: int = 32      # GCN hidden layer
    k: int = 10
    n_iterations: int = 10      # at most this many iterations after the first graph (the authors' EM-iteration)
    em_epochs: int = 200        # feature AE epochs in each iteration
    graph_mix: float = 0.5      # λ: weight of the first graph in every later one
    graph_epochs: int = 200
    graph_lr: float = 0.01
    graph_reg: float = 0.0      # weight of the graph-weighted reconstruction term while retraining the feature AE
    converge_ratio: float = 0.01  # stop when the graph change is below this share of mean |L₀|


class GCNEncoder(nn.Module):
    """Two GCN layers (torch-geometric's GCNConv on a pre-normalized Â): Â·ReLU(Â X W₁)·W₂."""

    def __init__(self, n_input: int, hidden: int, latent_dim: int):
        super().__init__()
        from torch_geometric.nn import GCNConv

        # normalize=False: Â is computed once per graph by normalized_adjacency (self loops included).
        self.conv1 = GCNConv(n_input, hidden, normalize=False, add_self_loops=False)
        self.conv2 = GCNConv(hidden, latent_dim, normalize=False, add_self_loops=False)

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def forward(self, x, edge_index, edge_weight):
        return self.conv2(F.relu(self.conv1(x, edge_index, edge_weight)), edge_index, edge_weight)


def _empty_graph() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)


def _sparse(index: torch.Tensor, weight: torch.Tensor, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((weight.cpu().numpy(), index.cpu().numpy()), shape=(n, n))


class ScGNN(EngineModel):
    """Feature AE and graph AE, iterated: retrain, rebuild the graph, train a fresh GAE, until converged."""

    def __init__(self, config: ScGNNConfig, n_cells: int):
        super().__init__()
        self.config = c = config
        self.n_cells = n_cells
        # the authors' AE: ReLU on every layer, the embedding and the reconstruction included
        self.feature_encoder = nn.Sequential(nn.Linear(c.n_input, c.hidden), nn.ReLU(),
                                             nn.Linear(c.hidden, c.feature_dim), nn.ReLU())
        self.feature_decoder = nn.Sequential(nn.Linear(c.feature_dim, c.hidden), nn.ReLU(),
                                             nn.Linear(c.hidden, c.n_input), nn.ReLU())
        self.graph_encoder = GCNEncoder(c.feature_dim, c.graph_hidden, c.latent_dim)
        self.phase = "feature_ae"
        # Graph state (rebuilt by start_phase, saved in every checkpoint): node features, the first graph A₀,
        # the latest kNN graph, the current (mixed) graph A_t and its Â_t, each cell's degree in A_t.
        self.register_buffer("node_features", torch.zeros(0, c.feature_dim))
        for name in ("first", "knn", "graph", "norm"):
            index, weight = _empty_graph()
            self.register_buffer(f"{name}_index", index)
            self.register_buffer(f"{name}_weight", weight)
        self.register_buffer("degree", torch.zeros(n_cells))
        # graph change of each iteration (NaN: not run) and the stop threshold converge_ratio · mean |L₀|
        self.register_buffer("graph_changes", torch.full((c.n_iterations + 1,), float("nan"), dtype=torch.float64))
        self.register_buffer("graph_threshold", torch.tensor(float("nan"), dtype=torch.float64))

    # --- iterations
    def converged_at(self) -> int | None:
        """The first iteration whose graph change fell below the threshold (None: not, or not yet)."""
        below = (self.graph_changes < self.graph_threshold).nonzero().ravel().tolist()
        return int(below[0]) if below else None

    def iterations_run(self) -> int:
        return int(torch.isfinite(self.graph_changes).sum())

    def iteration_record(self) -> dict:
        """The convergence record of the iterations (``training.convergence_record``; one 'epoch' per
        iteration, its 'loss' the graph change): the model's rule, or the iteration limit."""
        from ..training import convergence_record

        changes = self.graph_changes.tolist()[1:self.iterations_run() + 1]
        done, threshold = self.converged_at(), float(self.graph_threshold)
        if done is not None:
            reason, detail = "model_rule", (f"graph change {changes[done - 1]:.3g} < {threshold:.3g} "
                                            f"({self.config.converge_ratio:g} of mean |L0|) at iteration {done}")
        else:
            reason, detail = "max_epochs", f"{self.config.n_iterations} iterations without the graph converging"
        return convergence_record([{"loss": v} for v in changes], self.config.n_iterations, reason, detail)

    # --- phases
    def phases(self):
        # Re-read by the engine after every phase: the list ends at the iteration that converged.
        c = self.config
        graph = {"epochs": c.graph_epochs, "lr": c.graph_lr, "batch_size": None, "val_frac": 0.0}
        out = [{"name": "feature_ae"}, {"name": "graph_ae_0", **graph}]
        for t in range(1, (self.converged_at() or c.n_iterations) + 1):
            out += [{"name": f"feature_ae_{t}", "epochs": c.em_epochs}, {"name": f"graph_ae_{t}", **graph}]
        return out

    def start_phase(self, name, data):
        self.phase = name
        graph_phase = name.startswith("graph_ae_")
        for module, train_it in ((self.feature_encoder, not graph_phase), (self.feature_decoder, not graph_phase),
                                 (self.graph_encoder, graph_phase)):
            for p in module.parameters():
                p.requires_grad_(train_it)
        if name.startswith("feature_ae_"):
            # the graph term weighs each cell's reconstruction error by its degree in the current graph
            self.degree = torch.zeros(self.n_cells, device=self.graph_weight.device).index_add_(
                0, self.graph_index[0], self.graph_weight)
        if graph_phase:
            self._rebuild_graph(int(name.rsplit("_", 1)[1]), data)

    @torch.no_grad()
    def _rebuild_graph(self, t: int, data) -> None:
        """The iteration-t graph from the current feature embedding; the graph change; a fresh graph AE."""
        c, n = self.config, self.n_cells
        device = next(self.parameters()).device
        h = self._feature_embedding(data["x"].to(device))
        knn = pruned_knn_graph(h.cpu().numpy(), c.k)
        if t == 0:
            adj = knn
            laplacian0 = normalized_laplacian(knn)
            self.graph_threshold = torch.tensor(c.converge_ratio * float(abs(laplacian0).sum()) / n**2,
                                                dtype=torch.float64, device=device)
            self.first_index, self.first_weight = (v.to(device) for v in edge_index_of(knn))
        else:
            first = _sparse(self.first_index, self.first_weight, n)
            reference = normalized_laplacian(first) if t == 1 else column_normalized(
                _sparse(self.knn_index, self.knn_weight, n))
            change = graph_change(knn, reference, c.graph_mix)
            self.graph_changes[t] = change
            adj = (c.graph_mix * first + (1.0 - c.graph_mix) * knn).tocsr()
            adj.eliminate_zeros()
            adj.sort_indices()
            log.info("scGNN iteration %d: %d edges, graph change %.4g (stops below %.4g)", t, adj.nnz, change,
                     float(self.graph_threshold))
        self.knn_index, self.knn_weight = (v.to(device) for v in edge_index_of(knn))
        self.graph_index, self.graph_weight = (v.to(device) for v in edge_index_of(adj))
        self.norm_index, self.norm_weight = normalized_adjacency(self.graph_index, self.graph_weight, n)
        # the authors' node features: the embedding binarized at each dimension's mean; a fresh GAE per graph
        self.node_features = (h > h.mean(dim=0)).float().contiguous()
        self.graph_encoder.reset_parameters()

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

    @property
    def loss_weights(self):
        return {"graph_mse": self.config.graph_reg}

    def loss_terms(self, batch):
        if self.phase.startswith("feature_ae"):
            x = batch["x"]
            err = (self.feature_decoder(self.feature_encoder(x)) - x).pow(2).mean(dim=1)  # per cell
            if self.phase == "feature_ae":
                return {"mse": err.mean()}
            # Σ_ij A_ij e_j / n: each cell's error weighted by its full-graph degree (the authors' graph term)
            return {"mse": err.mean(), "graph_mse": (self.degree[batch["idx"]] * err).mean()}
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
