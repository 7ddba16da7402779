"""DiffVAE and Graph-DiffVAE (Bica et al., 2020), on the project's training engine.

Specification: docs/methods.md §6.2-6.3. Written from the paper's description; no code of the authors'
was copied.

**DiffVAE** is an MMD-VAE. Input: the log-normalized expression (``layers['lognorm']``), min-max scaled
per gene to [0, 1] (the scaling is kept in the model, so analyses map expression in and decoded
profiles out). Encoder G → 512 → 256 (Linear, ReLU, BatchNorm), linear heads for μ and log σ²
(latent 50); decoder 50 → 256 → 512 → G (Linear, ReLU; sigmoid output). Loss per cell:

    Σ_g BCE(x_g, x̂_g)  +  MMD(q(z) ‖ N(0, I)),    k(a, b) = exp(−‖a − b‖² / d²)

where the MMD compares the minibatch's reparameterized codes with as many prior draws (the biased
V-statistic, diagonal included, as InfoVAE computes it) and d is the latent dimension. No KL term.
The embedding is μ. Choices: the decoder has no BatchNorm (the paper puts it in the encoder), so the
decoder's weight product W₁W₂W₃ is the linear part of the map from latent to gene; the heads are
linear (the paper's text writes a ReLU on μ and log σ², which would confine μ to an orthant).

**Graph-DiffVAE** is a graph VAE on a cell graph in which every cell is linked to its ``n_neighbors``
most Pearson-correlated other cells (symmetrized, self loops added), with the scaled expression as node
features. Encoder: GCN (512, ReLU), then linear GCN layers to μ and log σ² (50); decoder: a GCN on
[X ‖ z] (512, ReLU) and a second GCN to 50 dimensions (ReLU), averaged with z: Z* = (Z′ + z) / 2;
Â = σ(Z* Z*ᵀ). Loss: the class-balanced reconstruction of A + KL. With the usual weights (positive
weight (n² − E)/E, norm n²/(2(n² − E))) the reconstruction term is exactly

    ½ · [ mean over linked pairs of −log σ(s_ij)  +  mean over unlinked pairs of −log(1 − σ(s_ij)) ]

(s = Z* Z*ᵀ). The first mean is computed over every link; the second over ``neg_samples`` × n
uniformly drawn cell pairs per step, an unbiased estimate that never forms the n × n matrix (a drawn
pair is a link with probability E/n², about 1/n). The KL is the per-cell KL divided by n, as the
graph autoencoder of Kipf & Welling scales it. Full batch (one step per epoch), Adam 1e-4, 200 epochs.
The GCN layers are torch-geometric's ``GCNConv`` on the normalized adjacency D^-1/2 (A + I) D^-1/2,
computed once (``scgnn.normalized_adjacency``). The embedding (``X_latent``) is the encoder's μ;
predicted links are each cell's ``k`` highest-scoring partners under Â, computed block by block.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..training import EngineModel

__all__ = ["DiffVAE", "DiffVAEConfig", "GraphDiffVAE", "GraphDiffVAEConfig", "minmax_scale", "scaled_input",
           "mmd", "decoder_weight_product", "correlation_neighbours", "correlation_graph", "top_links",
           "load_model"]


# ---------------------------------------------------------------------------- data
def minmax_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x scaled per gene to [0, 1], with the per-gene minimum and range (a constant gene gets range 1)."""
    x = np.asarray(x, dtype=np.float32)
    lo = x.min(axis=0)
    rng = x.max(axis=0) - lo
    rng = np.where(rng > 0, rng, 1.0).astype(np.float32)
    return ((x - lo) / rng).astype(np.float32), lo.astype(np.float32), rng


