"""CLEAR, scGNN and scGCC (docs/methods.md §7): short fits on real pancreas cells, plus their building blocks
(normalized adjacency, GCN layer, InfoNCE, momentum update, queue, augmentations, scGNN's graph term and stop
rule, scGCC's subgraphs and encoder, the cosine schedule) against hand computations, and the authors' settings
as registry defaults."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from baseline_checks import assert_carries_labels

from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method, get_method

FAST = {
    "clear": {"epochs": 8, "batch_size": 64, "hidden": 128, "momentum": 0.9, "queue_size": 256},
    "scgnn": {"epochs": 30, "em_epochs": 10, "hidden": 128, "feature_dim": 32, "graph_epochs": 40,
              "n_iterations": 2, "graph_reg": 0.5},
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


def _log(path):
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    return lines[0], np.array([[float(v) for v in row] for row in lines[1:]])


def test_train_logs_and_model_artifact(fitted):
    name, _, _, outdir = fitted
    model = torch.load(outdir / "model.pt", map_location="cpu", weights_only=True)
    assert model["config"]["latent_dim"] == LATENT
    if name == "scgnn":
        # the initial feature AE and graph AE, then one (feature AE, graph AE) pair per iteration
        iterations = json.loads((outdir / "convergence.json").read_text())[-1]
        assert iterations["phase"] == "iterations" and 1 <= iterations["epochs_run"] <= FAST[name]["n_iterations"]
        phases = ["feature_ae", "graph_ae_0"] + [f"{kind}_{t}" for t in range(1, iterations["epochs_run"] + 1)
                                                  for kind in ("feature_ae", "graph_ae")]
        assert [info["method"] for info in model["train_info"]] == [f"scgnn:{p}" for p in phases]
        logs = [outdir / "train_log.tsv"] + [outdir / f"phase_{p}" / "train_log.tsv" for p in phases[1:]]
        columns = [["mse"] if p == "feature_ae" else ["mse", "graph_mse"] if p.startswith("feature") else
                   ["edge_bce", "nonedge_bce"] for p in phases]
        epochs = [FAST[name]["epochs"] if p == "feature_ae" else FAST[name]["em_epochs"] if p.startswith("feature")
                  else FAST[name]["graph_epochs"] for p in phases]
    else:
        logs, columns, epochs = [outdir / "train_log.tsv"], [["infonce"]], [FAST[name]["epochs"]]
        # the authors' optimizer: SGD with momentum 0.9 (a phase setting: "momentum" among the parameters is MoCo's)
        config = model["train_info"][0]["config"]
        assert (config["optimizer"], config["momentum"]) == ("sgd", 0.9)
    for log, cols, n_epochs in zip(logs, columns, epochs):
        header, rows = _log(log)
        assert all(c in header for c in cols), (log, header)
        assert rows.shape[0] == n_epochs and np.isfinite(rows[:, header.index("loss")]).all()


def test_scgnn_graph_term_is_weighted_in_and_decreases_while_retraining(fits):
    """Each iteration retrains the feature AE with loss = mse + graph_reg · graph_mse; the graph term falls."""
    _, _, _, outdir = fits("scgnn")
    header, rows = _log(outdir / "phase_feature_ae_1" / "train_log.tsv")
    mse, graph, loss = (rows[:, header.index(c)] for c in ("mse", "graph_mse", "loss"))
    np.testing.assert_allclose(loss, mse + FAST["scgnn"]["graph_reg"] * graph, rtol=1e-5)
    assert graph[-1] < graph[0]
    # the graph term is each cell's error weighted by its degree in the graph (degree >= k' > 1 here)
    assert (graph > mse).all()


def test_scgnn_graph_term_matches_a_hand_computation():
    from livaebench.models.scgnn import ScGNN, ScGNNConfig, edge_index_of

    torch.manual_seed(0)
    model = ScGNN(ScGNNConfig(n_input=4, hidden=3, feature_dim=2, graph_hidden=2, latent_dim=2, k=1), n_cells=5)
    a, _, _ = _small_graph()
    model.graph_index, model.graph_weight = edge_index_of(sp.csr_matrix(a))
    model.start_phase("feature_ae_1", {})
    x = torch.rand(5, 4)
    idx = torch.tensor([0, 2, 4])
    terms = model.loss_terms({"x": x[idx], "idx": idx})
    with torch.no_grad():
        err = ((model.feature_decoder(model.feature_encoder(x[idx])) - x[idx]) ** 2).mean(dim=1)
    degree = torch.tensor(a.sum(axis=0))[idx]  # node 0: 1.5, node 2: 2.5, node 4: isolated
    torch.testing.assert_close(terms["graph_mse"], (degree * err).mean())
    torch.testing.assert_close(terms["mse"], err.mean())
    assert model.loss_weights["graph_mse"] == 0.0  # the authors' iterations: off unless graph_reg is set


def test_scgnn_graph_change_and_stop_threshold_match_hand_computations():
    from livaebench.models.scgnn import column_normalized, graph_change, normalized_laplacian

    a, _, _ = _small_graph()
    a = a[:4, :4].astype(np.float64)  # no isolated node
    b = np.zeros((4, 4))
    for i, j in [(0, 1), (1, 2), (2, 3)]:
        b[i, j] = b[j, i] = 1.0
    d_a = a.sum(axis=1)
    lap = np.eye(4) - a / np.sqrt(np.outer(d_a, d_a))
    np.testing.assert_allclose(normalized_laplacian(sp.csr_matrix(a)).toarray(), lap, atol=1e-12)
    a_norm = a / a.sum(axis=0, keepdims=True)
    b_norm = b / b.sum(axis=0, keepdims=True)
    np.testing.assert_allclose(column_normalized(sp.csr_matrix(b)).toarray(), b_norm)
    # mean |A'_t - A'_{t-1}| with A' = λ L0 + (1 - λ) Ã: the first iteration against A'_0 = L0, later ones
    # against Ã_{t-1}
    lam = 0.3
    first = np.abs(lam * lap + (1 - lam) * b_norm - lap).mean()
    later = np.abs((lam * lap + (1 - lam) * b_norm) - (lam * lap + (1 - lam) * a_norm)).mean()
    assert graph_change(sp.csr_matrix(b), sp.csr_matrix(lap), lam) == pytest.approx(first, rel=1e-6)
    assert graph_change(sp.csr_matrix(b), sp.csr_matrix(a_norm), lam) == pytest.approx(later, rel=1e-6)


def test_scgnn_stop_rule_ends_the_iterations_and_is_recorded(tiny_rna, tmp_path):
    """A threshold every change passes: the run stops after its first iteration, by the model's rule."""
    overrides = {**FAST["scgnn"], "n_iterations": 3, "converge_ratio": 1e6, "epochs": 5, "em_epochs": 2,
                 "graph_epochs": 5}
    fit_method("scgnn", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path, overrides=overrides,
               global_params={"latent_dim": LATENT})
    records = json.loads((tmp_path / "convergence.json").read_text())
    assert [r["phase"] for r in records] == ["feature_ae", "graph_ae_0", "feature_ae_1", "graph_ae_1", "iterations"]
    assert (records[-1]["epochs_run"], records[-1]["max_epochs"], records[-1]["stop_reason"]) == (1, 3, "model_rule")
    assert not (tmp_path / "phase_feature_ae_2").exists()
    saved = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]["graph_changes"]
    assert torch.isfinite(saved).tolist() == [False, True, False, False]


