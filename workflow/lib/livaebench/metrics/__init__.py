"""Metrics of one embedding: clustering, embedding quality (UMAP/t-SNE vs latent), intrinsic, batch mixing.

``evaluate_embedding`` (panel.py) runs the whole panel; the submodules hold the single metrics, each
with a table ``REQUIREMENTS`` of what it needs to be defined (requirements.py; ``panel.REQUIREMENTS``
assembles them).
"""
from .panel import REQUIREMENTS, core_metric_names, evaluate_embedding, requirements_table

__all__ = ["evaluate_embedding", "core_metric_names", "REQUIREMENTS", "requirements_table"]
