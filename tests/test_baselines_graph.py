"""CLEAR, scGNN and scGCC (docs/methods.md §7): short fits on real pancreas cells, plus their building blocks
(normalized adjacency, GCN layer, InfoNCE, momentum update, queue, augmentations) against hand computations."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from baseline_checks import assert_carries_labels

from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method, get_method

FAST = {
    "clear": {"epochs": 8, "batch_size": 64, "hidden": 128, "momentum": 0.9, "queue_size": 256},
    "scgnn": {"epochs": 8, "batch_size": 64, "hidden": 128, "feature_dim": 32, "graph_epochs": 40,
              "n_iterations": 2},
    "scgcc": {"epochs": 8, "batch_size": 64, "hidden": 16, "heads": 2, "momentum": 0.9, "queue_size": 256},
}
LATENT = 6


def _fit(name, adata, outdir):
    return fit_method(name, adata, dataset="pancreas", seed=0, outdir=outdir, overrides=FAST[name],
                      global_params={"latent_dim": LATENT})["X_latent"]


@pytest.fixture(scope="module")
def fits(tiny_rna, tmp_path_factory):
    """Each method fitted twice with the same seed (separate folders: no checkpoint is resumed), once per module."""
    done = {}

    def get(name):
        if name not in done:
            first_dir, second_dir = tmp_path_factory.mktemp(f"{name}_a"), tmp_path_factory.mktemp(f"{name}_b")
            done[name] = (name, _fit(name, tiny_rna, first_dir), _fit(name, tiny_rna, second_dir), first_dir)
        return done[name]
    return get


@pytest.fixture(params=sorted(FAST))
def fitted(request, fits):
    return fits(request.param)


def test_registered_as_gpu_rna_methods_with_a_model_artifact():
    registry = all_methods()
    for name in FAST:
        m = registry[name]
        assert (m.family, m.modalities, m.uses_gpu, m.artifacts) == ("graph_contrastive", ("rna",), True, ("model",))
        assert m.resolve_params(global_params={"latent_dim": 7})["latent_dim"] == 7


def test_latent_shape_finite_labels_and_deterministic(fitted, tiny_rna):
    name, latent, again, _ = fitted
    assert latent.shape == (tiny_rna.n_obs, LATENT) and latent.dtype == np.float32
    assert np.isfinite(latent).all()
    assert_carries_labels(latent, tiny_rna.obs["clusters"])
    np.testing.assert_array_equal(latent, again)


def test_train_logs_and_model_artifact(fitted):
    name, _, _, outdir = fitted
    model = torch.load(outdir / "model.pt", map_location="cpu", weights_only=True)
    assert model["config"]["latent_dim"] == LATENT
    if name == "scgnn":
        phases = ["feature_ae", "graph_ae_1", "graph_ae_2"]
        assert [info["method"] for info in model["train_info"]] == [f"scgnn:{p}" for p in phases]
        logs = [outdir / "train_log.tsv"] + [outdir / f"phase_{p}" / "train_log.tsv" for p in phases[1:]]
        columns = [["mse"], ["edge_bce", "nonedge_bce"], ["edge_bce", "nonedge_bce"]]
        epochs = [FAST[name]["epochs"]] + [FAST[name]["graph_epochs"]] * 2
    else:
        logs, columns, epochs = [outdir / "train_log.tsv"], [["infonce"]], [FAST[name]["epochs"]]
    for log, cols, n_epochs in zip(logs, columns, epochs):
        lines = log.read_text().splitlines()
        header = lines[0].split("\t")
        assert all(c in header for c in cols), (log, header)
        assert len(lines) == 1 + n_epochs
        losses = np.array([float(line.split("\t")[header.index("loss")]) for line in lines[1:]])
        assert np.isfinite(losses).all()


def test_scgnn_resumed_in_a_later_phase_rebuilds_the_same_graph(fits, tiny_rna, tmp_path):
    """Finished phases resume from their checkpoints; the graph of the next one is rebuilt from them."""
    name, latent, _, outdir = fits("scgnn")
    shutil.copytree(outdir, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "phase_graph_ae_2")
    np.testing.assert_array_equal(_fit(name, tiny_rna, tmp_path / "run"), latent)


# ---------------------------------------------------------------------------- one-line errors
@pytest.mark.parametrize("name", sorted(FAST))
def test_atac_is_refused(name, tiny_atac, tmp_path):
    with pytest.raises(InputError, match=f"method '{name}'.*does not support modality atac"):
        fit_method(name, tiny_atac, dataset="atac_bmmc", seed=0, outdir=tmp_path)


@pytest.mark.parametrize("name", ["scgnn", "scgcc"])
def test_knn_graph_needs_more_cells_than_k(name, tiny_rna, tmp_path):
    k = get_method(name).defaults["k"]
    small = tiny_rna[:k].copy()
    with pytest.raises(InputError, match=rf"kNN graph with k = {k} needs more than {k} cells \(the data has {k}\)"):
        fit_method(name, small, dataset="pancreas", seed=0, outdir=tmp_path)


def test_scgnn_needs_the_lognorm_layer(tiny_rna, tmp_path):
    bare = tiny_rna.copy()
    del bare.layers["lognorm"]
    with pytest.raises(InputError, match=r"method 'scgnn'.*no layers\['lognorm'\]"):
        fit_method("scgnn", bare, dataset="pancreas", seed=0, outdir=tmp_path)


def test_out_of_range_parameters_are_refused():
    with pytest.raises(InputError, match="parameter 'graph_mix' of method 'scgnn' is 1.5"):
        get_method("scgnn").resolve_params({"graph_mix": 1.5})
    with pytest.raises(InputError, match="parameter 'momentum' of method 'clear' is 2"):
        get_method("clear").resolve_params({"momentum": 2.0})


# ---------------------------------------------------------------------------- graph pieces
def _small_graph():
    """A weighted symmetric 5-node graph without self loops, one isolated node (4)."""
    a = np.zeros((5, 5), dtype=np.float32)
    for i, j, w in [(0, 1, 1.0), (0, 2, 0.5), (1, 3, 1.0), (2, 3, 2.0)]:
        a[i, j] = a[j, i] = w
    rows, cols = np.nonzero(a)
    return a, torch.tensor(np.vstack([rows, cols]), dtype=torch.long), torch.tensor(a[rows, cols])


def _dense_of(index, weight, n):
    dense = torch.zeros(n, n, dtype=weight.dtype)
    dense.index_put_((index[0], index[1]), weight, accumulate=True)
    return dense


def test_normalized_adjacency_matches_dense_formula():
    from livaebench.models.scgnn import normalized_adjacency

    a, index, weight = _small_graph()
    norm_index, norm_weight = normalized_adjacency(index, weight, 5)
    got = _dense_of(norm_index, norm_weight, 5).numpy()
    a_hat = a + np.eye(5, dtype=np.float32)
    d = a_hat.sum(axis=1)
    expected = a_hat / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert got[4, 4] == pytest.approx(1.0)  # an isolated node keeps its own features


def test_gcn_encoder_propagates_with_the_normalized_adjacency():
    from livaebench.models.scgnn import GCNEncoder, normalized_adjacency

    a, index, weight = _small_graph()
    norm_index, norm_weight = normalized_adjacency(index, weight, 5)
    torch.manual_seed(0)
    enc = GCNEncoder(3, 4, 2)
    x = torch.randn(5, 3)
    a_hat = _dense_of(norm_index, norm_weight, 5)
    with torch.no_grad():
        c1, c2 = enc.conv1, enc.conv2
        h = torch.relu(a_hat @ (x @ c1.lin.weight.T) + c1.bias)
        expected = a_hat @ (h @ c2.lin.weight.T) + c2.bias
        torch.testing.assert_close(enc(x, norm_index, norm_weight), expected, rtol=1e-5, atol=1e-6)


def test_knn_graph_excludes_self_and_is_symmetric():
    from livaebench.models.scgnn import knn_edges, symmetric_graph

    pts = np.array([[0.0], [1.0], [1.0], [3.0], [10.0]])  # a duplicate pair (1, 2)
    nbrs = knn_edges(pts, 2)
    assert nbrs.shape == (5, 2) and not (nbrs == np.arange(5)[:, None]).any()
    assert set(nbrs[0]) == {1, 2} and set(nbrs[1]) == {0, 2} and set(nbrs[2]) == {0, 1} and nbrs[4][0] == 3
    adj = symmetric_graph(nbrs).toarray()
    np.testing.assert_array_equal(adj, adj.T)
    assert adj.diagonal().sum() == 0 and adj[4, 3] == 1 and adj[3, 4] == 1


# ---------------------------------------------------------------------------- MoCo pieces
def test_info_nce_matches_a_hand_computation():
    from livaebench.models.clear import info_nce

    q = np.array([[1.0, 0.0], [0.6, 0.8]])
    k = np.array([[0.8, 0.6], [0.0, 1.0]])
    queue = np.array([[1.0, 0.0], [0.0, -1.0], [-0.6, 0.8]])
    tau = 0.5
    expected = []
    for i in range(2):
        pos = np.exp(q[i] @ k[i] / tau)
        neg = sum(np.exp(q[i] @ n / tau) for n in queue)
        expected.append(-np.log(pos / (pos + neg)))
    got = info_nce(*(torch.tensor(v) for v in (q, k, queue)), tau)
    assert float(got) == pytest.approx(np.mean(expected), rel=1e-12)


def test_momentum_update_formula_and_key_encoder_is_not_trained():
    from livaebench.models.clear import CLEAR, CLEARConfig, momentum_update

    torch.manual_seed(0)
    q, k = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in k.parameters()]
    momentum_update(k, q, 0.9)
    for p_k, p_old, p_q in zip(k.parameters(), before, q.parameters()):
        torch.testing.assert_close(p_k, 0.9 * p_old + 0.1 * p_q)

    model = CLEAR(CLEARConfig(n_input=4, latent_dim=2, hidden=3, momentum=0.5))
    for p_k, p_q in zip(model.encoder_k.parameters(), model.encoder_q.parameters()):
        assert torch.equal(p_k, p_q) and not p_k.requires_grad
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(1.0)
    old = [p.detach().clone() for p in model.encoder_k.parameters()]
    model.on_step(0)  # the engine's hook before each optimization step
    for p_k, p_old, p_q in zip(model.encoder_k.parameters(), old, model.encoder_q.parameters()):
        torch.testing.assert_close(p_k, 0.5 * p_old + 0.5 * p_q)


def test_queue_is_a_ring_buffer_and_validation_leaves_it_alone():
    from livaebench.models.clear import CLEAR, CLEARConfig, enqueue

    queue, ptr = torch.zeros(5, 1), torch.zeros(1, dtype=torch.long)
    enqueue(queue, ptr, torch.tensor([[1.0], [2.0], [3.0]]))
    enqueue(queue, ptr, torch.tensor([[4.0], [5.0], [6.0]]))
    assert queue.ravel().tolist() == [6.0, 2.0, 3.0, 4.0, 5.0] and int(ptr) == 1
    enqueue(queue, ptr, torch.arange(10.0, 17.0)[:, None])  # more keys than slots: the last 5 are kept
    assert sorted(queue.ravel().tolist()) == [12.0, 13.0, 14.0, 15.0, 16.0]

    torch.manual_seed(0)
    model = CLEAR(CLEARConfig(n_input=6, latent_dim=3, hidden=4, queue_size=8))
    batch = {"x": torch.randn(4, 6)}
    model.eval()
    frozen = model.queue.clone()
    model.loss_terms(batch)
    assert torch.equal(model.queue, frozen)
    model.train()
    model.loss_terms(batch)
    assert not torch.equal(model.queue[:4], frozen[:4]) and torch.equal(model.queue[4:], frozen[4:])
    assert int(model.queue_ptr) == 4


def test_augmentations_are_the_described_operations():
    from livaebench.models.clear import Augmentation, augment_profiles

    off = dict(mask_prob=0.0, noise_prob=0.0, swap_prob=0.0, cross_prob=0.0, replace_prob=0.0)
    x = torch.arange(1.0, 6 * 40 + 1).view(6, 40)
    torch.manual_seed(1)
    assert torch.equal(augment_profiles(x, Augmentation(**off)), x)
    swapped = augment_profiles(x, Augmentation(**{**off, "swap_prob": 1.0, "swap_rate": 0.5}))
    assert torch.equal(swapped.sort(dim=1).values, x) and not torch.equal(swapped, x)  # values permuted in-cell
    masked = augment_profiles(x, Augmentation(**{**off, "mask_prob": 1.0, "mask_rate": 0.5}))
    assert ((masked == x) | (masked == 0)).all() and (masked == 0).any()
    crossed = augment_profiles(x, Augmentation(**{**off, "cross_prob": 1.0, "cross_rate": 0.5}))
    changed = crossed != x
    assert changed.any()
    for i in range(6):  # each changed gene of a cell comes from one other cell, at the same gene
        donors = {int((crossed[i, j] - 1) // 40) for j in torch.nonzero(changed[i]).ravel()}
        assert len(donors) <= 1 and i not in donors
        assert (crossed[i] - 1).remainder(40).tolist() == list(range(40))


def test_scgcc_views_drop_edges_and_keep_feature_shape(tiny_rna):
    from livaebench.models.scgcc import ScGCC, ScGCCConfig

    torch.manual_seed(0)
    model = ScGCC.from_input(ScGCCConfig(n_input=0, edge_drop=0.5), np.asarray(tiny_rna.X), n_pcs=20, k=5, seed=0)
    feats, edges = model.view()
    assert feats.shape == model.features.shape == (tiny_rna.n_obs, 20)
    e = model.edge_index.shape[1]
    assert 0.4 * e < edges.shape[1] < 0.6 * e
    kept = {tuple(c) for c in edges.T.tolist()}
    assert kept <= {tuple(c) for c in model.edge_index.T.tolist()}
