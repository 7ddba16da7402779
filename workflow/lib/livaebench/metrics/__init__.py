"""Metrics of one embedding: clustering, embedding quality (UMAP/t-SNE vs latent), intrinsic, batch mixing.

``evaluate_embedding`` (panel.py) runs the whole panel; the submodules hold the single metrics.
"""
from .panel import core_metric_names, evaluate_embedding

__all__ = ["evaluate_embedding", "core_metric_names"]
