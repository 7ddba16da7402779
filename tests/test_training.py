"""The training engine: batching, early stopping, clipping, logs, NaN errors, determinism and resume."""
from __future__ import annotations

import functools
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from livaebench import training
from livaebench.methods import fit_method
from livaebench.training import EngineModel, NonFiniteLossError, TrainConfig, torch_runtime, train

FAST = {"epochs": 2, "checkpoint_seconds": 1e9}


class Recorder(EngineModel):
    """A toy model: loss (w - 3)^2 + 0 * mean(row); records which rows each step saw."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[int]] = []
        self.threads: set[int] = set()
        self.n_train = None

    @property
    def loss_weights(self):
        return {"fit": 2.0, "aux": 0.5}

    def on_fit_start(self, n_train):
        self.n_train = n_train

    def on_step(self, step):
        self.threads.add(torch.get_num_threads())

    def loss_terms(self, batch):
        if self.training:
            self.seen.append(batch["row"].long().tolist())
        return {"fit": (self.w - 3.0) ** 2 + 0 * batch["row"].mean(), "aux": self.w.abs()}


def _rows(n=103):
    return {"row": torch.arange(n, dtype=torch.float32)}


def test_minibatches_cover_the_training_split_once_per_epoch_in_a_new_order(tmp_path):
    model = Recorder()
    cfg = TrainConfig(epochs=3, batch_size=10, lr=0.01, val_frac=0.2, patience=0)
    result = train(model, _rows(), cfg, seed=4, outdir=tmp_path, progress=False)
    assert (result.n_train, result.n_val) == (82, 21) and model.n_train == 82
    per_epoch = [model.seen[i * 9:(i + 1) * 9] for i in range(3)]  # ceil(82 / 10) = 9 batches
    assert len(model.seen) == 27
    train_rows = sorted(r for b in per_epoch[0] for r in b)
    assert len(set(train_rows)) == 82  # without replacement
    for epoch in per_epoch:
        assert sorted(r for b in epoch for r in b) == train_rows
        assert {len(b) for b in epoch} <= {9, 10}  # near-equal batches, none larger than batch_size
    assert [r for b in per_epoch[0] for r in b] != [r for b in per_epoch[1] for r in b]


def test_train_log_has_each_term_and_the_weighted_total(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="livaebench")
    train(Recorder(), _rows(), TrainConfig(epochs=4, batch_size=16, lr=0.05, patience=0), seed=0, outdir=tmp_path,
          dataset="toy", method="rec", progress=False)
    log = pd.read_csv(tmp_path / "train_log.tsv", sep="\t")
    assert list(log.columns) == ["epoch", "fit", "aux", "loss", "val_loss", "seconds"]
    assert log["epoch"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(log["loss"], 2.0 * log["fit"] + 0.5 * log["aux"], rtol=1e-5)
    assert (log["seconds"] > 0).all() and log["val_loss"].notna().all()
    assert "training on cpu" in caplog.text
    info = json.loads((tmp_path / "train_info.json").read_text())
    assert info["device"] == "cpu" and info["epochs_run"] == 4


def test_epoch_means_are_the_cell_weighted_step_values_summed_in_step_order(tmp_path):
    """The engine keeps each step's terms on the device and sums them once per epoch: the logged means must
    be the float32 sums Σ_b n_b · term_b / n_train accumulated minibatch by minibatch, bit for bit."""
    class Logs(Recorder):
        def __init__(self):
            super().__init__()
            self.steps: list[tuple[int, torch.Tensor]] = []

        def loss_terms(self, batch):
            terms = super().loss_terms(batch)
            if self.training:
                total = 2.0 * terms["fit"] + 0.5 * terms["aux"]
                self.steps.append((batch["row"].shape[0], torch.stack([terms["fit"], terms["aux"], total]).detach()))
            return terms

    model = Logs()
    result = train(model, _rows(), TrainConfig(epochs=2, batch_size=16, lr=0.05, val_frac=0.2, patience=0), seed=0,
                   outdir=None, progress=False)
    per_epoch = len(model.steps) // 2
    for epoch, row in enumerate(result.history):
        acc = None
        for n_b, vec in model.steps[epoch * per_epoch:(epoch + 1) * per_epoch]:
            acc = vec * float(n_b) if acc is None else acc + vec * float(n_b)
        fit, aux, loss = (acc / result.n_train).tolist()
        assert (row["fit"], row["aux"], row["loss"]) == (fit, aux, loss)


def test_weighted_total_is_the_plain_weighted_sum_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, generator=gen, requires_grad=True)
    terms = {"a": (x * 1.3).sum(), "b": x.square().mean(), "c": x.exp().sum(), "d": -x.sum()}
    weights = {"a": 1.0, "b": 10.0, "c": 0.5}  # "d" unlisted: weight 1
    want = sum(weights.get(k, 1.0) * v for k, v in terms.items())
    got = training._weighted_total(terms, weights)
    assert torch.equal(got, want)
    (g_want,) = torch.autograd.grad(want, x, retain_graph=True)
    (g_got,) = torch.autograd.grad(got, x)
    assert torch.equal(g_got, g_want)


class Drift(EngineModel):
    """Training pushes w up at a constant rate; validation scores (w − 3)²: best near w = 3, then worse."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def loss_terms(self, batch):
        return {"drift": -self.w if self.training else (self.w - 3.0) ** 2}


