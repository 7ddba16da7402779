"""The panels of the comparison figures (livaebench.panels) against the paper's metric sets, and the rendered
boxplot figures against the panels: each panel shows exactly its metrics."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from livaebench import plotting as pl  # noqa: E402
from livaebench import stats as st  # noqa: E402
from livaebench.comparisons import paper_comparisons  # noqa: E402
from livaebench.panels import (CATEGORY_PANELS, PAPER_FIGURES, SETTING_FIGURES, family_heading,  # noqa: E402
                               family_panels, paper_figure)
from livaebench.results import CLUSTERING_METRICS, DRE_SUFFIXES, INTRINSIC_METRICS, METRIC_COLUMNS  # noqa: E402

# The paper's sets, in its words (figure captions of Figs. 3–6 and 11, and the results text naming the
# metrics of each panel), written here in the project's metric names.
PAPER_PANELS_3_TO_6 = {
    "A": {"umap_dcorr", "umap_qlocal", "umap_qglobal", "umap_overall"},      # UMAP embedding fidelity
    "B": {"tsne_dcorr", "tsne_qlocal", "tsne_qglobal", "tsne_overall"},      # t-SNE embedding fidelity
    # "dimensionality, spectral decay, participation ratio, and anisotropy"
    "C": {"manifold_dim", "spectral_decay", "participation", "anisotropy"},
    # trajectory directionality, noise resilience, core and overall intrinsic quality
    "D": {"directionality", "noise_resilience", "core_intrinsic", "overall_intrinsic"},
}
PIPELINES = {f"{p}_{s}" for p in ("KK", "KL", "LK", "LL") for s in ("ARI", "NMI")}
PAPER_PANELS_11 = {"A": set(), "B": {"iLISI_by_subsample", "iLISI_n*"}, "C": PIPELINES}
PAPER_METRICS = set(CLUSTERING_METRICS) | {f"{v}_{s}" for v in ("umap", "tsne") for s in DRE_SUFFIXES} \
    | set(INTRINSIC_METRICS)


def letters(figure):
    return {p.letter: set(p.metrics) for p in PAPER_FIGURES[figure]}


@pytest.mark.parametrize("figure", ["Fig. 3", "Fig. 4", "Fig. 5", "Fig. 6"])
def test_method_figures_have_the_papers_four_panels(figure):
    assert letters(figure) == PAPER_PANELS_3_TO_6
    titles = [p.title for p in PAPER_FIGURES[figure]]
    assert titles == ["UMAP embedding fidelity", "t-SNE embedding fidelity", "Latent manifold structure",
                      "Intrinsic quality and robustness"]


def test_fig3_panel_c_is_exactly_the_four_manifold_metrics():
    (c,) = [p for p in PAPER_FIGURES["Fig. 3"] if p.letter == "C"]
    assert set(c.metrics) == {"manifold_dim", "spectral_decay", "participation", "anisotropy"}
    assert len(c.metrics) == 4


def test_fig11_panels_and_setting_figures():
    assert letters("Fig. 11") == PAPER_PANELS_11
    # Figs. 2, 7–10: one lettered panel per setting, each showing every paper metric
    expected_letters = {"Fig. 2": "AB", "Fig. 7": "AB", "Fig. 8": "AB", "Fig. 9": "AB", "Fig. 10": "ABC"}
    assert set(expected_letters) == set(SETTING_FIGURES)
    for figure, expected in expected_letters.items():
        assert "".join(p.letter for p in PAPER_FIGURES[figure]) == expected
        assert all(set(p.metrics) == PAPER_METRICS for p in PAPER_FIGURES[figure])


def test_metric_categories_partition_the_paper_metrics():
    sets = {p.title: set(p.metrics) for p in CATEGORY_PANELS}
    assert sets == {"Clustering quality": set(CLUSTERING_METRICS),
                    "UMAP embedding fidelity": PAPER_PANELS_3_TO_6["A"],
                    "t-SNE embedding fidelity": PAPER_PANELS_3_TO_6["B"],
                    "Latent manifold structure": PAPER_PANELS_3_TO_6["C"],
                    "Intrinsic quality and robustness": PAPER_PANELS_3_TO_6["D"]}
    assert sum(len(s) for s in sets.values()) == len(PAPER_METRICS)  # no metric in two categories
    assert set(st.CORE_METRICS) == PAPER_METRICS


def test_every_paper_family_draws_its_figures_panels():
    seen: dict[str, set[str]] = {}
    for name, spec in paper_comparisons().items():
        figure = paper_figure(spec)
        assert figure == f"Fig. {name.split('_')[0].removeprefix('fig')}", name
        panels = family_panels(spec)
        if figure in SETTING_FIGURES:
            # one setting panel of the figure per family, no letter used twice
            assert spec["panel"] in {p.letter for p in PAPER_FIGURES[figure]} and spec["panel"] not in seen.get(figure,
                                                                                                              set())
            seen.setdefault(figure, set()).add(spec["panel"])
            assert panels == list(CATEGORY_PANELS)
            assert f"paper {figure}{spec['panel']}: " in family_heading(name, spec)
        else:
            assert "panel" not in spec
            assert panels == [p for p in PAPER_FIGURES[figure] if p.metrics]
    assert seen == {f: {p.letter for p in PAPER_FIGURES[f]} for f in SETTING_FIGURES}  # every setting drawn


def test_a_users_family_sees_the_categories_cut_to_its_metrics():
    panels = family_panels({"reference": "livae", "baselines": ["pca"], "metrics": ["umap_dcorr", "iLISI", "NMI"]})
    assert [(p.title, p.metrics) for p in panels] == [("Clustering quality", ("NMI",)),
                                                      ("UMAP embedding fidelity", ("umap_dcorr",)),
                                                      ("Other metrics", ("iLISI",))]
    assert family_panels({"reference": "livae", "baselines": ["pca"]}) == list(CATEGORY_PANELS)


# ------------------------------------------------------------------------------------------------
# Rendered figures

METHODS = ["livae", "scvi", "scgcc"]


def metric_table(metrics, n_datasets=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_datasets):
        base = rng.uniform(0.3, 0.7)
        for k, method in enumerate(METHODS):
            for metric in metrics:
                scale = 500.0 if metric == "CAL" else 1.0
                rows.append((f"ds{d}", method, 0, metric, scale * (base - 0.03 * k + rng.normal(0, 0.02))))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def shown_metrics(subfig):
    """The metric names on the x axes of one panel (labels without ↓ and (log))."""
    return [t.get_text().removesuffix(" (log)").removesuffix(" ↓") for ax in subfig.axes
            for t in ax.get_xticklabels()]


def render(tmp_path, family, metrics):
    spec = paper_comparisons()[family]
    table = metric_table(metrics)
    stats = st.compare(table, comparison=family, reference="livae", baselines=METHODS[1:],
                       metrics_list=spec.get("metrics") or st.DEFAULT_METRICS)
    fig = pl.metric_boxplots(table, stats, reference="livae", baselines=METHODS[1:], out_png=tmp_path / "b.png",
                             title=family_heading(family, spec), panels=family_panels(spec))
    return fig, [sf for row in fig.subfigs for sf in row.subfigs if sf.get_visible()], table, stats


def test_each_rendered_panel_shows_exactly_its_metrics(tmp_path, family="fig3_livae_vs_classical"):
    fig, subfigs, _, stats = render(tmp_path, family, st.CORE_METRICS + ["iLISI"])
    panels = family_panels(paper_comparisons()[family])
    assert [sf.get_suptitle() for sf in subfigs] == [p.heading for p in panels]
    for subfig, panel in zip(subfigs, panels):
        assert shown_metrics(subfig) == list(panel.metrics)
    assert [sf.get_suptitle() for sf in subfigs] == ["A   UMAP embedding fidelity", "B   t-SNE embedding fidelity",
                                                     "C   Latent manifold structure",
                                                     "D   Intrinsic quality and robustness"]
    assert shown_metrics(subfigs[2]) == ["manifold_dim", "spectral_decay", "participation", "anisotropy"]
    # one mark per drawn metric and baseline, the stats table's
    drawn = [m for p in panels for m in p.metrics]
    marks = [t.get_text() for ax in fig.get_axes() for t in ax.texts]
    expected = stats[stats["metric"].isin(drawn)]["stars"]
    assert sorted(marks) == sorted(s for s in expected if s) and len(marks) == 2 * len(drawn)


def test_fig11_rendered_panels_pool_subsample_conditions(tmp_path):
    metrics = ["iLISI", "iLISI_n4000", "iLISI_n250", "iLISI_n2000", *sorted(PIPELINES)]
    fig, subfigs, table, stats = render(tmp_path, "fig11_multibatch", metrics)
    assert [sf.get_suptitle() for sf in subfigs] == [
        "B   Batch mixing (iLISI) across subsample sizes",
        "C   Supervised clustering of four pre/post-integration pipelines"]
    assert shown_metrics(subfigs[0]) == ["iLISI_by_subsample", "iLISI_n250", "iLISI_n2000", "iLISI_n4000"]
    assert shown_metrics(subfigs[1]) == [f"{p}_{s}" for p in ("KK", "KL", "LK", "LL") for s in ("NMI", "ARI")]
    # the pooled slot holds one point per method and dataset × subsample-size condition: 3 × 6 × 3
    ax = subfigs[0].axes[0]
    centre = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    xs = np.concatenate([o[:, 0] for o in centre])
    assert (np.abs(xs) < 0.5).sum() == 3 * 6 * 3
    pooled = stats.set_index("metric").loc["iLISI_by_subsample"]
    assert (pooled["n_datasets"] == 18).all() and (pooled["replicate"] == "dataset×subsample").all()
    assert "n = 18 dataset × subsample-size conditions" in fig._suptitle.get_text()
    assert family_heading("fig11_multibatch", paper_comparisons()["fig11_multibatch"]) == \
        "fig11_multibatch  (paper Fig. 11)"
