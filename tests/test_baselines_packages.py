"""Library-backed baselines (scVI, PeakVI, PoissonVI via scvi-tools; scTour; LSI) through the registry.

One short training per method (module-scoped, fitted twice with the same seed for the determinism
check; the embedding of one trained model computed twice for the posterior-mean check), on real data: the ``tiny_rna`` pancreas cells, and for ATAC all 600 shipped bone-marrow cells
with 500 peaks (the 200-cell x 300-peak ``tiny_atac`` leaves ~36 accessible peaks per cell, too few
for any of these methods, LSI included, to separate the cell types reliably in a few seconds).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from baseline_checks import assert_carries_labels
from livaebench.data.preprocess import preprocess
from livaebench.errors import InputError
from livaebench.methods import ARTIFACT_FILES, fit_method, get_method

LATENT = 6  # the workflow-wide latent_dim the tests set: every method's latent follows it
FAST = {
    "scvi": {"epochs": 20},
    "sctour": {"epochs": 20, "batch_size": 256, "lr": 0.01},
    "peakvi": {"epochs": 20, "lr": 3e-3, "kl_warmup_epochs": 0, "hidden": 64},
    "poissonvi": {"epochs": 20, "batch_size": 64, "lr": 3e-3, "kl_warmup_epochs": 0, "hidden": 64},
    "lsi": {},
}
RNA, ATAC = ("scvi", "sctour"), ("peakvi", "poissonvi", "lsi")


@pytest.fixture(scope="module")
def atac600(atac):
    return preprocess(atac, dataset="atac_bmmc", modality="atac", label_key="cell_type", n_features=500)


@pytest.fixture(scope="module")
def data(tiny_rna, atac600):
    return {"rna": (tiny_rna, "clusters"), "atac": (atac600, "cell_type")}


@pytest.fixture(scope="module", params=RNA + ATAC)
def fitted(request, data, tmp_path_factory):
    """(method, adata, label key, first fit, second fit, outdir of the first) for one method."""
    name = request.param
    adata, labels = data["atac" if name in ATAC else "rna"]
    outs, dirs = [], []
    for run in range(2):
        outdir = tmp_path_factory.mktemp(f"{name}{run}")
        outs.append(fit_method(name, adata, dataset="test", seed=0, outdir=outdir, overrides=FAST[name],
                               global_params={"latent_dim": LATENT}))
        dirs.append(outdir)
    return name, adata, labels, outs[0], outs[1], dirs[0]


def test_registered_with_their_contract():
    for name in RNA + ATAC:
        method = get_method(name)
        assert method.family == ("deep_rna" if name in RNA else "atac")
        assert method.modalities == (("rna",) if name in RNA else ("atac",))
        assert method.uses_gpu == (name != "lsi")
        assert method.artifacts == (("loadings",) if name == "lsi" else ("model",))
        assert method.defaults["latent_dim"] == 10 and "latent_dim" not in method.pinned
        if name != "lsi":  # epochs 0: the package's own rule (scVI, scTour)
            assert method.defaults["epochs"] >= 0
            with pytest.raises(InputError, match="'epochs'.*must be >= 0"):
                method.resolve_params({"epochs": -1})


def test_declared_originals_are_the_installed_packages_defaults():
    """Origin.defaults (what docs/baselines.md calls the original) against the installed packages' signatures."""
    import inspect

    import scvi
    import sctour
    from scvi.train import Trainer, TrainingPlan

    def defaults(fn):
        return {k: v.default for k, v in inspect.signature(fn).parameters.items()}

    o = get_method("scvi").origin.defaults
    init, plan, train = defaults(scvi.model.SCVI.__init__), defaults(TrainingPlan.__init__), \
        defaults(scvi.model.SCVI.train)
    assert (o["hidden"], o["latent_dim"], o["layers"], o["dropout"], o["likelihood"]) == \
        (init["n_hidden"], init["n_latent"], init["n_layers"], init["dropout_rate"], init["gene_likelihood"])
    assert (o["lr"], o["weight_decay"], o["kl_warmup_epochs"]) == \
        (plan["lr"], plan["weight_decay"], plan["n_epochs_kl_warmup"])
    assert (o["early_stopping"], o["batch_size"], o["patience"]) == \
        (train["early_stopping"], train["batch_size"], defaults(Trainer.__init__)["early_stopping_patience"])
    assert o["epochs"] == 0 and train["max_epochs"] is None  # None: the package's epoch rule
    for name in ("peakvi", "poissonvi"):
        o = get_method(name).origin.defaults
        train = defaults(scvi.model.PEAKVI.train if name == "peakvi" else scvi.external.POISSONVI.train)
        assert (o["epochs"], o["lr"], o["weight_decay"], o["early_stopping"], o["patience"], o["kl_warmup_epochs"],
                o["batch_size"]) == (train["max_epochs"], train["lr"], train["weight_decay"], train["early_stopping"],
                                     train["early_stopping_patience"], train["n_epochs_kl_warmup"], train["batch_size"])
        assert o["hidden"] == 0 and defaults(scvi.model.PEAKVI.__init__)["n_hidden"] is None  # 0: the package's rule
    o, sct = get_method("sctour").origin.defaults, defaults(sctour.train.Trainer.__init__)
    assert (o["latent_dim"], o["ode_hidden"], o["hidden"], o["loss_mode"], o["batch_size"], o["lr"], o["weight_decay"],
            o["alpha_recon_lec"], o["alpha_kl"]) == (sct["n_latent"], sct["n_ode_hidden"], sct["n_vae_hidden"],
                                                     sct["loss_mode"], sct["batch_size"], sct["lr"], sct["wt_decay"],
                                                     sct["alpha_recon_lec"], sct["alpha_kl"])
    assert (o["epochs"], o["percent"]) == (0, 0.0) and sct["nepoch"] is None and sct["percent"] is None
    for name in ("scvi", "peakvi", "poissonvi", "sctour"):
        assert get_method(name).undeclared_differences() == [], name
        assert str(scvi.__version__) in get_method(name).origin.source or name == "sctour"