def test_early_stopping_restores_the_best_epoch(tmp_path):
    model = Drift()
    ws = []
    cfg = TrainConfig(epochs=100, batch_size=50, lr=0.25, val_frac=0.5, patience=3)  # 1 step per epoch
    result = train(model, _rows(100), cfg, seed=0, outdir=tmp_path, progress=False,
                   on_epoch_end=lambda epoch, row: ws.append(model.w.item()))
    best = int(np.argmin([(w - 3.0) ** 2 for w in ws])) + 1
    assert result.stopped_early and result.best_epoch == best and result.epochs_run == best + 3
    assert model.w.item() == pytest.approx(ws[best - 1], abs=0)  # restored, not the last value


def test_gradients_are_clipped_to_the_configured_norm(tmp_path):
    norms = []

    class Steep(Recorder):
        def on_step(self, step):
            if self.w.grad is not None:  # still holds the previous step's (clipped) gradient
                norms.append(self.w.grad.abs().item())

        def loss_terms(self, batch):
            return {"fit": 1000.0 * (self.w - 3.0) ** 2}  # raw gradient 6000 at w = 0

    train(Steep(), _rows(), TrainConfig(epochs=2, batch_size=20, lr=1e-3, grad_clip=0.5, val_frac=0), seed=0,
          outdir=tmp_path, progress=False)
    assert norms and max(norms) == pytest.approx(0.5, rel=1e-5)


def test_nonfinite_loss_names_dataset_method_epoch_and_term(tmp_path):
    class Explodes(Recorder):
        step = 0

        def on_step(self, step):
            self.step = step

        def loss_terms(self, batch):
            bad = torch.tensor(float("inf")) if self.step == 13 else self.w * 0
            return {"fit": (self.w - 3.0) ** 2, "blowup": bad}

    cfg = TrainConfig(epochs=10, batch_size=20, val_frac=0)  # 6 steps per epoch: step 13 is in epoch 3
    with pytest.raises(NonFiniteLossError) as err:
        train(Explodes(), _rows(), cfg, seed=0, outdir=tmp_path, dataset="pancreas", method="livae", progress=False)
    msg = str(err.value)
    assert isinstance(err.value, FloatingPointError) and "\n" not in msg
    assert "dataset 'pancreas'" in msg and "method 'livae'" in msg and "epoch 3" in msg and "'blowup'" in msg
    assert err.value.epoch == 3 and err.value.terms == ["blowup"]
    assert err.value.step == 1 and "(minibatch 2)" in msg  # global step 13 = the 2nd of epoch 3's 6 steps


