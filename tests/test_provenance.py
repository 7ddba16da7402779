"""Every method declares its original and how it differs; docs/baselines.md is generated from that."""
import inspect
from pathlib import Path

import pytest

import livaebench.methods as methods
from livaebench.methods.registry import Deviation, Method, Origin
from livaebench.provenance import baselines_markdown, render

ROOT = Path(__file__).resolve().parents[1]
ALL = methods.all_methods()
# The engine's training settings every neural original must state (so a budget cannot differ unseen).
ENGINE_TRAINING_KEYS = ("epochs", "lr", "optimizer", "grad_clip", "val_frac")
PAPER_BASELINES = ("pca", "kernelpca", "factoranalysis", "nmf", "fastica", "truncatedsvd", "dictionarylearning",
                   "betavae", "betatcvae", "dipvae", "infovae", "scvi", "scdeepcluster", "scdhmap", "sctour",
                   "clear", "scgnn", "scgcc", "lsi", "peakvi", "poissonvi")


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_method_declares_its_origin_and_every_difference(name):
    method = ALL[name]
    assert method.origin is not None, f"{name}: no origin declared"
    assert method.origin.source.strip() and method.origin.url.startswith("http"), name
    assert method.undeclared_differences() == [], name
    if "checkpoint_seconds" in method.defaults:  # trained by the shared engine
        missing = [k for k in ENGINE_TRAINING_KEYS if k not in method.origin.defaults]
        assert not missing, f"{name}: the original's {missing} are not stated"


def test_an_undeclared_difference_is_caught():
    origin = Origin("paper", "https://example.org", {"epochs": 5000, "lr": 1e-3})
    method = Method("m", "f", lambda ctx: {}, {"epochs": 200, "lr": 1e-3}, origin=origin)
    assert method.undeclared_differences() == [
        "'epochs' is 200 here but 5000 in the original, with no deviation declared"]
    declared = Method("m", "f", lambda ctx: {}, {"epochs": 200, "lr": 1e-3}, origin=origin,
                      deviations=(Deviation("epochs", "200", "5000", "two cores", "against"),
                                  Deviation("lr", "1e-3", "1e-3", "stale", "none")))
    assert declared.undeclared_differences() == ["deviation 'lr' is declared but the default equals the original's 0.001"]
    assert Method("m", "f", lambda ctx: {}, {}).undeclared_differences() == ["no origin declared"]
    with pytest.raises(ValueError, match="bias"):
        Deviation("x", "a", "b", "why", "maybe")


def test_declared_scikit_learn_defaults_are_the_installed_package_defaults():
    import sklearn
    import sklearn.decomposition as decomposition

    for name in methods.methods_of_family("classical"):
        origin = ALL[name].origin
        assert sklearn.__version__ in origin.source, (name, origin.source)
        estimator = origin.source.split("sklearn.decomposition.")[1].rstrip(")")
        signature = inspect.signature(getattr(decomposition, estimator).__init__).parameters
        for key, value in origin.defaults.items():
            assert signature[key].default == value, (name, key, signature[key].default, value)


def test_docs_baselines_is_generated_from_the_registry():
    text = (ROOT / "docs" / "baselines.md").read_text()
    assert text == render(ROOT), "docs/baselines.md is stale: run `python -m livaebench.provenance`"
    for name in (*PAPER_BASELINES, *methods.methods_of_family("livae"), *methods.methods_of_family("ablation")):
        assert f"### `{name}`" in text, name


def test_markdown_lists_parameters_and_deviations():
    origin = Origin("Some paper", "https://example.org/repo", {"epochs": 5000}, budget="5,000 epochs")
    method = Method("toy", "deep_rna", lambda ctx: {}, {"epochs": 200}, description="a toy", origin=origin,
                    deviations=(Deviation("epochs", "200", "5000", "two cores", "against"),))
    text = baselines_markdown({"toy": method}, [("config/config.yaml", "toy", "epochs", 200, 50)])
    assert "| `toy` | deep_rna | Some paper | 0 / 1 / 0 / 0 |" in text
    assert "| `epochs` | 200 ≠ | 5000 |" in text
    assert "| epochs | 200 | 5000 | two cores | against (may penalise the method) |" in text
    assert "| `config/config.yaml` | `toy` | `epochs` | 200 | 50 |" in text