def test_embedding_is_the_posterior_mean_and_repeats(fitted):
    """Two embeddings of the same trained model (rebuilt from its artifact) are identical and equal the fit's
    X_latent; scTour's z part is the encoder's mean, not a sample. The training left a convergence record."""
    import json

    from livaebench.methods import scvi_tools, sctour

    name, adata, _, first, _, outdir = fitted
    if name == "lsi":
        pytest.skip("LSI is not a probabilistic model")
    if name == "sctour":
        model = sctour.load_model(outdir / ARTIFACT_FILES["model"])
        x = np.log1p(adata.layers["counts"].toarray())
        (a, mu, path), (b, _, _) = sctour.mean_latent(model, x), sctour.mean_latent(model, x)
        with torch.no_grad():
            _, mean, _ = model.encoder(torch.as_tensor(x, dtype=torch.float32))
        np.testing.assert_array_equal(mu, mean.numpy())
        np.testing.assert_allclose(a, 0.5 * mu + 0.5 * path, rtol=1e-6)
    else:
        model = scvi_tools.load_model(outdir / ARTIFACT_FILES["model"], adata)
        a, b = scvi_tools.latent_mean(model), scvi_tools.latent_mean(model)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, first["X_latent"], rtol=1e-5, atol=1e-6)
    record, = json.loads((outdir / "convergence.json").read_text())
    epochs = FAST[name]["epochs"]
    assert record["max_epochs"] == epochs and 1 <= record["epochs_run"] <= epochs
    assert record["stop_reason"] == ("patience" if record["epochs_run"] < epochs else "max_epochs")
    assert np.isfinite(record["rel_change_loss"]) and np.isfinite(record["rel_change_val_loss"])


def test_latent_shape_labels_and_determinism(fitted):
    name, adata, labels, first, again, _ = fitted
    latent = first["X_latent"]
    assert latent.shape == (adata.n_obs, LATENT) and latent.dtype == np.float32 and np.isfinite(latent).all()
    assert latent.std(axis=0).min() > 0
    assert_carries_labels(latent, adata.obs[labels])
    assert set(first) == set(again)
    for key in first:  # CPU training with the same seed gives the same arrays
        np.testing.assert_array_equal(first[key], again[key])


def test_artifacts_load_without_pickled_code(fitted):
    name, adata, _, first, _, outdir = fitted
    if name == "lsi":
        table = pd.read_csv(outdir / ARTIFACT_FILES["loadings"], sep="\t")
        assert list(table["feature"]) == list(adata.var_names)
        assert table.shape[1] == LATENT + 1 and np.isfinite(table.iloc[:, 1:].to_numpy()).all()
        assert "LSI_1" not in table.columns  # the first component tracks depth on ATAC and is dropped
        return
    saved = torch.load(outdir / ARTIFACT_FILES["model"], weights_only=True)
    assert saved["var_names"] == list(map(str, adata.var_names))
    assert saved["state_dict"] and all(torch.is_tensor(v) for v in saved["state_dict"].values())
    assert saved["config"]["n_latent"] == LATENT
    if name == "poissonvi":  # the shipped counts have more 2s than 1s: insertions, converted to fragments
        assert saved["config"]["count_unit"] == "reads"
    if name == "sctour":
        pseudotime = first["X_pseudotime"]
        assert pseudotime.shape == (adata.n_obs, 1) and (pseudotime >= 0).all() and (pseudotime <= 1).all()