def test_scgnn_resumed_in_a_later_phase_rebuilds_the_same_graph(fits, tiny_rna, tmp_path):
    """Finished phases resume from their checkpoints; the graph of the next one is rebuilt from them."""
    name, latent, _, outdir = fits("scgnn")
    shutil.copytree(outdir, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "phase_feature_ae_2")
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


# ---------------------------------------------------------------------------- the authors' settings
AUTHORS = {  # CLEAR.py; scGCC.py + layer.py; scGNN.py / main_benchmark.py (latent_dim: the shared one)
    "clear": {"epochs": 100, "batch_size": 512, "lr": 5e-3, "weight_decay": 1e-6, "optimizer": "sgd",
              "sgd_momentum": 0.9, "hidden": 1024, "queue_size": 1024, "temperature": 0.2, "aug_prob": 0.5},
    "scgcc": {"epochs": 100, "batch_size": 512, "lr": 1.0, "weight_decay": 1e-4, "optimizer": "sgd",
              "sgd_momentum": 0.9, "lr_schedule": "cosine", "k": 10, "hidden": 128, "heads": 20, "dropout": 0.4,
              "queue_size": 1024, "momentum": 0.99, "temperature": 0.2, "aug_prob": 0.5},
    "scgnn": {"epochs": 500, "batch_size": 12800, "lr": 1e-3, "optimizer": "adam", "hidden": 512, "feature_dim": 128,
              "graph_hidden": 32, "k": 10, "n_iterations": 10, "em_epochs": 200, "graph_mix": 0.5,
              "graph_epochs": 200, "graph_lr": 0.01, "converge_ratio": 0.01},
}


