"""Every probabilistic engine method embeds cells deterministically (issue 15 §3): two ``latents()`` calls on the
same trained model give identical arrays, whatever the global random state between them (a posterior sample or
a dropout/augmentation left on in ``latents`` would differ). One short training per model family (one epoch per
phase on 300 real pancreas cells), through the engine adapter that the workflow uses.

scvi-tools and scTour latents are tested with their own methods (tests/test_baselines_packages.py,
tests/test_baselines_deep.py).
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from livaebench.methods import deep_clustering, diffvae, get_method, graph_contrastive, unicoord, vae_models
from livaebench.methods.engine import fit_engine_model
from livaebench.methods.registry import FitContext

# method -> (the builder its registered run() hands to the engine, what its run() adds to the params)
BUILDERS = {
    "livae": (vae_models.build_vae_model, {}),  # the trunk of vae, ivae, the ablations and sweeps
    "betatcvae": (partial(vae_models.build_vae_model, regularizer="tc"), {}),  # the VAE family's regularizers
    "scdeepcluster": (deep_clustering.build_scdeepcluster, {}),
    "scdhmap": (deep_clustering.build_scdhmap, {}),
    "clear": (graph_contrastive.build_clear, {}),
    "scgnn": (graph_contrastive.build_scgnn, {}),
    "scgcc": (graph_contrastive.build_scgcc, {}),
    "diffvae": (diffvae.build_diffvae, {}),
    "graph_diffvae": (diffvae.build_graph_diffvae, {"batch_size": 300}),  # run_graph_diffvae: full batch
    "unicoord": (unicoord.build, {"discrete_keys": ["clusters"], "continuous_keys": ["S_score"]}),
}


def one_epoch_params(name: str, extra: dict) -> dict:
    """The method's resolved parameters with every epoch count (and scGNN's outer loop) at 1."""
    method = get_method(name)
    short = {k: 1 for k in method.defaults if k.endswith("epochs") or k == "n_iterations"}
    return method.resolve_params({**short, "checkpoint_seconds": 1e9, **extra}, {"latent_dim": 4})


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_latents_of_a_trained_model_are_deterministic(name, tiny_rna, tmp_path):
    build, extra = BUILDERS[name]
    built = {}

    def keep(ctx):  # the real builder; the model is kept to call latents() again
        built["model"], built["data"] = build(ctx)
        return built["model"], built["data"]

    ctx = FitContext(adata=tiny_rna, dataset="pancreas", method=name, seed=0, params=one_epoch_params(name, extra),
                     outdir=tmp_path, threads=1, device="cpu", artifacts=())
    first = fit_engine_model(ctx, keep, progress=False)
    assert ctx.convergence and all(r["epochs_run"] == 1 for r in ctx.convergence)  # trained, briefly
    model, data = built["model"], built["data"]
    torch.manual_seed(1)
    a = model.latents(data)
    torch.manual_seed(2)
    b = model.latents(data)
    assert set(a) == set(b) == set(first) and "X_latent" in a
    for key in a:
        x, y = (np.asarray(v.detach().cpu() if torch.is_tensor(v) else v) for v in (a[key], b[key]))
        assert x.shape[0] == tiny_rna.n_obs and np.isfinite(x).all()
        np.testing.assert_array_equal(x, y, err_msg=f"{name}: {key} differs between two latents() calls")
        # and it is what the engine returned as the method's embedding
        np.testing.assert_array_equal(x.astype(np.float32), first[key])
