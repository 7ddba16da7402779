"""Deep RNA baselines without a package (docs/methods.md §7): scDeepCluster and scDHMap.

One short two-phase training per method on the real tiny pancreas subset (shared by the checks), a
second one for determinism, and unit checks of the pieces that are easy to get wrong: the Student-t
soft assignment and its target distribution, scDeepCluster's stop rule (and its resume), the ZINB with
a per-entry dispersion, the wrapped normal on the Lorentz model in any dimension, scDHMap's early
stopping on the training t-SNE term, the perplexity calibration, the row-wise Cauchy KL and the
Poincaré conversion.
"""
from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from baseline_checks import assert_carries_labels, twice_fitted
from livaebench import training
from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method
from livaebench.methods.deep_clustering import DEFAULT_N_CLUSTERS, default_n_clusters
from livaebench.models import lorentz
from livaebench.models.likelihoods import ZeroInflatedNegativeBinomial
from livaebench.models.scdeepcluster import (
    SCDeepCluster, SCDeepClusterConfig, cluster_kl, soft_assign, target_distribution, zinb_nll_sum,
)
from livaebench.models.scdhmap import (
    SCDHMap, SCDHMapConfig, cauchy_row_kl, exp_map, log_sinhc, lorentz_to_poincare, perplexity_affinities,
    poincare_distance, poincare_from_tangent, symmetric_row_affinities, transport_from_origin,
)

# Few epochs. scDeepCluster: a tolerance the tiny data reaches after a few clustering epochs (the authors'
# 0.1 % is 0 of 300 cells); scDHMap: several minibatches per epoch, so the t-SNE term is noisy and
# patience 2 ends the main phase.
FAST = {"scdeepcluster": {"pretrain_epochs": 12, "epochs": 12, "tol": 0.1, "checkpoint_seconds": 1e9},
        "scdhmap": {"pretrain_epochs": 12, "epochs": 25, "patience": 2, "batch_size": 64, "checkpoint_seconds": 1e9}}
GLOBAL = {"latent_dim": 6}
# loss terms each phase logs: (first phase in outdir/, second phase in outdir/phase_<name>/)
PHASES = {"scdeepcluster": (("pretrain", {"zinb"}), ("cluster", {"zinb", "kl_cluster"})),
          "scdhmap": (("pretrain", {"zinb", "kl"}), ("train", {"zinb", "kl", "tsne"}))}


@pytest.fixture(scope="module")
def fits(tiny_rna, tmp_path_factory):
    """Two fits per method with seed 0 (the second for determinism); outdir of the first."""
    return twice_fitted(FAST, tiny_rna, tmp_path_factory, GLOBAL)


# ---------------------------------------------------------------------------- registry and fits
def test_registered_in_family_deep_rna_at_the_authors_settings():
    methods = all_methods()
    for name in PHASES:
        m = methods[name]
        assert (m.family, m.modalities, m.uses_gpu, m.artifacts) == ("deep_rna", ("rna",), True, ("model",))
        # the workflow-wide latent_dim applies to both (scDHMap is no longer pinned at 2)
        assert m.resolve_params(global_params={"latent_dim": 7})["latent_dim"] == 7
        assert m.undeclared_differences() == [] and m.origin.url.startswith("https://github.com/ttgump/")
    d = methods["scdhmap"].defaults
    assert (d["latent_dim"], d["pretrain_epochs"], d["epochs"], d["patience"], d["optimizer"], d["lr"],
            d["weight_decay"], d["batch_size"], d["val_frac"], d["grad_clip"]) == \
        (2, 400, 5000, 150, "amsgrad", 1e-3, 1e-3, 512, 0.0, 0.0)
    assert (d["tsne_weight"], d["kl_weight"], d["pretrain_kl_weight"], d["perplexity"], d["n_pcs"]) == \
        (1000.0, 10.0, 1.0, 30.0, 50)
    d = methods["scdeepcluster"].defaults
    assert (d["latent_dim"], d["pretrain_epochs"], d["pretrain_optimizer"], d["pretrain_lr"], d["epochs"],
            d["optimizer"], d["lr"], d["tol"], d["batch_size"], d["val_frac"], d["patience"]) == \
        (32, 300, "amsgrad", 1e-3, 2000, "adadelta", 1.0, 1e-3, 256, 0.0, 0)
    assert (d["noise_sd"], d["gamma"], d["n_clusters"]) == (2.5, 1.0, 0)


