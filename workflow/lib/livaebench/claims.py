"""The LiVAE paper's headline claims as data, and what a finished study says about each (docs/methods.md §4.7).

A :class:`Claim` names what the paper asserts (a short paraphrase, where it says it), the comparison
families whose statistics tables (``results/stats/{family}.tsv``, :mod:`livaebench.stats`) hold the
evidence, the metrics and baselines it is about, and the direction it claims:

* ``better`` — the reference beats the baselines on those metrics;
* ``worse`` — the paper concedes that the baselines beat the reference there;
* ``comparable`` — the reference is not worse (the paper's "comparable", "statistically equivalent");
* ``top`` — a claim about ranks: the reference is among the best methods of the modality's ranked summary
  (``results/summary/{modality}_scores.tsv``, docs/methods.md §8).

:func:`evaluate_claims` reads the evidence and gives each claim a verdict by the rule below (``VERDICT_RULE``
is the same text, printed in ``claims.md``). Definitions, for the (metric, baseline) rows of a claim's
families cut to its metrics and baselines:

* **oriented Δ** = Δ (reference − baseline mean) for a higher-is-better metric, −Δ for DAV
  (``stats.LOWER_IS_BETTER``): positive = the reference is better.
* A row is **in the claimed direction** when its oriented Δ is > 0 (``better``, ``comparable``) or < 0
  (``worse``), **against** when strictly opposite.
* A row is **tested** when its stats row has a finite adjusted p-value (the ``test`` column is neither
  ``none`` nor ``insufficient: …``); **significant** when that p < ``ALPHA`` (p-values are already
  adjusted for the family's multiple comparisons, docs/methods.md §4.3).

Verdicts (``better`` and ``worse``):

* **not testable here** — no tested row: the families are not in this run, every row is
  ``insufficient`` (the reason is given), or the paper reports Δ only (``test: none``, Figs. 7, 9, 10).
  The direction of Δ is still reported.
* **does not hold** — a row is significant against the claim; or no row is significant for it while more
  than half of the rows with a Δ are against it.
* **holds** — at least half of the tested rows are significant in the claimed direction, none against.
* **inconclusive** — otherwise. When every tested row is on the Wilcoxon path and its smallest attainable
  adjusted p-value (exact test, n non-zero differences: ``factor · 2^(1−n)``) is ≥ ``ALPHA``, the reason
  says that no row could have reached significance at this n.

``comparable``: not testable here as above; **does not hold** when a row is significant against the
reference; **inconclusive** when no tested row could have reached significance (as above: a null result
that carries no evidence); **holds** otherwise. This is not an equivalence test: "holds" means no
significant difference against the reference was found by a test that could have found one.

``top`` (ranks; Friedman test and Nemenyi critical difference CD over the datasets on which every method
ranks, :func:`livaebench.summary.cd_analysis`, among the reference and the paper's baselines — LiVAE's own
variants and the controls left out): not testable here without a summary for the modality, without the
reference in it, or with fewer than ``summary.FEW_DATASETS`` complete datasets (docs/methods.md §8.4: the CD
diagram is then a scale, not evidence); **does not hold** when a method's mean rank is better than the
reference's by more than the CD while Friedman's p < ``ALPHA``; **holds** when the reference's mean rank
is in the top third of the k methods and none is significantly better; **inconclusive** otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .panels import ILISI_POOLED, PIPELINE_METRICS
from .results import METRIC_GROUPS
from .stats import LOWER_IS_BETTER, PATH_FRIEDMAN, PATH_WILCOXON, UNBOUNDED_METRICS, bonferroni_factor

ALPHA = 0.05
DIRECTIONS = ("better", "worse", "comparable", "top")
HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE = "holds", "does not hold", "inconclusive", "not testable here"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE)
# The paper's baselines in a ranked summary: the reference's own variants (ablations, likelihoods, sweeps)
# and the analysis models are left out, so a claim about LiVAE against the field is checked against the field.
RANK_FAMILIES = ("livae", "classical", "vae_family", "deep_rna", "graph_contrastive", "atac")

CLAIM_COLUMNS = ["claim_id", "claim", "source", "direction", "checked_on", "metrics", "baselines", "n_pairs",
                 "n_tested", "n_for", "n_against", "share_for", "mean_delta", "delta_by_metric", "tests",
                 "n_datasets", "min_p", "median_p", "n_significant_for", "n_significant_against", "verdict",
                 "reason"]

# metric groups by short name (the paper's categories, livaebench.results.METRIC_GROUPS)
CLUSTERING = tuple(METRIC_GROUPS["Clustering quality"])
UMAP = tuple(METRIC_GROUPS["UMAP embedding fidelity"])
TSNE = tuple(METRIC_GROUPS["t-SNE embedding fidelity"])
MANIFOLD = tuple(METRIC_GROUPS["Latent manifold structure"])
INTRINSIC = tuple(METRIC_GROUPS["Intrinsic quality and robustness"])
ALL_METRICS = CLUSTERING + UMAP + TSNE + MANIFOLD + INTRINSIC
GROUP_NAMES = {CLUSTERING: "clustering", UMAP: "UMAP fidelity", TSNE: "t-SNE fidelity",
               MANIFOLD: "manifold structure", INTRINSIC: "intrinsic quality and robustness",
               ALL_METRICS: "every metric of the panel"}

FIG2 = ("fig2_livae_vs_vae_ivae_rna", "fig2_livae_vs_vae_ivae_atac")
FIG7 = ("fig7_ivae_ablation", "fig7_livae_ablation")
FIG8 = ("fig8_bn_vs_views_rna", "fig8_bn_vs_views_atac")
VS_FIELD = ("fig3_livae_vs_classical", "fig4_livae_vs_deep", "fig5_livae_vs_graph_contrastive",
            "fig6_livae_vs_atac_baselines")
LEIDEN_PIPELINES = tuple(m for m in PIPELINE_METRICS if "L" in m.split("_")[0])
PIPELINE_ARI = tuple(m for m in PIPELINE_METRICS if m.endswith("_ARI"))


@dataclass(frozen=True)
class Claim:
    """One headline claim of the paper: what it says (paraphrased), where, and what in the study checks it."""

    id: str
    text: str
    source: str
    direction: str
    families: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()  # empty: every baseline of the families
    modality: str = ""  # `top` claims: the ranked summary they read
    reference: str = "livae"  # `top` claims: the method ranked

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction '{self.direction}' is not one of {DIRECTIONS}")


def _c(id, text, source, direction, families, metrics, baselines=()):
    families = (families,) if isinstance(families, str) else tuple(families)
    return Claim(id, text, source, direction, families, tuple(metrics), tuple(baselines))


# The claims are paraphrases of the paper's abstract, results (§3.1–3.10) and discussion; its figure/table
# numbers are those of comparisons.paper_comparisons().
CLAIMS: tuple[Claim, ...] = (
    # abstract and introduction
    _c("abstract_global_topology", "LiVAE preserves global topology better than the baseline methods "
       "(distance correlation and global co-ranking quality of the UMAP and t-SNE views)",
       "Abstract; §1; §4", "better", VS_FIELD, ("umap_dcorr", "umap_qglobal", "tsne_dcorr", "tsne_qglobal")),
    _c("abstract_noise_resilience", "LiVAE is more robust to noise than every baseline family",
       "Abstract; §1; §4", "better", (*FIG2, *VS_FIELD), ("noise_resilience",)),
    _c("abstract_latent_geometry", "LiVAE's latent manifold geometry is richer than the baselines' "
       "(dimensionality, spectral decay, participation, anisotropy)",
       "Abstract; §4", "better", VS_FIELD, MANIFOLD),
    _c("abstract_local_competitive", "LiVAE stays competitive on local structure (local co-ranking quality "
       "not worse than the baselines')", "Abstract; §1; §4", "comparable", VS_FIELD,
       ("umap_qlocal", "tsne_qlocal")),
    # §3.1, Fig. 2 / Table 1
    _c("fig2_rna_all_metrics", "The full LiVAE improves on VAE and iVAE on nearly every metric (scRNA-seq)",
       "§3.1, Fig. 2A / Table 1", "better", FIG2[0], ALL_METRICS),
    _c("fig2_atac_all_metrics", "The full LiVAE improves on VAE and iVAE on nearly every metric (scATAC-seq)",
       "§3.1, Fig. 2B / Table 1", "better", FIG2[1], ALL_METRICS),
    _c("fig2_robustness", "Its largest gain over VAE and iVAE is robustness: higher noise resilience and overall "
       "intrinsic quality, in both modalities", "§3.1, Fig. 2 / Table 1", "better", FIG2,
       ("noise_resilience", "overall_intrinsic")),
    _c("fig2_geometry", "Over VAE and iVAE, the latent manifold structure improves (participation, "
       "dimensionality, spectral decay, anisotropy) and UMAP distance correlation rises, in both modalities",
       "§3.1, Fig. 2 / Table 1", "better", FIG2, (*MANIFOLD, "umap_dcorr")),
    _c("fig2_rna_clustering", "Over VAE and iVAE on scRNA-seq, cluster compactness (CAL) and latent coupling "
       "(COR) increase", "§3.1, Fig. 2A / Table 1", "better", FIG2[0], ("CAL", "COR")),
    # §3.2, Fig. 3 / Table 2
    _c("fig3_global_fidelity", "Against the seven classical methods LiVAE has higher distance correlation and "
       "overall embedding quality in both 2-D views", "§3.2, Fig. 3A-B / Table 2", "better",
       "fig3_livae_vs_classical", ("umap_dcorr", "umap_overall", "tsne_dcorr", "tsne_overall")),
    _c("fig3_manifold", "All four latent manifold scores beat the classical methods",
       "§3.2, Fig. 3C / Table 2", "better", "fig3_livae_vs_classical", MANIFOLD),
    _c("fig3_robustness", "Noise resilience and overall intrinsic quality exceed every classical method",
       "§3.2, Fig. 3D / Table 2", "better", "fig3_livae_vs_classical", ("noise_resilience", "overall_intrinsic")),
    _c("fig3_local_equivalent", "UMAP local quality is statistically equivalent to PCA, kernel PCA, FA, NMF and "
       "truncated SVD", "§3.2, Fig. 3A / Table 2", "comparable", "fig3_livae_vs_classical", ("umap_qlocal",),
       ("pca", "kernelpca", "factoranalysis", "nmf", "truncatedsvd")),
    _c("fig3_local_dicl_ica", "Dictionary learning and ICA have slightly higher UMAP local quality than LiVAE "
       "(a concession)", "§3.2, Fig. 3A / Table 2", "worse", "fig3_livae_vs_classical", ("umap_qlocal",),
       ("dictionarylearning", "fastica")),
    # §3.3, Fig. 4 / Table 3
    _c("fig4_robustness", "Noise resilience and overall intrinsic quality exceed all eight deep generative "
       "models", "§3.3, Fig. 4D / Table 3", "better", "fig4_livae_vs_deep",
       ("noise_resilience", "overall_intrinsic")),
    _c("fig4_umap_overall", "UMAP overall quality is higher than every deep generative model's",
       "§3.3, Fig. 4A / Table 3", "better", "fig4_livae_vs_deep", ("umap_overall",)),
    _c("fig4_umap_dcorr", "UMAP distance correlation is higher than the deep models' except scTour's",
       "§3.3, Fig. 4A / Table 3", "better", "fig4_livae_vs_deep", ("umap_dcorr",),
       ("betavae", "betatcvae", "dipvae", "infovae", "scdeepcluster", "scdhmap", "scvi")),
    _c("fig4_sctour_dcorr", "scTour's UMAP distance correlation is statistically equivalent to LiVAE's",
       "§3.3, Fig. 4A / Table 3", "comparable", "fig4_livae_vs_deep", ("umap_dcorr",), ("sctour",)),
    _c("fig4_participation", "The participation ratio exceeds every deep generative model's",
       "§3.3, Fig. 4C / Table 3", "better", "fig4_livae_vs_deep", ("participation",)),
    _c("fig4_scdhmap_anisotropy", "scDHMap has higher anisotropy than LiVAE (a concession)",
       "§3.3, Fig. 4C / Table 3", "worse", "fig4_livae_vs_deep", ("anisotropy",), ("scdhmap",)),
    # §3.4, Fig. 5 / Table 4
    _c("fig5_local_quality", "UMAP local quality is significantly higher than CLEAR's, scGNN's and scGCC's",
       "§3.4, Fig. 5A / Table 4", "better", "fig5_livae_vs_graph_contrastive", ("umap_qlocal",)),
    _c("fig5_global_fidelity", "Distance correlation and overall quality of the UMAP view, and overall t-SNE "
       "quality, are higher than the graph/contrastive methods'", "§3.4, Fig. 5A-B / Table 4", "better",
       "fig5_livae_vs_graph_contrastive", ("umap_dcorr", "umap_overall", "tsne_overall")),
    _c("fig5_robustness", "Noise resilience and overall intrinsic quality exceed the graph/contrastive methods'",
       "§3.4, Fig. 5D / Table 4", "better", "fig5_livae_vs_graph_contrastive",
       ("noise_resilience", "overall_intrinsic")),
    _c("fig5_manifold_clear", "Every latent manifold score beats CLEAR's", "§3.4, Fig. 5C / Table 4", "better",
       "fig5_livae_vs_graph_contrastive", MANIFOLD, ("clear",)),
    _c("fig5_scgnn_anisotropy", "scGNN has higher anisotropy than LiVAE (a concession)",
       "§3.4, Fig. 5C / Table 4", "worse", "fig5_livae_vs_graph_contrastive", ("anisotropy",), ("scgnn",)),
    # §3.5, Fig. 6 / Table 5
    _c("fig6_lsi_peakvi", "On scATAC-seq LiVAE beats LSI and PeakVI in every metric category",
       "§3.5, Fig. 6 / Table 5", "better", "fig6_livae_vs_atac_baselines", ALL_METRICS, ("lsi", "peakvi")),
    _c("fig6_poissonvi", "Against PoissonVI, LiVAE has higher core and overall intrinsic quality, "
       "directionality, noise resilience and UMAP distance correlation", "§3.5, Fig. 6 / Table 5", "better",
       "fig6_livae_vs_atac_baselines",
       ("core_intrinsic", "overall_intrinsic", "directionality", "noise_resilience", "umap_dcorr"), ("poissonvi",)),
    # §3.6, Fig. 7 / Table 6 (Δ only)
    _c("fig7_bottleneck_geometry", "Removing the bottleneck pathway damages geometry: the full model has higher "
       "participation, UMAP distance correlation and overall UMAP quality than the model without it",
       "§3.6, Fig. 7 / Table 6", "better", FIG7, ("participation", "umap_dcorr", "umap_overall"),
       ("ivae_nobn", "livae_nobn")),
    _c("fig7_main_clustering", "Removing the main pathway collapses supervised clustering: the full model has "
       "higher NMI, ARI and CAL than the model without it", "§3.6, Fig. 7 / Table 6", "better", FIG7,
       ("NMI", "ARI", "CAL"), ("ivae_nomain", "livae_nomain")),
    _c("fig7_full_model", "The full model outperforms every simplified variant", "§3.6, Fig. 7 / Table 6",
       "better", FIG7, ALL_METRICS),
    # §3.7, Fig. 8 / Table 7
    _c("fig8_bn_all_metrics", "Anchoring the Lorentz term to the bottleneck beats two sampled views in every "
       "metric category, in both modalities", "§3.7, Fig. 8 / Table 7", "better", FIG8, ALL_METRICS),
    _c("fig8_bn_robustness", "The bottleneck anchor raises noise resilience, overall intrinsic quality and "
       "participation, in both modalities", "§3.7, Fig. 8 / Table 7", "better", FIG8,
       ("noise_resilience", "overall_intrinsic", "participation")),
    # §3.8, Fig. 9 / Table 8 (Δ only)
    _c("fig9_nb_best_rna", "NB is the best likelihood for scRNA-seq (noise resilience, overall intrinsic "
       "quality, CAL, COR, overall UMAP quality over ZINB, Poisson and ZIP)", "§3.8, Fig. 9A / Table 8",
       "better", "fig9_likelihoods_rna", ("noise_resilience", "overall_intrinsic", "CAL", "COR", "umap_overall")),
    _c("fig9_zinb_best_atac", "ZINB is the best likelihood for scATAC-seq (noise resilience, participation, COR, "
       "overall intrinsic quality over NB, Poisson and ZIP)", "§3.8, Fig. 9B / Table 8; §4", "better",
       "fig9_likelihoods_atac", ("noise_resilience", "participation", "COR", "overall_intrinsic")),
    # §3.9, Fig. 10 / Table 9 (Δ only)
    _c("fig10_lambda", "A stronger Lorentz weight (λ = 10 against 1 and 5) improves overall intrinsic quality, "
       "noise resilience, directionality, participation, CAL and overall UMAP quality", "§3.9, Fig. 10A / Table 9",
       "better", "fig10_sweep_lambda",
       ("overall_intrinsic", "noise_resilience", "directionality", "participation", "CAL", "umap_overall")),
    _c("fig10_bottleneck", "A bottleneck of k = 2 is best on the unsupervised scores (CAL, overall UMAP and "
       "t-SNE quality, participation)", "§3.9, Fig. 10B / Table 9", "better", "fig10_sweep_bottleneck",
       ("CAL", "umap_overall", "tsne_overall", "participation")),
    _c("fig10_latent", "Latent dimensions above d = 10 lower cluster compactness (CAL) and latent coupling (COR)",
       "§3.9, Fig. 10C / Table 9", "better", "fig10_sweep_latent", ("CAL", "COR"), ("livae_d15", "livae_d20")),
    # §3.10, Fig. 11 / Table 10; discussion
    _c("fig11_ilisi_vs_scvi", "Without batch labels LiVAE mixes batches as well as scVI (iLISI)",
       "§3.10, Fig. 11B; §4", "comparable", "fig11_multibatch", (ILISI_POOLED, "iLISI"), ("scvi",)),
    _c("fig11_ilisi_vs_specialized", "LiVAE's batch mixing is comparable to the specialized methods' (iLISI "
       "against scVI, scDHMap, scDeepCluster, scGNN, scGCC)", "§3.10, Fig. 11B", "comparable", "fig11_multibatch",
       (ILISI_POOLED, "iLISI")),
    _c("fig11_pipelines_ari", "In the clustering pipelines LiVAE outperforms scDeepCluster and scGCC on ARI",
       "§3.10, Fig. 11C / Table 10", "better", "fig11_multibatch", PIPELINE_ARI, ("scdeepcluster", "scgcc")),
    _c("fig11_scvi_leiden", "scVI is more accurate than LiVAE in the Leiden-based pipelines (a concession)",
       "§3.10, Fig. 11C / Table 10", "worse", "fig11_multibatch", LEIDEN_PIPELINES, ("scvi",)),
    # ranks (§3.3 "top-tier general-purpose embedding"; §3.5 "powerful tool for scATAC-seq")
    Claim("rank_rna_top_tier", "LiVAE is a top-tier general-purpose embedding of scRNA-seq data (ranked "
          "summary over the paper's baselines)", "§3.3; §4", "top", modality="rna"),
    Claim("rank_atac_top_tier", "LiVAE is a strong embedding of scATAC-seq data (ranked summary over the "
          "paper's baselines)", "§3.5; §4", "top", modality="atac"),
)


VERDICT_RULE = """\
Rows: the (metric, baseline) pairs of the claim's comparison families (`results/stats/{{family}}.tsv`), cut to the
claim's metrics and baselines. **Oriented Δ** = Δ (reference − baseline, mean over datasets) for a
higher-is-better metric and −Δ for DAV (lower is better): positive = the reference is better. A row is **in the
claimed direction** when its oriented Δ is > 0 (claims that the reference is better or comparable) or < 0 (the
paper's concessions, that a baseline is better), **against** when strictly opposite. A row is **tested** when it
has an adjusted p-value (its `test` is neither `none` nor `insufficient: …`) and **significant** when that p is
below α = {alpha} (p-values are already adjusted for the family's multiple comparisons, docs/methods.md §4.3).

| verdict | a claim that one side is better | a claim that the reference is comparable |
|---|---|---|
| not testable here | no tested row: the family is not in this run, every row is `insufficient` (reason given), or the paper reports Δ only (Figs. 7, 9, 10: `test none`); the direction of Δ is still given | same |
| does not hold | a row significant against the claim; or no row significant for it while more than half of the rows are against it | a row significant against the reference |
| holds | at least half of the tested rows significant in the claimed direction, none against | no row significant against the reference, and at least one tested row could have reached α |
| inconclusive | otherwise | no tested row could have reached α |

"Could have reached α": a row on the Bonferroni-corrected Wilcoxon path with n non-zero differences cannot have
an adjusted p below factor · 2^(1−n) (exact two-sided test), where factor is k(k−1)/2 for k methods; the
reason says when that floor is ≥ α for every tested row (the test had no power at this n). A Tukey row has no
such floor. "Comparable" is not an equivalence test: "holds" means no significant difference against the
reference was found by a test that could have found one.

Claims about ranks (the ranked summary, docs/methods.md §8): the reference and the paper's baselines (LiVAE's
own variants and the controls left out), ranked by overall score on each dataset where all of them ran;
Friedman's test and the Nemenyi critical difference (CD). Not testable here with fewer than {few} such
datasets (the CD diagram is then a scale, not evidence); does not hold when a method's mean rank is better than
the reference's by more than the CD while Friedman's p < α; holds when the reference's mean rank is in the top
third of the k methods and none is significantly better; inconclusive otherwise.
"""


# ---------------------------------------------------------------------------------------------------------
# Reading the evidence


def read_stats(path: str | Path) -> pd.DataFrame:
    """One ``results/stats/{family}.tsv`` (missing values NA; the text columns stay text)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "statistics table not found",
                         "run the compare rule first (snakemake results/stats/{family}.tsv)")
    table = pd.read_csv(path, sep="\t", keep_default_na=False, na_values={"delta": ["NA", "NaN", "nan", ""],
                                                                          "p_value": ["NA", "NaN", "nan", ""]},
                        dtype={"metric": str, "reference": str, "baseline": str, "test": str, "stars": str})
    needed = {"metric", "reference", "baseline", "delta", "p_value", "test", "n_datasets"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise InputError(str(path), f"is not a statistics table (no column {', '.join(missing)})",
                         "pass results/stats/{family}.tsv as written by the compare rule")
    return table


def read_scores(path: str | Path) -> pd.DataFrame:
    """One ``results/summary/{modality}_scores.tsv``."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "summary scores table not found", "run the summary rule first")
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values={"raw": ["NA", ""], "scaled": ["NA", ""]},
                       dtype={"dataset": str, "method": str, "family": str, "control": str, "category": str,
                              "metric": str})


def load_evidence(results: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The statistics tables (family → table, from ``results/stats/``; the fairness table is not one) and the
    summary scores (modality → table) of a finished run's results folder."""
    results = Path(results)
    stats = {p.stem: read_stats(p) for p in sorted((results / "stats").glob("*.tsv")) if p.stem != "fairness"}
    scores = {p.name.removesuffix("_scores.tsv"): read_scores(p)
              for p in sorted((results / "summary").glob("*_scores.tsv"))}
    return stats, scores


# ---------------------------------------------------------------------------------------------------------
# Evaluation


def _is_tested(test: str, p: float) -> bool:
    test = str(test)
    return np.isfinite(p) and test != "none" and not test.startswith("insufficient")


def wilcoxon_floor(row: Mapping[str, Any], n_tested_baselines: int, correction: str = "pairs") -> float:
    """The smallest adjusted p-value the row's test could give (0 when it has no floor, e.g. Tukey)."""
    test = str(row["test"])
    if test not in (PATH_FRIEDMAN, PATH_WILCOXON):
        return 0.0
    n = int(row["n_datasets"])
    return min(1.0, bonferroni_factor(max(1, n_tested_baselines), correction) * 2.0 ** (1 - n))


def claim_rows(claim: Claim, stats: Mapping[str, pd.DataFrame],
               specs: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The stats rows of a claim (its families cut to its metrics and baselines) with ``oriented`` Δ, ``tested``
    and ``floor`` columns; and the claim's families absent from ``stats``."""
    specs = specs or {}
    parts, absent = [], []
    for family in claim.families:
        table = stats.get(family)
        if table is None:
            absent.append(family)
            continue
        # baselines the compare rule tested per metric (a baseline without any finished run has n = 0): the
        # Bonferroni factor of the Wilcoxon path counts them
        tested_per_metric = table[table["n_datasets"].astype(int) > 0].groupby("metric")["baseline"].nunique()
        rows = table[table["metric"].isin(claim.metrics)]
        if claim.baselines:
            rows = rows[rows["baseline"].isin(claim.baselines)]
        rows = rows.assign(family=family)
        correction = (specs.get(family) or {}).get("correction", "pairs")
        rows["floor"] = [wilcoxon_floor(r, int(tested_per_metric.get(r["metric"], 1)), correction)
                         for _, r in rows.iterrows()]
        parts.append(rows)
    if not parts:
        return pd.DataFrame(columns=["family", "metric", "baseline", "delta", "p_value", "test", "n_datasets",
                                     "oriented", "tested", "floor"]), absent
    rows = pd.concat(parts, ignore_index=True)
    sign = np.where(rows["metric"].isin(LOWER_IS_BETTER), -1.0, 1.0)
    rows["oriented"] = pd.to_numeric(rows["delta"], errors="coerce").to_numpy(float) * sign
    rows["p_value"] = pd.to_numeric(rows["p_value"], errors="coerce")
    rows["tested"] = [_is_tested(t, p) for t, p in zip(rows["test"], rows["p_value"])]
    return rows, absent


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "NA"
    if x != 0 and abs(x) >= 100:
        return f"{x:+.1f}"
    return f"{x:+.{digits}f}"


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "NA"
    if p == 0:
        return "<1e-15"  # scipy's studentized range underflows (docs/methods.md §4.6)
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}"


def _untestable_reason(rows: pd.DataFrame, absent: list[str], claim: Claim) -> str:
    if rows.empty:
        present = [f for f in claim.families if f not in absent]
        parts = [f"not in this run: {', '.join(absent)}"] if absent else []
        parts += [f"no rows of these metrics and baselines in {', '.join(present)}"] if present else []
        return "; ".join(parts)
    tests = rows["test"].astype(str)
    if (tests == "none").all():
        return "untested by design: the paper reports Δ only for this figure (test: none)"
    insufficient = tests[tests.str.startswith("insufficient")]
    if len(insufficient):
        counts = insufficient.value_counts()
        return f"every row insufficient ({counts.index[0]}" + (f"; {len(counts) - 1} other reasons" if len(counts) > 1
                                                                else "") + ")"
    return "no row has a p-value"


def _direction_phrase(n_for: int, n_against: int, n_pairs: int, claim: Claim) -> str:
    word = "the baseline better" if claim.direction == "worse" else "the reference better"
    return f"Δ has {word} in {n_for} of {n_pairs} rows ({n_against} the other way)"


def evaluate_claim(claim: Claim, stats: Mapping[str, pd.DataFrame], scores: Mapping[str, pd.DataFrame] | None = None,
                   specs: Mapping[str, Mapping[str, Any]] | None = None, alpha: float = ALPHA) -> dict[str, Any]:
    """One row of ``claims.tsv`` (columns ``CLAIM_COLUMNS``): the evidence and the verdict (module doc)."""
    if claim.direction == "top":
        return evaluate_rank_claim(claim, scores or {}, alpha)
    rows, absent = claim_rows(claim, stats, specs)
    out: dict[str, Any] = {"claim_id": claim.id, "claim": claim.text, "source": claim.source,
                           "direction": claim.direction,
                           "checked_on": ", ".join(f for f in claim.families if f not in absent) or "—",
                           "metrics": GROUP_NAMES.get(claim.metrics, ", ".join(claim.metrics)),
                           "baselines": ", ".join(claim.baselines) or "all"}
    finite = rows[np.isfinite(rows["oriented"])] if len(rows) else rows
    want = -1.0 if claim.direction == "worse" else 1.0
    n_pairs = len(finite)
    n_for = int((finite["oriented"] * want > 0).sum()) if n_pairs else 0
    n_against = int((finite["oriented"] * want < 0).sum()) if n_pairs else 0
    tested = rows[rows["tested"]] if len(rows) else rows
    significant = tested[tested["p_value"] < alpha] if len(tested) else tested
    sig_for = int((significant["oriented"] * want > 0).sum()) if len(significant) else 0
    sig_against = int((significant["oriented"] * want < 0).sum()) if len(significant) else 0
    bounded = finite[~finite["metric"].isin(UNBOUNDED_METRICS)] if n_pairs else finite
    by_metric = finite.groupby("metric", sort=False)["oriented"].mean() if n_pairs else pd.Series(dtype=float)
    n_sets = sorted(set(tested["n_datasets"].astype(int))) if len(tested) else []
    out.update(n_pairs=n_pairs, n_tested=len(tested), n_for=n_for, n_against=n_against,
               share_for=(n_for / n_pairs) if n_pairs else np.nan,
               mean_delta=float(bounded["oriented"].mean()) if len(bounded) else np.nan,
               delta_by_metric="; ".join(f"{m} {_fmt(v)}" for m, v in by_metric.items()),
               tests="; ".join(f"{t} ×{c}" for t, c in tested["test"].value_counts().items()) if len(tested)
               else ("none" if len(rows) and (rows["test"].astype(str) == "none").all() else "—"),
               n_datasets=("–".join(map(str, (n_sets[0], n_sets[-1]))) if len(n_sets) > 1
                           else (str(n_sets[0]) if n_sets else "")),
               min_p=float(tested["p_value"].min()) if len(tested) else np.nan,
               median_p=float(tested["p_value"].median()) if len(tested) else np.nan,
               n_significant_for=sig_for, n_significant_against=sig_against)
    direction = _direction_phrase(n_for, n_against, n_pairs, claim) if n_pairs else "no Δ"
    reachable = bool(len(tested)) and bool((tested["floor"] < alpha).any())
    floor_note = ""
    if len(tested) and not reachable:
        floor_note = (f"; no row could reach α = {alpha}: smallest attainable adjusted p "
                      f"{_fmt_p(float(tested['floor'].min()))} "
                      f"(Bonferroni-corrected Wilcoxon at n = {out['n_datasets']})")
    partial = f"; families not in this run: {', '.join(absent)}" if absent and len(rows) else ""
    untested = len(rows) - len(tested)
    partial += f"; {untested} of {len(rows)} rows without a test" if len(tested) and untested else ""

    if not len(tested):
        verdict, reason = UNTESTABLE, f"{_untestable_reason(rows, absent, claim)}; {direction}"
    elif claim.direction == "comparable":
        if sig_against:
            verdict, reason = FAILS, f"{sig_against} row(s) significantly against the reference"
        elif not reachable:
            verdict, reason = INCONCLUSIVE, "no significant difference, but none could have been detected"
        else:
            verdict, reason = HOLDS, "no row significantly against the reference (not an equivalence test)"
            if sig_for:
                reason += f"; {sig_for} row(s) significantly in the reference's favour"
        reason = f"{reason}; {direction}"
    else:
        if sig_against:
            verdict, reason = FAILS, f"{sig_against} row(s) significant against the claim"
        elif not sig_for and n_against > n_pairs / 2:
            verdict, reason = FAILS, "no row significant for the claim and Δ mostly against it"
        elif 2 * sig_for >= len(tested):
            verdict, reason = HOLDS, f"{sig_for} of {len(tested)} tested rows significant in the claimed direction"
        else:
            verdict, reason = INCONCLUSIVE, (f"{sig_for} of {len(tested)} tested rows significant in the claimed "
                                             "direction (fewer than half), none against")
        reason = f"{reason}; {direction}"
    out.update(verdict=verdict, reason=reason + (floor_note if verdict != UNTESTABLE else "") + partial)
    return out


def rank_methods(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores rows of the reference's competitors: the paper's baselines and LiVAE (``RANK_FAMILIES``),
    controls kept (they carry no rank)."""
    keep = scores["family"].isin(RANK_FAMILIES) | (scores["control"].astype(str) != "none")
    return scores[keep]


def evaluate_rank_claim(claim: Claim, scores: Mapping[str, pd.DataFrame], alpha: float = ALPHA) -> dict[str, Any]:
    from . import summary as sm

    out: dict[str, Any] = {"claim_id": claim.id, "claim": claim.text, "source": claim.source,
                           "direction": claim.direction, "checked_on": f"results/summary/{claim.modality}_scores.tsv",
                           "metrics": "overall score (rank per dataset)",
                           "baselines": "the paper's baselines in the summary", "tests": "friedman+nemenyi",
                           "n_tested": 0, "n_pairs": 0, "n_for": 0, "n_against": 0, "share_for": np.nan,
                           "mean_delta": np.nan, "delta_by_metric": "", "n_datasets": "", "min_p": np.nan,
                           "median_p": np.nan, "n_significant_for": 0, "n_significant_against": 0}
    table = scores.get(claim.modality)
    if table is None:
        return {**out, "checked_on": "—", "tests": "—", "verdict": UNTESTABLE,
                "reason": f"no ranked summary for {claim.modality} in this run (summary.controls off, or no dataset)"}
    result = sm.cd_analysis(rank_methods(table), alpha=alpha)
    ranks = result["mean_ranks"]
    if claim.reference not in ranks.index:
        return {**out, "tests": "—", "verdict": UNTESTABLE,
                "reason": f"{claim.reference} has no rank on the datasets where every method ran"}
    k, n, cd, p = result["k"], result["n"], result["cd"], result["friedman_p"]
    ref = float(ranks[claim.reference])
    others = ranks.drop(claim.reference)
    diff = others - ref  # > 0: the reference ranks better
    position = int((ranks < ref).sum()) + 1
    significant = np.isfinite(p) and p < alpha and np.isfinite(cd)
    better_than_ref = diff[diff < -cd] if significant else diff.iloc[:0]
    worse_than_ref = diff[diff > cd] if significant else diff.iloc[:0]
    out.update(n_pairs=len(others), n_tested=len(others) if n >= sm.FEW_DATASETS else 0,
               n_for=int((diff > 0).sum()), n_against=int((diff < 0).sum()),
               share_for=float((diff > 0).mean()) if len(diff) else np.nan,
               mean_delta=float(diff.mean()) if len(diff) else np.nan,
               delta_by_metric=f"mean rank {ref:.2f} (position {position} of {k}); best {ranks.index[0]} "
                               f"{float(ranks.iloc[0]):.2f}; CD {cd:.2f}",
               n_datasets=str(n), min_p=p, median_p=p,
               n_significant_for=len(worse_than_ref), n_significant_against=len(better_than_ref))
    summary = (f"{claim.reference} mean rank {ref:.2f}, position {position} of {k} methods on {n} datasets; "
               f"CD {cd:.2f}, Friedman p {_fmt_p(p)}")
    if n < sm.FEW_DATASETS:
        return {**out, "verdict": UNTESTABLE,
                "reason": f"{n} complete dataset(s), fewer than {sm.FEW_DATASETS}: the CD is a scale, not "
                          f"evidence (docs/methods.md §8.4); {summary}"}
    if not np.isfinite(p):
        return {**out, "verdict": UNTESTABLE, "reason": f"no Friedman test ({k} methods; it needs 3); {summary}"}
    if len(better_than_ref):
        return {**out, "verdict": FAILS, "reason": f"significantly better ranked: "
                                                  f"{', '.join(better_than_ref.index)}; {summary}"}
    if position <= math.ceil(k / 3):
        return {**out, "verdict": HOLDS, "reason": f"in the top third, none significantly better; {summary}"}
    return {**out, "verdict": INCONCLUSIVE, "reason": f"below the top third, none significantly better; {summary}"}


def evaluate_claims(stats: Mapping[str, pd.DataFrame], scores: Mapping[str, pd.DataFrame] | None = None,
                    claims: Sequence[Claim] = CLAIMS, specs: Mapping[str, Mapping[str, Any]] | None = None,
                    alpha: float = ALPHA) -> pd.DataFrame:
    """``claims.tsv``: one row per claim (columns ``CLAIM_COLUMNS``)."""
    rows = [evaluate_claim(c, stats, scores, specs, alpha) for c in claims]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


# ---------------------------------------------------------------------------------------------------------
# claims.md


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _effect(row: Mapping[str, Any]) -> str:
    if row["direction"] == "top":
        return row["delta_by_metric"] or "—"
    if not row["n_pairs"]:
        return "—"
    share = f"{int(row['n_for'])}/{int(row['n_pairs'])} in claimed direction"
    mean = row["mean_delta"]
    if np.isfinite(mean):
        return f"{share}; mean Δ {_fmt(mean)}"
    return f"{share}; {row['delta_by_metric']}"  # only unbounded metrics (CAL, DAV, COR): each on its own scale


def claims_markdown(table: pd.DataFrame, *, alpha: float = ALPHA, context: str = "") -> str:
    """The readable report: a table of the claims, the verdict rule, and per claim what it was checked on."""
    from .summary import FEW_DATASETS

    counts = table["verdict"].value_counts()
    lines = ["# The LiVAE paper's claims, checked", "",
             "Each headline claim of the paper (abstract, results §3.1–3.10, discussion), paraphrased, and what "
             "this study measured: the effect (Δ = reference − baseline; for DAV, lower is better, the sign is "
             "turned so that a positive oriented Δ always means the reference is better), the test and its adjusted p-values, "
             "and a verdict by the rule below. A claim that does not hold here is a result, not a bug; a verdict "
             "is about this study's datasets, methods and settings, which are smaller than the paper's.", ""]
    if context:
        lines += [context.strip(), ""]
    lines += ["Verdicts: " + ", ".join(f"{v}: {int(counts.get(v, 0))}" for v in VERDICTS), "",
              "| claim | paper | checked on | effect | test (rows) | p min / median | verdict |",
              "|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        p = "—" if not np.isfinite(r["min_p"]) else f"{_fmt_p(r['min_p'])} / {_fmt_p(r['median_p'])}"
        test = r["tests"] + (f" (n = {r['n_datasets']})" if r["n_datasets"] else "")
        lines.append(f"| **{r['claim_id']}**: {_cell(r['claim'])} | {_cell(r['source'])} | {_cell(r['checked_on'])} "
                     f"| {_cell(_effect(r))} | {_cell(test)} | {p} | **{r['verdict']}** |")
    lines += ["", "## Verdict rule", "", VERDICT_RULE.format(alpha=alpha, few=FEW_DATASETS).strip(), "",
              "## Each claim", ""]
    for _, r in table.iterrows():
        lines += [f"### {r['claim_id']} — {r['verdict']}", "", f"{r['claim']} ({r['source']}; claimed direction: "
                  f"{r['direction']}).", "",
                  f"- Checked on: {r['checked_on']}; metrics: {r['metrics']}; baselines: {r['baselines']}",
                  f"- Rows: {int(r['n_pairs'])} with a Δ, {int(r['n_tested'])} tested; significant for / against "
                  f"the claim: {int(r['n_significant_for'])} / {int(r['n_significant_against'])}"]
        if r["delta_by_metric"]:
            label = "Ranks" if r["direction"] == "top" else "Oriented Δ by metric (mean over baselines)"
            lines.append(f"- {label}: {r['delta_by_metric']}")
        lines += [f"- Why: {r['reason']}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_claims(table: pd.DataFrame, tsv: str | Path, md: str | Path, **kwargs) -> None:
    """Write ``claims.tsv`` and ``claims.md`` (atomically, as every table of the run)."""
    from .results import write_tsv_atomic

    write_tsv_atomic(table, tsv)
    md = Path(md)
    md.parent.mkdir(parents=True, exist_ok=True)
    tmp = md.with_name(f".{md.name}.tmp")
    tmp.write_text(claims_markdown(table, **kwargs))
    tmp.replace(md)