def test_scvi_uses_the_dataset_batch_key(tiny_rna, tmp_path):
    adata = tiny_rna.copy()
    adata.obs["donor"] = np.where(np.arange(adata.n_obs) % 2 == 0, "d1", "d2")
    adata.uns["livaebench"] = {**adata.uns["livaebench"], "batch_key": "donor"}
    out = fit_method("scvi", adata, dataset="test", seed=0, outdir=tmp_path, overrides={"epochs": 2})
    assert out["X_latent"].shape == (adata.n_obs, 10)
    config = torch.load(tmp_path / "model.pt", weights_only=True)["config"]
    assert config["batch_key"] == "donor" and config["batches"] == ["d1", "d2"]
    adata.uns["livaebench"]["batch_key"] = "nowhere"
    with pytest.raises(InputError, match="batch_key 'nowhere' is not a column"):
        fit_method("scvi", adata, dataset="test", seed=0, outdir=tmp_path, overrides={"epochs": 2})


@pytest.mark.parametrize("name", RNA + ATAC)
def test_wrong_modality_is_one_line_error(name, tiny_rna, tiny_atac, tmp_path):
    other = tiny_atac if name in RNA else tiny_rna
    with pytest.raises(InputError, match=f"method '{name}'.*does not support modality") as err:
        fit_method(name, other, dataset="test", seed=0, outdir=tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["scvi", "sctour", "poissonvi"])
def test_non_integer_counts_are_refused(name, tiny_rna, tiny_atac, tmp_path):
    adata = (tiny_atac if name in ATAC else tiny_rna).copy()
    adata.layers["counts"] = adata.layers["counts"] * 0.5
    with pytest.raises(InputError, match="not integer"):
        fit_method(name, adata, dataset="test", seed=0, outdir=tmp_path)


@pytest.mark.parametrize("name", RNA + ATAC)
def test_too_small_data_for_the_latent_is_refused(name, tiny_rna, tiny_atac, tmp_path):
    adata = (tiny_atac if name in ATAC else tiny_rna)[:15].copy()
    with pytest.raises(InputError, match="too few|need more than"):
        fit_method(name, adata, dataset="test", seed=0, outdir=tmp_path, global_params={"latent_dim": 14})


def test_lsi_keeps_the_first_component_when_it_does_not_track_depth(atac600, tmp_path):
    out = fit_method("lsi", atac600, dataset="test", seed=0, outdir=tmp_path,
                     overrides={"depth_cor_cutoff": 1.0, "scale_embeddings": False}, global_params={"latent_dim": 4})
    table = pd.read_csv(tmp_path / "loadings.tsv", sep="\t")
    assert list(table.columns) == ["feature", "LSI_1", "LSI_2", "LSI_3", "LSI_4"]
    # Uncentred truncated SVD of the TF-IDF: the scores are the data projected on the loadings.
    projected = atac600.layers["lognorm"] @ table.iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(out["X_latent"], projected, rtol=1e-4, atol=1e-4)


def test_lsi_standardises_each_component_by_default_as_signac(atac600, tmp_path):
    """Signac's RunSVD(scale.embeddings = TRUE): every component's cell scores have mean 0 and sd 1 (n - 1)."""
    assert get_method("lsi").defaults["scale_embeddings"] is True
    out = fit_method("lsi", atac600, dataset="test", seed=0, outdir=tmp_path, global_params={"latent_dim": 4})
    latent = out["X_latent"].astype(np.float64)
    np.testing.assert_allclose(latent.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(latent.std(axis=0, ddof=1), 1.0, rtol=1e-5)
    # the same components as the unscaled scores, each shifted and divided by its own sd
    projected = atac600.layers["lognorm"] @ pd.read_csv(tmp_path / "loadings.tsv", sep="\t").iloc[:, 1:].to_numpy()
    expected = (projected - projected.mean(axis=0)) / projected.std(axis=0, ddof=1)
    np.testing.assert_allclose(latent, expected, rtol=1e-3, atol=1e-3)


def test_lsi_standardisation_matches_a_hand_computation():
    from livaebench.methods.lsi import standardize_scores

    scores = np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 5.0], [6.0, 30.0, 5.0]])
    # column 0: mean 3, sample sd sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7); column 1: mean 20, sd 10;
    # a constant column has no spread and stays 0
    expected = np.array([[-2 / np.sqrt(7), -1.0, 0.0], [-1 / np.sqrt(7), 0.0, 0.0], [3 / np.sqrt(7), 1.0, 0.0]])
    np.testing.assert_allclose(standardize_scores(scores), expected, rtol=1e-12)