def scaled_input(adata, dataset: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The min-max scaled ``layers['lognorm']`` of a preprocessed AnnData (a one-line error without it)."""
    what = f"dataset '{dataset}'" if dataset else "AnnData"
    if "lognorm" not in adata.layers:
        raise InputError(what, "has no layers['lognorm'] (log-normalized expression)",
                         "use the output of the preprocessing step (results/data/{dataset}/preprocessed.h5ad)")
    m = adata.layers["lognorm"]
    x = np.asarray(m.toarray() if sp.issparse(m) else m, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(what, "layers['lognorm'] has NaN/inf values", "re-run preprocessing")
    return minmax_scale(x)


# ---------------------------------------------------------------------------- DiffVAE
def mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MMD² between samples a and b with the kernel exp(−‖u − v‖² / d²), d = number of columns.

    The biased V-statistic (every pair, the diagonal included): mean k(a, a) + mean k(b, b) − 2 mean k(a, b).
    """
    d = a.shape[1]

    def kernel(u, v):
        return torch.exp(-torch.cdist(u, v).square() / float(d * d))

    return kernel(a, a).mean() + kernel(b, b).mean() - 2.0 * kernel(a, b).mean()


@dataclass
class DiffVAEConfig:
    n_input: int
    latent_dim: int = 50
    hidden: tuple[int, ...] = (512, 256)   # encoder; the decoder mirrors it
    mmd_weight: float = 1.0

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)


