"""The method contract: a cheap registry, what every method declares, parameter checks, the engine adapter."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from livaebench.config import check_name
from livaebench.comparisons import check_comparisons, configured_comparisons, paper_comparisons
from livaebench.errors import InputError
from livaebench.methods import (ARTIFACT_FILES, Check, FitContext, Resources, all_methods, check_method_params,
                                fit_method, get_method, register)
from livaebench.methods.engine import fit_engine_model
from livaebench.software_envs import method_env
from livaebench.training import EngineModel, TrainConfig, train

HEAVY = ("torch", "scvi", "sklearn", "scanpy", "anndata", "torch_geometric", "sctour", "jax", "numba", "umap",
         "matplotlib", "lightning", "statsmodels")


def test_importing_the_registry_loads_no_heavy_package():
    """What the Snakefile does while parsing: in a fresh interpreter, nothing heavy gets imported."""
    code = ("import sys, json; import livaebench.methods, livaebench.comparisons, livaebench.resources; "
            f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "workflow" / "lib"), "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("name", sorted(all_methods()))
def test_every_method_declares_its_contract(name):
    method = get_method(name)
    assert set(method.modalities) <= {"rna", "atac"} and method.modalities
    assert (REPO / "envs" / method_env(method, gpu=0)).is_file() and (REPO / "envs" / method_env(method, gpu=1)).is_file()
    assert set(method.artifacts) <= set(ARTIFACT_FILES)
    assert method.family and method.description
    check_name("method", name)  # a configured name must be registered, so this makes every method path safe
    small, large, retry = method.resources(1000, 2000), method.resources(100_000, 5000), method.resources(1000, 2000, 2)
    assert 0 < small["mem_mb"] < large["mem_mb"] and 0 < small["runtime"] < large["runtime"]
    assert retry["mem_mb"] > small["mem_mb"] and retry["runtime"] > small["runtime"]
    assert method.resources.threads(8) >= 1
    method.check_params(dict(method.defaults), f"method '{name}'")  # its own defaults pass its checks


def test_resources_scale_with_cells_features_and_attempt():
    res = Resources(mem_mb_base=1000, bytes_per_value=8, runtime_min_base=10, runtime_min_per_kcell=1.0, max_threads=1)
    assert res(100_000, 5_000) == {"mem_mb": 1000 + int(np.ceil(100_000 * 5_000 * 8 / 2**20)), "runtime": 110}
    assert res(100_000, 5_000, attempt=2)["runtime"] == 220
    assert res.threads(4) == 1 and Resources().threads(4) == 4


@pytest.mark.parametrize("params, message", [
    ({"nope": {}}, "'nope' is not a registered method"),
    ({"livae": {"lamda": 1.0}}, "unknown parameter 'lamda' of method 'livae'"),
    ({"livae": {"epochs": 2.5}}, "parameter 'epochs' of method 'livae' is 2.5: it must be an integer"),
    ({"livae": {"epochs": True}}, "must be an integer"),
    ({"livae": {"lr": "fast"}}, "must be a finite number"),
    ({"livae": {"epochs": 0}}, "must be >= 1"),
    ({"livae": {"likelihood": "gauss"}}, "must be one of auto, nb, zinb, poisson, zip"),
    ({"pca": {"svd_solver": 3}}, "must be a string"),
    ({"pca": []}, "must be a mapping"),
])
def test_method_params_are_checked_in_one_line(params, message):
    with pytest.raises(InputError) as err:
        check_method_params(params)
    assert message in str(err.value) and "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_valid_method_params_pass_and_ints_fit_floats():
    check_method_params({"livae": {"epochs": 5, "lr": 1, "likelihood": "zinb"}, "pca": {"latent_dim": 4}})


def test_paper_comparisons_come_from_the_registry():
    paper = paper_comparisons()
    classical = [m for m, meth in all_methods().items() if meth.family == "classical"]
    assert paper["fig3_livae_vs_classical"]["baselines"] == classical and len(classical) == 7
    assert paper["fig3_livae_vs_classical"]["modality"] == "rna"
    assert paper["fig2_livae_vs_vae_ivae_atac"] == {**paper["fig2_livae_vs_vae_ivae_atac"], "modality": "atac",
                                                    "baselines": ["vae", "ivae"], "test": "auto"}
    assert paper["fig7_ivae_ablation"]["reference"] == "ivae" and paper["fig7_ivae_ablation"]["test"] == "none"
    assert paper["fig9_likelihoods_atac"]["reference"] == "livae_zinb"
    assert "livae_zinb" not in paper["fig9_likelihoods_atac"]["baselines"]  # never livae − livae
    assert paper["fig8_bn_vs_views_rna"]["test"] == "auto"
    assert paper["fig10_sweep_lambda"]["baselines"] == ["livae_lambda1", "livae_lambda5"]
    assert paper["fig11_multibatch"]["batch_only"] and "iLISI" in paper["fig11_multibatch"]["metrics"]
    check_comparisons(paper)  # every name the paper's families use is registered


def test_config_comparisons_unknown_names_are_errors():
    with pytest.raises(InputError, match="'pcaa' is not a registered method"):
        configured_comparisons({"paper_comparisons": [], "comparisons": {"x": {"reference": "livae",
                                                                              "baselines": ["pcaa"]}}})
    with pytest.raises(InputError, match="not one of the paper's comparisons"):
        configured_comparisons({"paper_comparisons": ["fig12"]})
    own = configured_comparisons({"paper_comparisons": [], "comparisons": {"x": {"reference": "livae",
                                                                                "baselines": ["pca"]}}})
    assert own == {"x": {"modality": "any", "test": "auto", "correction": "pairs", "reference": "livae",
                         "baselines": ["pca"]}}


# ------------------------------------------------------------------------------------------ engine adapter
class _Quadratic(EngineModel):
    """One parameter w pulled towards 1 by the term 'pull', whose weight the model anneals in on_step."""

    def __init__(self, switch_step: int, phases=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.switch_step, self.weight, self._phases, self.started = switch_step, 0.0, phases, []

    @property
    def loss_weights(self):
        return {"pull": self.weight}

    def on_step(self, step):
        self.weight = 0.0 if step < self.switch_step else 1.0

    def loss_terms(self, batch):
        return {"pull": ((self.w - 1.0) ** 2).expand(batch["x"].shape[0]).mean()}

    def phases(self):
        return self._phases or super().phases()

    def start_phase(self, name, data):
        self.started.append(name)

    def latents(self, data):
        return {"X_latent": (data["x"] * self.w.detach()).numpy()}

    def describe(self):
        return {"class": "_Quadratic", "switch": self.switch_step}


def test_loss_weights_are_read_every_step():
    """Annealing: while the weight is 0 the parameter does not move; once it is 1 it does."""
    model = _Quadratic(switch_step=4)
    seen = []
    train(model, {"x": torch.ones(8, 1)}, TrainConfig(epochs=4, batch_size=4, lr=0.1, val_frac=0, grad_clip=None),
          seed=0, outdir=None, progress=False, on_epoch_end=lambda epoch, row: seen.append(float(model.w)))
    assert seen[0] == 0.0 and seen[1] == 0.0  # steps 0-3: weight 0, no gradient
    assert 0.0 < seen[2] < seen[3] < 1.0


def _ctx(tmp_path, tiny_rna, artifacts=("model",)):
    return FitContext(adata=tiny_rna, dataset="toy", method="quadratic", seed=0, threads=1, outdir=tmp_path,
                      params={"epochs": 2, "batch_size": 4, "lr": 0.1, "val_frac": 0.0, "grad_clip": 0.0,
                              "checkpoint_seconds": 0.0}, artifacts=artifacts)


def test_adapter_fits_any_engine_model_through_its_phases(tmp_path, tiny_rna):
    model = _Quadratic(switch_step=0, phases=[{"name": "warmup", "epochs": 1}, {"name": "main"}])
    ctx = _ctx(tmp_path, tiny_rna)
    out = fit_engine_model(ctx, lambda c: (model, {"x": torch.ones(8, 1)}), progress=False)
    assert model.started == ["warmup", "main"]
    assert (tmp_path / "train_log.tsv").read_text().count("\n") == 2  # header + 1 epoch of warmup
    assert (tmp_path / "phase_main" / "train_log.tsv").read_text().count("\n") == 3  # header + 2 epochs
    saved = torch.load(tmp_path / ARTIFACT_FILES["model"], weights_only=True)
    assert saved["config"] == {"class": "_Quadratic", "switch": 0}
    assert out["X_latent"].dtype == np.float32 and out["X_latent"][0, 0] == pytest.approx(float(model.w))


def test_undeclared_artifacts_and_missing_declared_ones_are_caught(tmp_path, tiny_rna):
    with pytest.raises(KeyError, match="without declaring it"):
        _ctx(tmp_path, tiny_rna, artifacts=()).artifact_path("model")
    register("_contract_liar", "test", lambda ctx: {"X_latent": np.zeros((ctx.adata.n_obs, 2))},
             {"latent_dim": 2}, artifacts=("loadings",), description="declares loadings, writes none",
             checks={"latent_dim": Check(minimum=1)})
    try:
        with pytest.raises(RuntimeError, match="declared artifact"):
            fit_method("_contract_liar", tiny_rna, dataset="toy", seed=0, outdir=tmp_path)
    finally:
        from livaebench.methods import registry
        registry._REGISTRY.pop("_contract_liar")


def test_unreadable_checkpoint_is_discarded_with_a_warning(tmp_path, caplog):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    model = _Quadratic(switch_step=0)
    result = train(model, {"x": torch.ones(8, 1)}, TrainConfig(epochs=2, batch_size=4, val_frac=0),
                   seed=0, outdir=tmp_path, progress=False)
    assert result.epochs_run == 2 and result.resumed_from == 0
    assert "discarding unreadable checkpoint" in caplog.text


def test_gpu_requested_but_absent_fails_in_one_line_unless_fallback(caplog):
    import logging

    from livaebench.runtime import job_device

    log = logging.getLogger("livaebench.test")
    assert job_device(0, False, "d/m/seed0", log) is None  # no GPU asked for: the engine picks
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the absent-GPU path cannot be exercised")
    with pytest.raises(InputError) as err:
        job_device(1, False, "d/m/seed0", log)
    assert "1 GPU(s) requested but CUDA is not available" in str(err.value) and "gpu_fallback" in str(err.value)
    assert "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING):
        assert job_device(1, True, "d/m/seed0", log) == "cpu"
    assert "training on the CPU instead" in caplog.text
