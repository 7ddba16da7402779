"""An unknown name in the config: the error suggests the closest registered names instead of listing all of
them, and a dataset name in a per-dataset config key follows one rule for every such key (a typo of a
registered dataset stops the run, naming the key and the closest names; a dataset of another registry is
ignored with a warning)."""
from __future__ import annotations

import difflib

import pytest

from livaebench.comparisons import configured_comparisons
from livaebench.config import _edits, registered_datasets
from livaebench.errors import LISTED_CHOICES, InputError, choose_from
from livaebench.methods import all_methods, check_method_params, get_method
from workflow_helpers import RESOURCES, snakemake, write_config, write_registry

METHODS = sorted(all_methods())


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def test_a_short_list_is_given_whole_and_a_long_one_by_its_closest_names():
    assert choose_from("x", ["a", "b", "c"], "nowhere") == "use one of: a, b, c"
    assert len(METHODS) > LISTED_CHOICES
    fix = choose_from("Dipvea", METHODS, "docs/baselines.md")
    suggested = fix.removeprefix("did you mean ").split("?")[0].replace(" or ", ", ").split(", ")
    suggested = [s.strip("'") for s in suggested]
    # brute force: the suggestions are the most similar registered names, best first
    best = sorted(METHODS, key=lambda m: -_ratio("Dipvea", m))[:len(suggested)]
    assert suggested == best and suggested[0] == "dipvae"
    assert f"docs/baselines.md lists all {len(METHODS)}" in fix
    assert choose_from("zzzzzz", METHODS, "docs/baselines.md") == f"use a name from docs/baselines.md ({len(METHODS)} in all)"


@pytest.mark.parametrize("bad", [
    lambda: get_method("livea"),
    lambda: check_method_params({"livea": {}}),
    lambda: configured_comparisons({"paper_comparisons": [], "comparisons": {
        "mine": {"reference": "livea", "baselines": ["pca"], "modality": "any"}}}),
])
def test_an_unknown_method_gets_suggestions_not_the_registry(bad):
    with pytest.raises(InputError) as err:
        bad()
    message = str(err.value)
    assert "did you mean 'livae'" in message and "\n" not in message
    assert sum(name in message.replace("'", " ").split() for name in METHODS) <= 3  # not all 52


def test_an_unknown_parameter_and_comparison_get_suggestions():
    with pytest.raises(InputError, match=r"unknown parameter 'epoch' of method 'livae'. Fix: did you mean 'epochs'"):
        check_method_params({"livae": {"epoch": 3}})
    with pytest.raises(InputError, match=r"did you mean 'fig3_livae_vs_classical'"):
        configured_comparisons({"paper_comparisons": ["fig3_livae_vs_clasical"]})


def test_edit_counts_by_hand():
    for a, b, n in (("pancraes", "pancreas", 1), ("ab", "ba", 1), ("kitten", "sitting", 3), ("", "abc", 3),
                    ("pancreas", "geo_pancreas", 4), ("atac_bmm", "atac_bmmc", 1), ("same", "same", 0)):
        assert _edits(a, b) == _edits(b, a) == n, (a, b)


def test_registered_datasets_keeps_ignores_or_stops():
    registry = ["pancreas", "cellbench", "atac_bmmc"]
    assert registered_datasets("k", ["cellbench", "rna_GSE132188"], registry) == (["cellbench"], ["rna_GSE132188"])
    # another registry's name that merely contains a registered one is no typo (4 edits)
    assert registered_datasets("k", ["pancreas"], ["geo_pancreas", "cellbench"]) == ([], ["pancreas"])
    for typo, meant in (("pancraes", "pancreas"), ("Cellbench", "cellbench"), ("atac_bmm", "atac_bmmc"),
                        ("pancreaz", "pancreas")):
        with pytest.raises(InputError, match=rf"key 'analyses.x.datasets': '{typo}' is not in the dataset registry. "
                                             rf"Fix: did you mean '{meant}'"):
            registered_datasets("analyses.x.datasets", [typo], registry)


def _registry(tmp_path):
    return write_registry(tmp_path / "datasets.tsv", [dict(
        dataset="pancreas", modality="rna", source="file", path=RESOURCES / "pancreas.h5ad", label_key="clusters",
        max_cells=200)])


@pytest.mark.parametrize("analyses", [
    {"diffvae": {"datasets": ["pancraes"]}},
    {"unicoord": {"datasets": ["pancraes"]}},
    {"interpretability": {"datasets": ["pancraes"]}},
])
def test_a_typo_in_any_analysis_dataset_list_stops_the_plan(tmp_path, analyses):
    (name, settings), = analyses.items()
    config = write_config(tmp_path, datasets=str(_registry(tmp_path)), methods=["pca", "livae", "diffvae"],
                          analyses=analyses)
    result = snakemake(tmp_path, config, "-n", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (f"key 'analyses.{name}.datasets': 'pancraes' is not in the dataset registry. "
            "Fix: did you mean 'pancreas'?") in output, output[-2000:]


def test_a_dataset_of_another_registry_is_ignored_with_a_warning(tmp_path):
    analyses = {"interpretability": {"datasets": ["rna_GSE132188"]}, "unicoord": {"datasets": ["rna_GSE132188"]}}
    config = write_config(tmp_path, datasets=str(_registry(tmp_path)), methods=["pca"], analyses=analyses)
    result = snakemake(tmp_path, config, "-n", "--quiet", "rules", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    for key in ("analyses.interpretability.datasets", "analyses.unicoord.datasets"):
        assert f"key '{key}' names dataset(s) not in the registry" in output and "rna_GSE132188" in output
    assert "interpret_components" not in output and "unicoord_" not in output


def test_a_typo_in_a_comparisons_datasets_stops_the_plan(tmp_path):
    comparisons = {"mine": {"reference": "pca", "baselines": ["nmf"], "datasets": ["pancraes"]}}
    config = write_config(tmp_path, datasets=str(_registry(tmp_path)), methods=["pca", "nmf"],
                          paper_comparisons=[], comparisons=comparisons)
    result = snakemake(tmp_path, config, "-n", timeout=300)
    assert result.returncode != 0
    assert "key 'comparisons.mine.datasets': 'pancraes' is not in the dataset registry" in result.stdout + result.stderr