@pytest.mark.parametrize("method", sorted(PHASES))
def test_fit_shape_finite_and_carries_labels(fits, tiny_rna, method):
    (out, outdir), _ = fits[method]
    latent = out["X_latent"]
    assert latent.shape == (tiny_rna.n_obs, GLOBAL["latent_dim"]) and latent.dtype == np.float32
    assert np.isfinite(latent).all()
    if method == "scdhmap":
        assert np.linalg.norm(latent, axis=1).max() < 1.0  # inside the Poincaré ball
    assert_carries_labels(latent, tiny_rna.obs["clusters"])
    assert (outdir / "model.pt").is_file()


@pytest.mark.parametrize("method", sorted(PHASES))
def test_same_seed_gives_identical_embedding(fits, method):
    (first, _), (second, _) = fits[method]
    assert np.array_equal(first["X_latent"], second["X_latent"])


@pytest.mark.parametrize("method", sorted(PHASES))
def test_each_phase_logs_its_loss_terms(fits, method):
    (_, outdir), _ = fits[method]
    (_, first_terms), (second, second_terms) = PHASES[method]
    for path, terms in ((outdir / "train_log.tsv", first_terms),
                        (outdir / f"phase_{second}" / "train_log.tsv", second_terms)):
        lines = path.read_text().splitlines()
        header = lines[0].split("\t")
        assert header[0] == "epoch" and header[-3:] == ["loss", "val_loss", "seconds"]
        assert set(header[1:-3]) == terms
        assert len(lines) > 1
    # pretraining runs its epochs in full on every cell (no validation split, as the authors)
    first = json.loads((outdir / "train_info.json").read_text())
    assert (first["epochs_run"], first["stopped_early"], first["n_val"]) == (FAST[method]["pretrain_epochs"], False, 0)
    records = json.loads((outdir / "convergence.json").read_text())
    assert [r["phase"] for r in records] == [PHASES[method][0][0], second]


def _same(a, b) -> bool:
    """Equal records (NaN equals NaN: a missing validation loss)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _phase_log(outdir, phase):
    return pd.read_csv(outdir / f"phase_{phase}" / "train_log.tsv", sep="\t")


def test_scdhmap_stops_on_the_training_tsne_term(fits):
    """Brute force from the log: the main phase ends at the first epoch whose t-SNE term has not improved
    on its running minimum for ``patience`` epochs, whatever the total loss does, and keeps the best epoch."""
    (_, outdir), _ = fits["scdhmap"]
    patience, limit = FAST["scdhmap"]["patience"], FAST["scdhmap"]["epochs"]
    tsne = _phase_log(outdir, "train")["tsne"].to_numpy()
    best, bad, expected = math.inf, 0, None
    for epoch, value in enumerate(tsne, start=1):
        best, bad = (value, 0) if value < best else (best, bad + 1)
        if bad >= patience:
            expected = epoch
            break
    info = json.loads((outdir / "phase_train" / "train_info.json").read_text())
    assert info["config"]["monitor"] == "tsne" and info["config"]["optimizer"] == "amsgrad"
    assert expected is not None, "the t-SNE term never stalled: the test data no longer exercises the stop"
    assert info["epochs_run"] == expected < limit and info["best_epoch"] == int(np.argmin(tsne)) + 1
    record = json.loads((outdir / "convergence.json").read_text())[-1]
    assert (record["stop_reason"], record["epochs_run"]) == ("patience", expected)
    assert record["stop_detail"] == f"no improvement of tsne for {patience} epochs"


def _assignments(outdir, data_x):
    """Every cell's hard cluster from the saved model, computed by hand from its weights."""
    state = torch.load(outdir / "model.pt", weights_only=True)
    config = SCDeepClusterConfig(**{k: v for k, v in state["config"].items() if k != "class"})
    model = SCDeepCluster(config)
    model.load_state_dict(state["state_dict"])
    with torch.no_grad():
        return soft_assign(model.encoder(data_x), model.centres).argmax(1), model


