"""Library-backed baselines (scVI, PeakVI, PoissonVI via scvi-tools; scTour; LSI) through the registry.

One short training per method (module-scoped, fitted twice with the same seed for the determinism
check), on real data: the ``tiny_rna`` pancreas cells, and for ATAC all 600 shipped bone-marrow cells
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
        if name != "lsi":
            assert method.defaults["epochs"] >= 1
            with pytest.raises(InputError, match="'epochs'.*must be >= 1"):
                method.resolve_params({"epochs": 0})


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
                     overrides={"depth_cor_cutoff": 1.0}, global_params={"latent_dim": 4})
    table = pd.read_csv(tmp_path / "loadings.tsv", sep="\t")
    assert list(table.columns) == ["feature", "LSI_1", "LSI_2", "LSI_3", "LSI_4"]
    # Uncentred truncated SVD of the TF-IDF: the scores are the data projected on the loadings.
    projected = atac600.layers["lognorm"] @ table.iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(out["X_latent"], projected, rtol=1e-4, atol=1e-4)