@pytest.mark.parametrize("name", sorted(AUTHORS))
def test_registry_defaults_are_the_authors_settings(name):
    method = get_method(name)
    assert {k: method.defaults[k] for k in AUTHORS[name]} == AUTHORS[name]
    assert method.defaults["grad_clip"] == 0.0 and method.defaults["val_frac"] == 0.0
    assert method.undeclared_differences() == []
    assert method.origin.budget and {d.setting for d in method.deviations} >= {"latent_dim"}


def _hits(before, after):
    """(share of cells changed at all, share of genes changed in those cells)."""
    changed = after != before
    cells = changed.any(dim=1)
    return float(cells.float().mean()), float(changed[cells].float().mean())


def test_clear_augmentations_apply_the_authors_rates():
    """Each augmentation alone, over 4,000 cells: it hits ≈ half the cells (p = 0.5), and in those its
    rate of the genes: mask 20 %, noise 80 % (σ 0.5), swaps 10 %, crossover 25 %, replacement 25 %."""
    from livaebench.models.clear import Augmentation, augment_profiles

    aug = Augmentation()
    names = ("mask", "noise", "swap", "cross", "replace")
    assert [getattr(aug, f"{n}_prob") for n in names] == [0.5] * 5
    assert [getattr(aug, f"{n}_rate") for n in names] == [0.2, 0.8, 0.1, 0.25, 0.25] and aug.noise_sigma == 0.5
    torch.manual_seed(0)
    b, g = 4000, 200
    x = torch.arange(1.0, b * g + 1, dtype=torch.float64).view(b, g)  # distinct values: any move or copy shows
    off = {f"{n}_prob": 0.0 for n in names}
    for name in names:
        one = Augmentation(**{**off, f"{name}_prob": 0.5})
        out = augment_profiles(x, one)
        cells, genes = _hits(x, out)
        assert cells == pytest.approx(0.5, abs=0.03), name
        assert genes == pytest.approx(getattr(aug, f"{name}_rate"), abs=0.01), name
    noise = augment_profiles(x, Augmentation(**{**off, "noise_prob": 1.0})) - x
    assert float(noise[noise != 0].std()) == pytest.approx(0.5, rel=0.02)
    # the registry's aug_prob sets every probability
    assert Augmentation.applied_with(0.3) == Augmentation(**{f"{n}_prob": 0.3 for n in names})


def test_clear_embeds_with_the_key_encoder():
    """The authors' evaluation embedding: the momentum (key) encoder on the clean profiles, L2-normalized."""
    from livaebench.models.clear import CLEAR, CLEARConfig

    torch.manual_seed(0)
    model = CLEAR(CLEARConfig(n_input=6, latent_dim=3, hidden=4))
    x = torch.randn(5, 6)
    before = model.embed(x)
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(model.embed(x), before)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.encoder_k(x), dim=1).numpy()
        for p in model.encoder_k.parameters():
            p.add_(0.5)
    np.testing.assert_allclose(before, expected, rtol=1e-6)
    assert not np.allclose(model.embed(x), before)


