"""What a trained UniCoord model is for (docs/methods.md §6.1 "Uses"): label prediction, in silico
reconfiguration, interpolation along a continuous coordinate, restoration of a held-out category, and
reuse as a pretrained reference on a new dataset.

Every model used here is trained on the *train* cells of one seeded, label-stratified split
(:func:`heldout_split`), so that the *test* cells are never seen in training: labels are predicted on
them, they are the cells that get reconfigured and interpolated, and they form the simulated new
dataset of the reference mapping. The restoration model is trained on the train cells without the
held-out category, supervised by a lineage-stage coordinate only (see :func:`add_stage`), as the paper
restores a held-out time point by reconfiguring the timestamp coordinate of other cells.

Every analysis model has the paper's 50 free continuous coordinates (the method's default; the
workflow-wide ``latent_dim`` of the benchmark does not apply here) and reads the paper's input,
log1p(normalize_total 1e4, exclude_highly_expressed) (:func:`livaebench.models.unicoord.model_input`).
Generated cells are decoded from a seeded draw of the modified posterior, as the paper describes
(:func:`livaebench.models.unicoord.posterior_sample`): the same seed gives the same cells, and two
reconfigurations of the same cells share their noise, so their difference is the reconfiguration's.

Figures are matplotlib ``Figure`` objects saved as PNG + PDF with the project's plotting helpers.

One module per analysis (``label_prediction``, ``reconfiguration``, ``interpolation``, ``restoration``,
``reference``); what they share (split, label columns, models, :class:`Reference`) is in ``common``.
"""
from ...models.unicoord import RARE
from .common import (
    heldout_split, write_split, read_split, label_key_of, truth_labels, category_mask, add_stage,
    train_variant, Reference, query_matrix, STAGE_KEY, category_means,
)
from .label_prediction import knn_predict, per_class_accuracy, plot_per_class_accuracy
from .reconfiguration import (
    nearest_category, reconfigure_cells, reconfiguration_table, umap_coordinates,
    plot_reconfiguration_umap, marker_genes, plot_dotplot,
)
from .interpolation import jittered_values, interpolate, top_varying_genes, plot_trajectory_heatmap
from .restoration import neighbour_stage_mean, restoration_table, plot_restoration
from .reference import simulate_query, confusion, plot_confusion

__all__ = [
    "RARE",
    "heldout_split",
    "write_split",
    "read_split",
    "label_key_of",
    "truth_labels",
    "category_mask",
    "add_stage",
    "train_variant",
    "Reference",
    "query_matrix",
    "STAGE_KEY",
    "knn_predict",
    "per_class_accuracy",
    "plot_per_class_accuracy",
    "category_means",
    "nearest_category",
    "reconfigure_cells",
    "reconfiguration_table",
    "umap_coordinates",
    "plot_reconfiguration_umap",
    "marker_genes",
    "plot_dotplot",
    "jittered_values",
    "interpolate",
    "top_varying_genes",
    "plot_trajectory_heatmap",
    "neighbour_stage_mean",
    "restoration_table",
    "plot_restoration",
    "simulate_query",
    "confusion",
    "plot_confusion",
]
