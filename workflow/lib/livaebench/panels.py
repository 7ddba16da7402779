"""Which metrics each panel of the paper's comparison figures shows, stated once as data.

The paper (LiVAE, Figs. 2–11) lays its comparison figures out in two ways:

* **Metric panels** (Figs. 3–6, one figure per baseline group): A = UMAP embedding fidelity,
  B = t-SNE embedding fidelity, C = latent manifold structure (dimensionality, spectral decay,
  participation ratio, anisotropy), D = intrinsic quality and robustness (directionality, noise
  resilience, core and overall intrinsic quality). The clustering scores are in the matching tables
  (Tables 2–5), not in these figures. Fig. 11: A = UMAP embeddings by batch (no metric),
  B = iLISI across subsample sizes, C = the supervised clustering pipelines (ARI, NMI).
* **Setting panels** (Figs. 2 and 7–10): each lettered panel is one setting (a modality, an ablation
  configuration, a swept parameter), i.e. one comparison family here, and shows every metric grouped
  by the paper's metric categories (``METRIC_GROUPS``: clustering, UMAP, t-SNE, latent manifold
  structure, intrinsic quality and robustness).

``SUBSAMPLED`` in a metric list stands for every per-subsample-size metric ``iLISI_n{s}`` the metric
table holds (the sizes come from the configuration); :func:`livaebench.stats.expand_metrics`
expands it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .results import METRIC_GROUPS

PIPELINE_METRICS: tuple[str, ...] = tuple(f"{p}_{s}" for p in ("KK", "KL", "LK", "LL") for s in ("NMI", "ARI"))
# The pooled iLISI of Fig. 11B / Table 10: one replicate per dataset × subsample size (livaebench.stats).
ILISI_POOLED = "iLISI_by_subsample"
SUBSAMPLE_PREFIX = "iLISI_n"  # iLISI_n{s}: iLISI on a subsample of s cells (metrics.panel)
SUBSAMPLED = SUBSAMPLE_PREFIX + "*"


@dataclass(frozen=True)
class Panel:
    """One group of boxes of a comparison figure: its letter ('' inside a setting panel), title, metrics."""

    letter: str
    title: str
    metrics: tuple[str, ...]

    @property
    def heading(self) -> str:
        return f"{self.letter}   {self.title}" if self.letter else self.title


# The paper's metric categories as panels without a letter (the groups of a setting panel).
CATEGORY_PANELS: tuple[Panel, ...] = tuple(Panel("", title, tuple(names)) for title, names in METRIC_GROUPS.items())
_CATEGORY = {p.title: p.metrics for p in CATEGORY_PANELS}

# Figs. 3–6: every category but clustering, lettered (clustering is in the paper's tables only).
METRIC_PANELS: tuple[Panel, ...] = tuple(
    Panel(letter, title, _CATEGORY[title]) for letter, title in
    zip("ABCD", ("UMAP embedding fidelity", "t-SNE embedding fidelity", "Latent manifold structure",
                 "Intrinsic quality and robustness")))
ALL_CORE = tuple(m for p in CATEGORY_PANELS for m in p.metrics)


def _settings(*titles: str) -> tuple[Panel, ...]:
    return tuple(Panel(letter, title, ALL_CORE) for letter, title in zip("ABCDEFGH", titles))


# Figure number → its panels. A setting panel's metrics are drawn grouped by CATEGORY_PANELS.
PAPER_FIGURES: dict[str, tuple[Panel, ...]] = {
    "Fig. 2": _settings("scRNA-seq", "scATAC-seq"),
    "Fig. 3": METRIC_PANELS,
    "Fig. 4": METRIC_PANELS,
    "Fig. 5": METRIC_PANELS,
    "Fig. 6": METRIC_PANELS,
    "Fig. 7": _settings("bottleneck-only configuration (BN)", "Lorentz-regularized configuration"),
    "Fig. 8": _settings("scRNA-seq", "scATAC-seq"),
    "Fig. 9": _settings("scRNA-seq", "scATAC-seq"),
    "Fig. 10": _settings("Lorentz weight λ", "bottleneck dimension", "latent dimension"),
    "Fig. 11": (
        Panel("A", "UMAP embeddings coloured by batch", ()),
        Panel("B", "Batch mixing (iLISI) across subsample sizes", (ILISI_POOLED, SUBSAMPLED)),
        Panel("C", "Supervised clustering of four pre/post-integration pipelines", PIPELINE_METRICS),
    ),
}
SETTING_FIGURES = frozenset({"Fig. 2", "Fig. 7", "Fig. 8", "Fig. 9", "Fig. 10"})

_FIGURE = re.compile(r"^\s*(Fig\. \d+)\b")


def paper_figure(spec: Mapping[str, Any]) -> str | None:
    """'Fig. N' of a comparison's ``figure`` (e.g. 'Fig. 2 / Table 1' → 'Fig. 2') when the paper has it."""
    match = _FIGURE.match(str(spec.get("figure") or ""))
    return match.group(1) if match and match.group(1) in PAPER_FIGURES else None


def family_panels(spec: Mapping[str, Any]) -> list[Panel]:
    """The panels of one comparison family's boxplot figure.

    A family of a metric-panel figure (Figs. 3–6, 11) draws that figure's panels that have metrics; a
    family of a setting figure (its ``panel`` letter names the setting) and any other family draw the
    metric categories. A family that lists its own ``metrics`` sees the categories cut to them, and
    its other metrics in a last panel.
    """
    figure = paper_figure(spec)
    if figure is not None and figure not in SETTING_FIGURES:
        return [p for p in PAPER_FIGURES[figure] if p.metrics]
    chosen = spec.get("metrics")
    if not chosen:
        return list(CATEGORY_PANELS)
    panels = [Panel("", p.title, tuple(m for m in p.metrics if m in chosen)) for p in CATEGORY_PANELS]
    rest = tuple(m for m in dict.fromkeys(chosen) if m not in ALL_CORE)
    return [p for p in panels if p.metrics] + ([Panel("", "Other metrics", rest)] if rest else [])


def family_heading(name: str, spec: Mapping[str, Any]) -> str:
    """Figure title of a family: its name and, for a paper family, the figure (and setting panel) it redraws."""
    figure = paper_figure(spec)
    if figure is None:
        return name
    letter = spec.get("panel") or ""
    setting = {p.letter: p.title for p in PAPER_FIGURES[figure]}.get(letter) if figure in SETTING_FIGURES else None
    return f"{name}  (paper {figure}{letter}" + (f": {setting})" if setting else ")")


def panel_metrics(panels: Iterable[Panel]) -> list[str]:
    """Every metric of the panels, in order, once."""
    return list(dict.fromkeys(m for p in panels for m in p.metrics))