def test_scdeepcluster_stops_when_few_cells_change_cluster(fits, tiny_rna):
    (_, outdir), _ = fits["scdeepcluster"]
    tol, limit = FAST["scdeepcluster"]["tol"], FAST["scdeepcluster"]["epochs"]
    record = json.loads((outdir / "convergence.json").read_text())[-1]
    info = json.loads((outdir / "phase_cluster" / "train_info.json").read_text())
    assert info["config"]["optimizer"] == "adadelta" and info["config"]["patience"] == 0
    assert record["stop_reason"] == "model_rule" and record["epochs_run"] < limit, \
        "the tiny data no longer reaches the tolerance: the test does not exercise the rule"
    assert len(_phase_log(outdir, "cluster")) == record["epochs_run"] == info["epochs_run"]
    # the rule's state is the final model's own assignments, and its last check was below the tolerance
    from livaebench.models.tensors import count_tensors

    labels, model = _assignments(outdir, count_tensors(tiny_rna)[0]["x"])
    assert torch.equal(labels, model.last_labels)
    change = float(model.label_change)
    assert 0 <= change < tol
    assert record["stop_detail"].startswith(f"{100 * change:.3g} % of the cells changed cluster in clustering "
                                            f"epoch {record['epochs_run']}")


@pytest.mark.parametrize("tol, expected", [(1e-3, ("model_rule", 1)), (0.0, ("max_epochs", 3))])
def test_scdeepcluster_without_updates_stops_after_the_first_check(tiny_rna, tmp_path, tol, expected):
    """lr 0 in the clustering phase: no cell can change cluster, so the first check ends the phase, unless
    the tolerance is 0 (then nothing is below it and the phase runs to its limit)."""
    fit_method("scdeepcluster", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path, global_params=GLOBAL,
               overrides={"pretrain_epochs": 2, "epochs": 3, "lr": 0.0, "tol": tol, "checkpoint_seconds": 1e9})
    record = json.loads((tmp_path / "convergence.json").read_text())[-1]
    assert (record["stop_reason"], record["epochs_run"]) == expected
    info = json.loads((tmp_path / "phase_cluster" / "train_info.json").read_text())
    assert _same(info["convergence"], {k: v for k, v in record.items() if k != "phase"})
    if tol:
        assert record["stop_detail"] == ("0 % of the cells changed cluster in clustering epoch 1, fewer than the "
                                         "tolerance of 0.1 %")