def test_scgcc_encoder_has_the_papers_heads_and_hidden_units():
    """20 heads x 128 units concatenated (2,560 features), then 20 heads averaged into latent_dim."""
    from livaebench.models.scgcc import GATEncoder

    d = get_method("scgcc").defaults
    torch.manual_seed(0)
    enc = GATEncoder(30, d["hidden"], d["heads"], 7, d["dropout"])
    assert (enc.conv1.heads, enc.conv1.out_channels, enc.conv1.concat) == (20, 128, True)
    assert (enc.conv2.heads, enc.conv2.out_channels, enc.conv2.concat) == (20, 7, False)
    assert enc.conv2.in_channels == 20 * 128 and enc.conv1.dropout == 0.4
    x, edges = torch.randn(12, 30), torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    enc.eval()
    assert enc.conv1(x, edges).shape == (12, 2560) and enc(x, edges).shape == (12, 7)


def test_scgcc_induced_subgraph_matches_brute_force():
    from livaebench.models.scgcc import induced_subgraph

    edges = torch.tensor([[0, 1, 1, 2, 3, 4, 4], [1, 0, 2, 1, 4, 3, 0]])
    nodes = torch.tensor([4, 0, 1])
    got = {tuple(e) for e in induced_subgraph(edges, nodes, 5).T.tolist()}
    label = {int(v): i for i, v in enumerate(nodes)}
    expected = {(label[s], label[t]) for s, t in edges.T.tolist() if s in label and t in label}
    assert got == expected == {(1, 2), (2, 1), (0, 1)}


def test_scgcc_key_view_takes_donor_values_from_graph_neighbours(tiny_rna):
    """Crossover and replacement copy genes from the cell's own graph neighbours (the paper's neighbourhood
    augmentation); the query view is the clean profile."""
    from livaebench.models.clear import Augmentation
    from livaebench.models.scgcc import ScGCC, ScGCCConfig

    torch.manual_seed(0)
    n = tiny_rna.n_obs
    g = 40
    x = np.arange(1.0, n * g + 1, dtype=np.float32).reshape(n, g)  # distinct values: each reveals its cell
    model = ScGCC.from_input(ScGCCConfig(n_input=0, hidden=4, heads=2), x, n_pcs=10, k=5, seed=0)
    off = {f"{a}_prob": 0.0 for a in ("mask", "noise", "swap", "cross", "replace")}
    adjacency = {i: set() for i in range(n)}
    for s, t in model.edge_index.T.tolist():
        adjacency[s].add(t)
    cells = torch.arange(0, n, 3)
    for name in ("cross", "replace"):
        model.augmentation = Augmentation(**{**off, f"{name}_prob": 1.0})
        view = model.key_view(cells)
        for row, cell in zip(view, cells.tolist()):
            donors = {int((v - 1) // g) for v in row.tolist()} - {cell}
            assert donors and donors <= adjacency[cell], name
            if name == "cross":
                assert len(donors) == 1


def test_cosine_schedule_sets_each_epochs_rate():
    """SGD on loss = w (gradient 1), one step per epoch: w falls by Σ_e lr · ½(1 + cos(π (e − 1) / E))."""
    from livaebench.training import EngineModel, TrainConfig, train

    class Linear(EngineModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def loss_terms(self, batch):
            return {"w": self.w + 0 * batch["x"].sum()}

        def latents(self, data):
            return {"X_latent": np.zeros((1, 1), dtype=np.float32)}

    epochs, lr = 6, 0.5
    model = Linear()
    train(model, {"x": torch.zeros(4, 1)}, TrainConfig(epochs=epochs, batch_size=None, lr=lr, optimizer="sgd",
                                                      momentum=0.0, lr_schedule="cosine", val_frac=0.0,
                                                      grad_clip=0.0), seed=0, outdir=None, progress=False)
    expected = -sum(lr * 0.5 * (1 + math.cos(math.pi * (e - 1) / epochs)) for e in range(1, epochs + 1))
    assert float(model.w.detach()) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="lr_schedule 'step' is not one of constant, cosine"):
        train(Linear(), {"x": torch.zeros(4, 1)}, TrainConfig(epochs=1, lr_schedule="step", val_frac=0.0),
              seed=0, outdir=None, progress=False)