class DiffVAE(EngineModel):
    """MMD-VAE on min-max scaled expression; Bernoulli (sigmoid) decoder."""

    def __init__(self, config: DiffVAEConfig, x_min: np.ndarray | None = None, x_range: np.ndarray | None = None):
        super().__init__()
        self.config = c = config
        layers, dims = [], (c.n_input, *c.hidden)
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.BatchNorm1d(b)]
        self.encoder = nn.Sequential(*layers)
        self.mu_head = nn.Linear(dims[-1], c.latent_dim)
        self.logvar_head = nn.Linear(dims[-1], c.latent_dim)
        dec, dims = [], (c.latent_dim, *reversed(c.hidden))
        for a, b in zip(dims[:-1], dims[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec, nn.Linear(dims[-1], c.n_input))
        # the per-gene scaling of the input: saved with the weights, so analyses map expression in and out
        self.register_buffer("x_min", torch.as_tensor(np.zeros(c.n_input) if x_min is None else x_min,
                                                      dtype=torch.float32))
        self.register_buffer("x_range", torch.as_tensor(np.ones(c.n_input) if x_range is None else x_range,
                                                        dtype=torch.float32))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss_terms(self, batch):
        x = batch["x"]
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        bce = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="none").sum(1).mean()
        return {"bce": bce, "mmd": mmd(z, torch.randn_like(z))}

    @property
    def loss_weights(self):
        return {"bce": 1.0, "mmd": self.config.mmd_weight}

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        """μ of every row of x (eval mode: BatchNorm uses its running statistics)."""
        was = self.training
        self.eval()
        device = self.x_min.device
        out = torch.cat([self.encode(chunk.to(device))[0] for chunk in torch.split(x, batch_size)])
        self.train(was)
        return out.cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def decode(self, z: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Decoded profiles in [0, 1] (the scaled input space) for latent codes z (cells x d)."""
        was = self.training
        self.eval()
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.x_min.device)
        out = torch.cat([torch.sigmoid(self.decode_logits(chunk)) for chunk in torch.split(z, batch_size)])
        self.train(was)
        return out.cpu().numpy()

    def latents(self, data):
        return {"X_latent": self.embed(data["x"])}

    def describe(self):
        return {"class": type(self).__name__, **asdict(self.config)}


def decoder_weight_product(model: DiffVAE) -> np.ndarray:
    """ω = W₁ W₂ W₃ (latent_dim x genes): the product of the decoder's weight matrices, each oriented
    input x output (torch stores output x input), as the paper defines the latent-to-gene weights."""
    weights = [m.weight.detach().cpu().double().numpy().T for m in model.decoder if isinstance(m, nn.Linear)]
    out = weights[0]
    for w in weights[1:]:
        out = out @ w
    return out


# ---------------------------------------------------------------------------- Graph-DiffVAE
def correlation_neighbours(x: np.ndarray, k: int = 1, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's k most Pearson-correlated other cells (n x k indices, n x k correlations).

    Rows are standardized once; correlations are computed block by block (block x n at a time), so the
    n x n matrix is never held. A constant cell correlates 0 with everything.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k = {k} correlated neighbours needs 1 <= k < number of cells ({n})")
    xc = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(xc, axis=1, keepdims=True)
    xs = xc / np.where(norm > 0, norm, 1.0)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, block):
        r = xs[start:start + block] @ xs.T
        rows = np.arange(r.shape[0])
        r[rows, start + rows] = -np.inf  # not its own neighbour
        part = np.argpartition(-r, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(r, part, axis=1), axis=1, kind="stable")
        idx[start:start + block] = np.take_along_axis(part, order, axis=1)
        val[start:start + block] = np.take_along_axis(r, idx[start:start + block], axis=1)
    return idx, val


def correlation_graph(x: np.ndarray, k: int = 1) -> sp.csr_matrix:
    """Binary symmetric adjacency (no self loops): each cell linked to its k most correlated cells."""
    from .scgnn import symmetric_graph

    return symmetric_graph(correlation_neighbours(x, k)[0])


@dataclass
class GraphDiffVAEConfig:
    n_input: int
    n_cells: int
    latent_dim: int = 50
    hidden: int = 512
    n_neighbors: int = 1
    neg_samples: int = 20   # uniformly drawn cell pairs per cell and step (the unlinked half of the loss)


class GraphDiffVAE(EngineModel):
    """Graph VAE: GCN encoder on (A, X), GCN decoder on (A, [X ‖ z]) averaged with z, Â = σ(Z* Z*ᵀ)."""

    def __init__(self, config: GraphDiffVAEConfig, features: torch.Tensor | None = None,
                 adjacency: sp.spmatrix | None = None):
        super().__init__()
        from torch_geometric.nn import GCNConv

        from .scgnn import edge_index_of, normalized_adjacency

        self.config = c = config
        # normalize=False: Â = D^-1/2 (A + I) D^-1/2 is computed once (self loops included).
        self.enc1 = GCNConv(c.n_input, c.hidden, normalize=False, add_self_loops=False)
        self.enc_mu = GCNConv(c.hidden, c.latent_dim, normalize=False, add_self_loops=False)
        self.enc_logvar = GCNConv(c.hidden, c.latent_dim, normalize=False, add_self_loops=False)
        self.dec1 = GCNConv(c.n_input + c.latent_dim, c.hidden, normalize=False, add_self_loops=False)
        self.dec2 = GCNConv(c.hidden, c.latent_dim, normalize=False, add_self_loops=False)
        n = c.n_cells
        if features is None:  # an empty shell, filled by load_state_dict
            features, adjacency = torch.zeros(n, c.n_input), sp.csr_matrix((n, n), dtype=np.float32)
        index, weight = edge_index_of(adjacency)
        norm_index, norm_weight = normalized_adjacency(index, weight, n)
        loops = torch.arange(n)
        self.register_buffer("features", features.float().contiguous())
        self.register_buffer("edge_index", index)  # the input graph A (symmetric, no self loops)
        self.register_buffer("norm_index", norm_index)
        self.register_buffer("norm_weight", norm_weight)
        # the links to reconstruct: A plus self loops (each cell is linked to itself)
        self.register_buffer("pos_index", torch.cat([index, torch.stack([loops, loops])], dim=1))

    def encode(self) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.enc1(self.features, self.norm_index, self.norm_weight))
        return self.enc_mu(h, self.norm_index, self.norm_weight), self.enc_logvar(h, self.norm_index, self.norm_weight)

    def decode_embedding(self, z: torch.Tensor) -> torch.Tensor:
        """Z* = (Z′ + z) / 2 with Z′ = GCN(A, ReLU(GCN(A, [X ‖ z])))."""
        h = F.relu(self.dec1(torch.cat([self.features, z], dim=1), self.norm_index, self.norm_weight))
        z_dec = F.relu(self.dec2(h, self.norm_index, self.norm_weight))
        return 0.5 * (z_dec + z)

    def loss_terms(self, batch):
        # full batch: the minibatch is every cell (in the engine's order), the graph is the model's
        mu, logvar = self.encode()
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        zs = self.decode_embedding(z)
        src, dst = self.pos_index
        pos = (zs[src] * zs[dst]).sum(1)
        n = zs.shape[0]
        m = self.config.neg_samples * n
        a = torch.randint(0, n, (m,), device=zs.device)
        b = torch.randint(0, n, (m,), device=zs.device)
        neg = (zs[a] * zs[b]).sum(1)
        recon = 0.5 * (F.softplus(-pos).mean() + F.softplus(neg).mean())
        kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1).mean()
        return {"recon": recon, "kl": kl}

    @property
    def loss_weights(self):
        return {"recon": 1.0, "kl": 1.0 / self.config.n_cells}

    @torch.no_grad()
    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """The node embedding μ and the decoder's Z* at z = μ (eval mode: no sampling)."""
        mu, _ = self.encode()
        return mu.cpu().numpy().astype(np.float32), self.decode_embedding(mu).cpu().numpy().astype(np.float32)

    def latents(self, data):
        return {"X_latent": self.embeddings()[0]}

    def input_adjacency(self) -> sp.csr_matrix:
        n = self.config.n_cells
        index = self.edge_index.cpu().numpy()
        a = sp.csr_matrix((np.ones(index.shape[1], dtype=np.float32), (index[0], index[1])), shape=(n, n))
        a.sort_indices()
        return a

    def describe(self):
        return {"class": type(self).__name__, **asdict(self.config)}


def top_links(z: np.ndarray, k: int, block: int = 1024) -> sp.csr_matrix:
    """Each cell's k most probable partners under Â = σ(z zᵀ) (self excluded), as a sparse n x n matrix
    of probabilities; computed block by block, so the dense n x n Â is never formed."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    k = int(min(k, n - 1))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        s = z[start:start + block] @ z.T
        r = np.arange(s.shape[0])
        s[r, start + r] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        rows.append(np.repeat(start + r, k))
        cols.append(part.ravel())
        vals.append(1.0 / (1.0 + np.exp(-np.take_along_axis(s, part, axis=1).ravel())))
    out = sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n, n))
    out.sort_indices()
    return out


def load_model(path, adata=None, dataset: str = ""):
    """A trained DiffVAE or Graph-DiffVAE from its ``model.pt`` (weights_only), in eval mode.

    ``adata`` (the preprocessed data the model was trained on) is checked against the saved gene names.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    config = dict(ckpt["config"])
    cls = config.pop("class")
    if adata is not None and list(map(str, adata.var_names)) != list(ckpt["var_names"]):
        raise InputError(f"dataset '{dataset}', model {path}", "was trained on other genes than the preprocessed data",
                         "retrain the model (delete it and rerun the workflow)")
    if cls == "DiffVAE":
        model = DiffVAE(DiffVAEConfig(**config))
    elif cls == "GraphDiffVAE":
        model = GraphDiffVAE(GraphDiffVAEConfig(**config))
        state = ckpt["state_dict"]
        # buffers whose size depends on the graph: resize before loading
        for name in ("edge_index", "norm_index", "norm_weight", "pos_index"):
            setattr(model, name, torch.empty_like(state[name]))
    else:
        raise InputError(f"model {path}", f"is a {cls}, not a DiffVAE or Graph-DiffVAE", "pass the right model file")
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