def test_scdeepcluster_stop_rule_counts_changed_cells():
    """Swapping two centres moves exactly the cells of those two clusters; unchanged centres move none."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(90, 12, generator=gen) + torch.repeat_interleave(torch.randn(3, 12, generator=gen) * 4, 30, 0)
    model = SCDeepCluster(SCDeepClusterConfig(n_input=12, latent_dim=3, n_clusters=3, tol=0.05))
    model.start_phase("cluster", {"x": x})
    first = model.last_labels.clone()
    assert first.shape == (90,) and float(model.label_change) == -1.0
    assert model.stop_rule(1, {"x": x}) == ("0 % of the cells changed cluster in clustering epoch 1, fewer than "
                                           "the tolerance of 5 %")
    with torch.no_grad():
        model.centres.copy_(model.centres[[1, 0, 2]])
    moved = float(((first == 0) | (first == 1)).float().mean())
    assert moved >= 0.05 and model.stop_rule(2, {"x": x}) is None
    assert float(model.label_change) == pytest.approx(moved)
    assert torch.equal(model.last_labels, torch.where(first == 2, first, 1 - first))
    assert model.stop_rule(3, {"x": x}) is not None
    model.phase = "pretrain"
    assert model.stop_rule(4, {"x": x}) is None  # the rule belongs to the clustering phase


class Interrupted(Exception):
    pass


def test_scdeepcluster_resumed_inside_the_clustering_phase_stops_the_same_way(fits, tiny_rna, tmp_path, monkeypatch):
    """Interrupted one clustering epoch before the rule ends the phase: the resumed run must carry the rule's
    state (the assignments after that epoch) to take the same decision at the same epoch."""
    (whole, outdir), _ = fits["scdeepcluster"]
    whole_record = json.loads((outdir / "convergence.json").read_text())[-1]
    stop_at = whole_record["epochs_run"] - 1
    assert stop_at >= 1

    def interrupt(epoch, row, *, method):
        if method.endswith(":cluster") and epoch == stop_at:
            raise Interrupted

    def train(*args, **kwargs):
        return training_train(*args, on_epoch_end=functools.partial(interrupt, method=kwargs["method"]), **kwargs)

    training_train = training.train
    overrides = {**FAST["scdeepcluster"], "checkpoint_seconds": 0}
    monkeypatch.setattr(training, "train", train)
    with pytest.raises(Interrupted):
        fit_method("scdeepcluster", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path, overrides=overrides,
                   global_params=GLOBAL)
    monkeypatch.undo()
    resumed = fit_method("scdeepcluster", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path,
                         overrides=overrides, global_params=GLOBAL)
    info = json.loads((tmp_path / "phase_cluster" / "train_info.json").read_text())
    assert info["resumed_from_epoch"] == stop_at
    assert _same(json.loads((tmp_path / "convergence.json").read_text())[-1], whole_record)
    assert np.array_equal(resumed["X_latent"], whole["X_latent"])
    saved = [torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (outdir, tmp_path)]
    assert torch.equal(saved[0]["last_labels"], saved[1]["last_labels"])
    assert float(saved[0]["label_change"]) == float(saved[1]["label_change"])


def test_wrong_modality_and_bad_parameters_fail_with_one_line(tiny_atac, tiny_rna, tmp_path):
    for method in PHASES:
        with pytest.raises(InputError, match="does not support modality atac"):
            fit_method(method, tiny_atac, dataset="atac_bmmc", seed=0, outdir=tmp_path, overrides=FAST[method])
    with pytest.raises(InputError, match=r"n_clusters = 1000 for 300 cells\. Fix:"):
        fit_method("scdeepcluster", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path,
                   overrides={**FAST["scdeepcluster"], "n_clusters": 1000})
    with pytest.raises(InputError, match=r"perplexity 30 needs minibatches of more cells \(batch size 16\)"):
        fit_method("scdhmap", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path,
                   overrides={**FAST["scdhmap"], "batch_size": 16})


def test_number_of_clusters_defaults_to_the_label_categories(tiny_rna):
    assert default_n_clusters(tiny_rna) == tiny_rna.obs["clusters"].nunique()
    unlabelled = tiny_rna.copy()
    unlabelled.uns["livaebench"] = {**tiny_rna.uns["livaebench"], "label_key": ""}
    assert default_n_clusters(unlabelled) == DEFAULT_N_CLUSTERS


# ---------------------------------------------------------------------------- scDeepCluster pieces
def test_student_t_soft_assignment_and_target_by_hand():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    c = torch.tensor([[0.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    q = soft_assign(z, c, alpha=1.0)
    assert torch.allclose(q.sum(1), torch.ones(3, dtype=torch.float64))
    # by hand: squared distances [[0, 5], [1, 2], [10, 1]] -> kernels 1/(1 + d²)
    kern = np.array([[1.0, 1 / 6], [1 / 2, 1 / 3], [1 / 11, 1 / 2]])
    q_hand = kern / kern.sum(1, keepdims=True)
    np.testing.assert_allclose(q.numpy(), q_hand, rtol=1e-12)
    f = q_hand.sum(0)
    p_hand = np.array([[q_hand[i, j] ** 2 / f[j] for j in range(2)] for i in range(3)])
    p_hand /= p_hand.sum(1, keepdims=True)
    p = target_distribution(q)
    np.testing.assert_allclose(p.numpy(), p_hand, rtol=1e-12)
    assert torch.allclose(p.sum(1), torch.ones(3, dtype=torch.float64))
    # the target sharpens: each cell's largest assignment grows
    assert torch.all(p.max(1).values >= q.max(1).values)
    kl = cluster_kl(p, torch.log(q))
    np.testing.assert_allclose(kl.numpy(), (p_hand * np.log(p_hand / q_hand)).sum(1), rtol=1e-10)
    # other degrees of freedom: (1 + d²/α)^(−(α+1)/2)
    q3 = soft_assign(z, c, alpha=3.0)
    sq = np.array([[0.0, 5.0], [1.0, 2.0], [10.0, 1.0]])
    k3 = (1 + sq / 3.0) ** -2.0
    np.testing.assert_allclose(q3.numpy(), k3 / k3.sum(1, keepdims=True), rtol=1e-12)


def test_zinb_with_per_entry_dispersion_equals_the_distribution():
    gen = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.rand(7, 11, generator=gen, dtype=torch.float64) * 4)
    log_mu = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    log_theta = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    pi_logits = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    log_fact = torch.lgamma(x + 1).sum(1)
    ref = -ZeroInflatedNegativeBinomial(log_mu=log_mu, log_theta=log_theta, pi_logits=pi_logits).log_prob(x).sum()
    assert zinb_nll_sum(x, log_mu, log_theta, pi_logits, log_fact).item() == pytest.approx(ref.item(), rel=1e-12)


# ---------------------------------------------------------------------------- scDHMap pieces
def _tangents(n, d, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) * scale


def test_lorentz_and_poincare_distances_agree():
    u, v = _tangents(200, 2, 0, 1.5), _tangents(200, 2, 1, 1.5)
    a, b = lorentz.exp_map0(u), lorentz.exp_map0(v)
    pa, pb = lorentz_to_poincare(a), lorentz_to_poincare(b)
    assert torch.all(pa.norm(dim=1) < 1)
    np.testing.assert_allclose(poincare_distance(pa, pb).numpy(), lorentz.distance(a, b).numpy(), rtol=1e-9)
    np.testing.assert_allclose(lorentz.tangent_distance(u, v).numpy(), lorentz.distance(a, b).numpy(), rtol=1e-9)
    # the exported coordinates tanh(‖u‖/2) u/‖u‖ are the same points
    np.testing.assert_allclose(poincare_from_tangent(u).numpy(), pa.numpy(), rtol=1e-12, atol=1e-15)
    # float32 export stays inside the disc at the clamp radius
    far = poincare_from_tangent(torch.tensor([[40.0, 0.0], [0.0, 15.0]]))
    assert torch.all(far.norm(dim=1) < 1)


@pytest.mark.parametrize("d", [2, 5])
def test_wrapped_normal_sample_density_and_prior(d):
    torch.manual_seed(0)
    model = SCDHMap(SCDHMapConfig(n_input=5, latent_dim=d)).double()
    m = _tangents(64, d, 2, 2.0)
    sigma = torch.rand(64, d, dtype=torch.float64) + 0.2
    z, log_q = model.sample_posterior(m, sigma)
    assert z.shape == (64, d + 1)
    on_sheet = lorentz.lorentz_inner(z, z) + 1.0
    assert torch.all(on_sheet.abs() <= 1e-12 * z[:, 0].square()) and torch.all(z[:, 0] >= 1)
    # parallel transport gives a tangent vector at mu with the same norm
    mu = lorentz.exp_map0(m)
    v = _tangents(64, d, 3, 1.0)
    u = transport_from_origin(v, mu)
    assert torch.allclose(lorentz.lorentz_inner(u, mu), torch.zeros(64, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(lorentz.lorentz_inner(u, u), v.square().sum(1), rtol=1e-9)
    # with mean at the origin and unit scale the posterior is the prior: log q(z) = log p(z)
    z0, log_q0 = model.sample_posterior(torch.zeros(64, d, dtype=torch.float64), torch.ones(64, d, dtype=torch.float64))
    np.testing.assert_allclose(log_q0.numpy(), model.log_prior(z0).numpy(), rtol=1e-9)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_wrapped_normal_density_by_change_of_variables(d):
    """log q(z) against a brute-force density: the base normal at v divided by the Jacobian determinant of
    v -> Poincaré-ball coordinates of z (autograd) and the ball's volume element (2 / (1 − ‖p‖²))^d."""
    model = SCDHMap(SCDHMapConfig(n_input=5, latent_dim=d)).double()
    m = _tangents(4, d, 5, 1.5)
    sigma = torch.rand(4, d, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) + 0.3
    torch.manual_seed(7)
    z, log_q = model.sample_posterior(m, sigma)
    torch.manual_seed(7)
    v = sigma * torch.randn_like(sigma)  # the same draw as inside sample_posterior
    for i in range(4):
        mu = lorentz.exp_map0(m[i:i + 1])

        def to_ball(vi):
            zi = exp_map(transport_from_origin(vi[None], mu), mu, vi.norm().reshape(1, 1))
            return lorentz_to_poincare(zi)[0]

        p = to_ball(v[i])
        np.testing.assert_allclose(p.numpy(), lorentz_to_poincare(z[i:i + 1])[0].numpy(), rtol=1e-10)
        log_det = torch.linalg.slogdet(torch.autograd.functional.jacobian(to_ball, v[i]))[1]
        log_volume = d * torch.log(2.0 / (1.0 - p.square().sum()))
        base = torch.distributions.Normal(0.0, sigma[i]).log_prob(v[i]).sum()
        assert log_q[i].item() == pytest.approx((base - log_det - log_volume).item(), rel=1e-8, abs=1e-8)


