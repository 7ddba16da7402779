"""The comparison families of the study: the paper's, defined once from the method registry, plus the user's.

Each family is one statistics table (``results/stats/{name}.tsv``) and its figures. The paper's
families (docs/methods.md §4) name their baselines through registry families wherever the paper
compares against a whole family, so that a method registered in a family joins its comparison
without a second list to keep in step.

A spec is a plain dict (it travels through Snakemake params): ``reference``, ``baselines``,
``modality`` (rna | atac | any), ``test`` (auto | none), ``correction`` (pairs | baselines),
optional ``metrics``, ``datasets``, ``batch_only``, ``sweep`` + ``sweep_parameter``, ``figure``, and
for a family that is one setting panel of a paper figure (Figs. 2, 7–10) that ``panel``'s letter. Which
metrics each figure panel shows is defined in :mod:`livaebench.panels`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .config import check_name
from .errors import InputError, choose_from
from .methods import all_methods, methods_of_family
from .methods.controls import FAMILY as CONTROL_FAMILY
from .methods.registry import METHODS_LISTED
from .panels import ILISI_POOLED, PIPELINE_METRICS, SUBSAMPLED

SPEC_DEFAULTS: dict[str, Any] = {"modality": "any", "test": "auto", "correction": "pairs"}


def _spec(figure: str, reference: str, baselines: Iterable[str], **extra) -> dict[str, Any]:
    return {**SPEC_DEFAULTS, "figure": figure, "reference": reference, "baselines": list(baselines), **extra}


def _sweep(figure: str, parameter: str, values: Mapping[str, float], reference_value: float,
           panel: str) -> dict[str, Any]:
    """A sensitivity family: the sweep's methods against livae (which is the sweep's default value)."""
    sweep = {"livae": reference_value, **values}
    baselines = [m for m in values if m != "livae" and values[m] != reference_value]
    return _spec(figure, "livae", baselines, modality="rna", test="none", sweep=sweep, sweep_parameter=parameter,
                 panel=panel)


def paper_comparisons() -> dict[str, dict[str, Any]]:
    """The paper's figures and tables as comparison families (names are stable: they become paths)."""
    registered = all_methods()

    def values(prefix: str, key: str) -> dict[str, float]:
        return {name: float(m.defaults[key]) for name, m in registered.items()
                if m.family == "sweep" and name.startswith(prefix)}

    return {
        "fig2_livae_vs_vae_ivae_rna": _spec("Fig. 2 / Table 1", "livae", ["vae", "ivae"], modality="rna",
                                            panel="A"),
        "fig2_livae_vs_vae_ivae_atac": _spec("Fig. 2 / Table 1", "livae", ["vae", "ivae"], modality="atac",
                                             panel="B"),
        "fig3_livae_vs_classical": _spec("Fig. 3", "livae", methods_of_family("classical"), modality="rna"),
        "fig4_livae_vs_deep": _spec("Fig. 4", "livae",
                                    methods_of_family("vae_family") + methods_of_family("deep_rna"), modality="rna"),
        "fig5_livae_vs_graph_contrastive": _spec("Fig. 5", "livae", methods_of_family("graph_contrastive"),
                                                 modality="rna"),
        "fig6_livae_vs_atac_baselines": _spec("Fig. 6", "livae", methods_of_family("atac"), modality="atac"),
        "fig7_ivae_ablation": _spec("Fig. 7 / Table 6", "ivae", ["ivae_nomain", "ivae_nobn"], modality="rna",
                                    test="none", panel="A"),
        "fig7_livae_ablation": _spec("Fig. 7 / Table 6", "livae", ["livae_nomain", "livae_nobn"], modality="rna",
                                     test="none", panel="B"),
        "fig8_bn_vs_views_rna": _spec("Fig. 8 / Table 7", "livae", ["livae_views"], modality="rna", panel="A"),
        "fig8_bn_vs_views_atac": _spec("Fig. 8 / Table 7", "livae", ["livae_views"], modality="atac",
                                        panel="B"),
        "fig9_likelihoods_rna": _spec("Fig. 9 / Table 8", "livae_nb", ["livae_zinb", "livae_poisson", "livae_zip"],
                                      modality="rna", test="none", panel="A"),
        "fig9_likelihoods_atac": _spec("Fig. 9 / Table 8", "livae_zinb", ["livae_nb", "livae_poisson", "livae_zip"],
                                       modality="atac", test="none", panel="B"),
        "fig10_sweep_lambda": _sweep("Fig. 10", "λ (Lorentz weight)", values("livae_lambda", "lam"), 10.0, "A"),
        "fig10_sweep_bottleneck": _sweep("Fig. 10", "k (bottleneck dimension)", values("livae_k", "bottleneck_dim"),
                                         2.0, "B"),
        "fig10_sweep_latent": _sweep("Fig. 10", "d (latent dimension)", values("livae_d", "latent_dim"), 10.0, "C"),
        # Table 10: iLISI pooled over dataset × subsample size (the paper's replicate), then per size, on
        # all cells, and the pipelines (computed once per dataset: the dataset is their replicate).
        "fig11_multibatch": _spec("Fig. 11 / Table 10", "livae", ["scvi", "scdhmap", "scdeepcluster", "scgnn", "scgcc"],
                                  modality="rna", batch_only=True,
                                  metrics=[ILISI_POOLED, SUBSAMPLED, "iLISI", *PIPELINE_METRICS]),
    }


def check_comparisons(specs: Mapping[str, Mapping[str, Any]], source: str = "config") -> None:
    """Every method a comparison names must be registered (a typo is an error, not a silent skip)."""
    registered = all_methods()
    for name, spec in specs.items():
        for method in [spec["reference"], *spec["baselines"], *(spec.get("sweep") or {})]:
            if method not in registered:
                raise InputError(f"{source}: comparison '{name}'", f"'{method}' is not a registered method",
                                 choose_from(method, sorted(registered), METHODS_LISTED))
        controls = [m for m in [spec["reference"], *spec["baselines"], *(spec.get("sweep") or {})]
                    if registered[m].family == CONTROL_FAMILY]
        if controls:  # a control fixes the summary's scale (docs/methods.md §8); it is not a competitor
            raise InputError(f"{source}: comparison '{name}'", f"'{controls[0]}' is a control method",
                             "compare methods only; controls appear in results/summary/ instead")
        if spec["reference"] in spec["baselines"]:
            raise InputError(f"{source}: comparison '{name}'", f"reference '{spec['reference']}' is also a baseline",
                             "remove it from the baselines")


def configured_comparisons(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The paper's families the config selects (``paper_comparisons``) plus its own (``comparisons``)."""
    paper = paper_comparisons()
    chosen = config.get("paper_comparisons", "all")
    if chosen == "all":
        chosen = list(paper)
    unknown = [name for name in chosen if name not in paper]
    if unknown:
        raise InputError("config: key 'paper_comparisons'", f"'{unknown[0]}' is not one of the paper's comparisons",
                         f"use 'all' or a list of them; {choose_from(unknown[0], paper, 'config/README.md')}")
    for name in config.get("comparisons") or {}:
        check_name("comparison", name)  # the name becomes a path
    own = {name: {**SPEC_DEFAULTS, **spec} for name, spec in (config.get("comparisons") or {}).items()}
    clash = sorted(set(own) & set(chosen))
    if clash:
        raise InputError(f"config: comparison '{clash[0]}'", "has the name of one of the paper's comparisons",
                         "rename it")
    specs = {**{name: paper[name] for name in chosen}, **own}
    check_comparisons(specs)
    return specs