def test_runtime_caps_threads_and_restores_them(tmp_path):
    before = torch.get_num_threads()
    model = Recorder()
    with torch_runtime(threads=1, seed=0):
        train(model, _rows(), TrainConfig(epochs=1, batch_size=20), seed=0, outdir=tmp_path, progress=False)
    assert model.threads == {1}
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------- LiVAE end to end
def _fit(adata, outdir, seed=0, **overrides):
    return fit_method("livae", adata, dataset="pancreas", seed=seed, outdir=outdir, threads=1,
                      overrides={**FAST, **overrides})


def test_same_seed_gives_bit_identical_latents(tiny_rna, tmp_path):
    a = _fit(tiny_rna, tmp_path / "a", epochs=3)
    b = _fit(tiny_rna, tmp_path / "b", epochs=3)
    c = _fit(tiny_rna, tmp_path / "c", seed=1, epochs=3)
    assert np.array_equal(a["X_latent"], b["X_latent"]) and np.array_equal(a["X_bottleneck"], b["X_bottleneck"])
    assert not np.allclose(a["X_latent"], c["X_latent"])
    log_a = pd.read_csv(tmp_path / "a" / "train_log.tsv", sep="\t").drop(columns="seconds")
    log_b = pd.read_csv(tmp_path / "b" / "train_log.tsv", sep="\t").drop(columns="seconds")
    pd.testing.assert_frame_equal(log_a, log_b)


class Interrupted(Exception):
    pass


def _interrupt_at(epoch_to_stop):
    def hook(epoch, row):
        if epoch == epoch_to_stop:
            raise Interrupted
    return hook


def test_interrupted_training_resumes_to_the_identical_result(tiny_rna, tmp_path, monkeypatch):
    # a high lr and patience 2 make it stop early; interrupting one epoch after the best means the
    # resumed run must carry the early-stopping state (best value, best weights, counter) to be identical
    params = dict(epochs=40, lr=1e-2, patience=2, checkpoint_seconds=0)
    whole = _fit(tiny_rna, tmp_path / "whole", **params)
    whole_info = json.loads((tmp_path / "whole" / "train_info.json").read_text())
    assert whole_info["stopped_early"] and whole_info["best_epoch"] < whole_info["epochs_run"]
    stop_at = whole_info["best_epoch"] + 1  # one non-improving epoch already counted

    monkeypatch.setattr(training, "train", functools.partial(train, on_epoch_end=_interrupt_at(stop_at)))
    with pytest.raises(Interrupted):
        _fit(tiny_rna, tmp_path / "resumed", **params)
    monkeypatch.undo()
    resumed = _fit(tiny_rna, tmp_path / "resumed", **params)

    assert np.array_equal(whole["X_latent"], resumed["X_latent"])
    assert np.array_equal(whole["X_bottleneck"], resumed["X_bottleneck"])
    info = json.loads((tmp_path / "resumed" / "train_info.json").read_text())
    assert info["resumed_from_epoch"] == stop_at
    assert (info["epochs_run"], info["best_epoch"]) == (whole_info["epochs_run"], whole_info["best_epoch"])
    log = pd.read_csv(tmp_path / "resumed" / "train_log.tsv", sep="\t")
    assert log["epoch"].tolist() == list(range(1, whole_info["epochs_run"] + 1))
    whole_log = pd.read_csv(tmp_path / "whole" / "train_log.tsv", sep="\t")
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), whole_log.drop(columns="seconds"))

    # a finished checkpoint is reused as is; one from another configuration is ignored
    again = _fit(tiny_rna, tmp_path / "resumed", **params)
    assert np.array_equal(whole["X_latent"], again["X_latent"])
    other = _fit(tiny_rna, tmp_path / "resumed", **{**params, "lr": 1e-3})
    fresh = _fit(tiny_rna, tmp_path / "fresh", **{**params, "lr": 1e-3})
    assert np.array_equal(other["X_latent"], fresh["X_latent"])