def test_log_sinhc_against_numpy():
    # log(sinh x / x) against numpy, finite gradient at 0
    x = torch.tensor([0.0, 1e-6, 5e-3, 0.02, 1.0, 10.0, 40.0], dtype=torch.float64, requires_grad=True)
    ref = np.array([0.0, 1e-12 / 6, 5e-3 ** 2 / 6] + [math.log(math.sinh(t) / t) for t in (0.02, 1.0, 10.0, 40.0)])
    np.testing.assert_allclose(log_sinhc(x).detach().numpy(), ref, rtol=1e-6, atol=1e-14)
    log_sinhc(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_perplexity_calibration_and_cauchy_kl():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(120, 10, generator=gen, dtype=torch.float64)
    y[:40] += 4.0
    p = perplexity_affinities(torch.cdist(y, y).square(), 15.0)
    assert torch.allclose(p.sum(1), torch.ones(120, dtype=torch.float64)) and torch.all(p.diag() == 0)
    entropy = -torch.special.xlogy(p, p).sum(1)
    np.testing.assert_allclose(torch.exp(entropy).numpy(), 15.0, rtol=1e-4)
    ps = symmetric_row_affinities(y, 15.0)
    assert torch.allclose(ps.sum(1), torch.ones(120, dtype=torch.float64)) and torch.all(ps.diag() == 0)
    # row-wise KL by hand on a 4-point example
    dist = torch.tensor([[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]], dtype=torch.float64)
    pp = torch.tensor([[0, .5, .3, .2], [.4, 0, .4, .2], [.1, .6, 0, .3], [.2, .2, .6, 0]], dtype=torch.float64)
    kern = 1.0 / (1.0 + dist.numpy() ** 2)
    np.fill_diagonal(kern, 0.0)
    qq = kern / kern.sum(1, keepdims=True)
    off = ~np.eye(4, dtype=bool)
    hand = np.mean([(pp.numpy()[i, off[i]] * np.log(pp.numpy()[i, off[i]] / qq[i, off[i]])).sum() for i in range(4)])
    assert cauchy_row_kl(pp, dist).item() == pytest.approx(hand, rel=1e-12)
    assert cauchy_row_kl(torch.from_numpy(qq), dist).item() == pytest.approx(0.0, abs=1e-12)
