"""Analyses of trained models (docs/methods.md §5-6): one module per model family."""
