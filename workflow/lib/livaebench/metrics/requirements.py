"""What each metric needs to be defined (docs/methods.md §3.7), and the check the panel runs first.

Every metric module declares, beside its definitions, a table ``REQUIREMENTS``: metric name →
``Requirement`` (minimum latent dimensions, labels, batches, cells, a 2-D view). The panel describes
what one embedding offers as a ``Domain`` and computes a metric only where ``Requirement.unmet`` finds
nothing missing; otherwise the metric is NaN (paper metrics) or absent (extras) with that one-line reason.
A value outside its domain is not noisy but fixed by construction (the noise resilience of a 2-D latent
is 1.0 whatever the latent), so it must not enter a comparison.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Which cells a metric sees (the panel fills ``Domain.cells`` with these keys), in words for reasons.
CELL_SETS = {
    "all": "cells",
    "labelled": "labelled cells",
    "batch": "cells with a batch",
    "dre": "cells in the co-ranking subsample",
}


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@dataclass(frozen=True)
class Domain:
    """What one embedding and its dataset offer to the metrics.

    ``label_categories`` / ``batches`` are None when the dataset has no such column (or it is empty);
    the ``*_source`` strings say where a count comes from, for the reasons. ``clusters`` is the k of the
    panel's K-means (label categories, else ``metrics.n_clusters``; None when neither is known).
    """
    dims: int
    cells: Mapping[str, int]
    label_categories: int | None = None
    label_source: str = "the dataset has no label column"
    clusters: int | None = None
    cluster_source: str = "no labels and no n_clusters configured"
    batches: int | None = None
    batch_source: str = "the dataset has no batch column"
    views: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Requirement:
    """The domain of one metric. The defaults need nothing.

    - ``min_dims``: latent dimensions d;
    - ``min_cells`` of the cell set ``cells`` (a key of ``CELL_SETS``) the metric sees;
    - ``more_cells_than_dims``: n > d (a covariance spectrum whose trailing eigenvalues are not zero
      merely because there are too few cells);
    - ``min_label_categories``: label categories (0 = no labels needed);
    - ``min_clusters``: clusters of the panel's K-means partition (0 = none needed);
    - ``min_batches``: batches (0 = no batches needed);
    - ``perplexity_reaches_batches``: iLISI's neighbourhood perplexity min(30, k/3), k = min(90, n − 1),
      reaches min(B, 30): below it the median LISI cannot exceed the perplexity, so the scaled score
      could not reach 1 even for perfectly mixed batches;
    - ``view``: an obsm key (UMAP or t-SNE) that must be present and finite;
    - ``why``: the rationale, for the documentation.
    """
    min_dims: int = 1
    min_cells: int = 0
    cells: str = "all"
    more_cells_than_dims: bool = False
    min_label_categories: int = 0
    min_clusters: int = 0
    min_batches: int = 0
    perplexity_reaches_batches: bool = False
    view: str = ""
    why: str = ""

    def __post_init__(self):
        if self.cells not in CELL_SETS:
            raise ValueError(f"unknown cell set '{self.cells}' (one of {', '.join(CELL_SETS)})")

    def unmet(self, dom: Domain) -> str | None:
        """None when ``dom`` meets every need, else one line naming each unmet need and what is there."""
        out = []
        if self.view and self.view not in dom.views:
            out.append(f"needs obsm['{self.view}'] (missing or not finite)")
        if self.min_label_categories:
            if dom.label_categories is None:
                out.append(f"needs labels ({dom.label_source})")
            elif dom.label_categories < self.min_label_categories:
                out.append(f"needs >= {self.min_label_categories} label categories ({dom.label_source} has "
                           f"{_plural(dom.label_categories, 'category', 'categories')})")
        if self.min_clusters and (dom.clusters is None or dom.clusters < self.min_clusters):
            out.append(f"needs a K-means partition with >= {self.min_clusters} clusters ({dom.cluster_source})")
        if self.min_batches:
            if dom.batches is None:
                out.append(f"needs batches ({dom.batch_source})")
            elif dom.batches < self.min_batches:
                out.append(f"needs >= {self.min_batches} batches ({dom.batch_source} has "
                           f"{_plural(dom.batches, 'batch', 'batches')})")
        if dom.dims < self.min_dims:
            out.append(f"needs >= {self.min_dims} latent dimensions (latent has {dom.dims})")
        n = int(dom.cells.get(self.cells, 0))
        if n < self.min_cells:
            out.append(f"needs >= {self.min_cells} {CELL_SETS[self.cells]} (has {n})")
        if self.more_cells_than_dims and n <= dom.dims:
            out.append(f"needs more {CELL_SETS[self.cells]} than latent dimensions ({n} for d = {dom.dims})")
        if self.perplexity_reaches_batches and dom.batches:
            need = 3 * min(dom.batches, 30) + 1
            if n < need:
                out.append(f"needs >= {need} {CELL_SETS[self.cells]} so that the neighbourhood perplexity "
                           f"reaches the {dom.batches} batches (has {n})")
        return "; ".join(out) or None

    def describe(self) -> str:
        """The needs in words (the documentation's table)."""
        parts = []
        if self.view:
            parts.append(f"obsm `{self.view}`")
        if self.min_label_categories:
            parts.append(f"labels, ≥ {self.min_label_categories} categories")
        if self.min_clusters:
            parts.append(f"K-means k ≥ {self.min_clusters} (labels or `metrics.n_clusters`)")
        if self.min_batches:
            parts.append(f"≥ {self.min_batches} batches")
        if self.min_dims > 1:
            parts.append(f"d ≥ {self.min_dims}")
        if self.min_cells > 1:
            parts.append(f"≥ {self.min_cells} {CELL_SETS[self.cells]}")
        if self.more_cells_than_dims:
            parts.append(f"{CELL_SETS[self.cells]} > d")
        if self.perplexity_reaches_batches:
            parts.append(f"{CELL_SETS[self.cells]} > 3·min(B, 30)")
        return "; ".join(parts) or "nothing"
