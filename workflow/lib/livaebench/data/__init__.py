"""Data layer: reading and checking count matrices, fetching GEO series, preprocessing.

``io``         local files (h5ad, 10x directory, 10x .h5, dense CSV/TSV) -> validated raw-count AnnData
``geo``        GEO series/sample -> downloaded supplementary files -> assembled raw-count AnnData, built on
               ``geo_soft`` (SOFT listings, file names), ``http_transfer`` (resumable, proven-complete
               downloads) with ``http_opener`` (deadline, guarded redirects) and ``url_policy`` (allowed
               origins), ``archives`` (container checks, safe extraction) and ``untrusted`` (escaping of
               server text)
``preprocess`` raw counts -> the preprocessed AnnData every method reads (docs/methods.md §1)
"""
from .geo import assemble_geo, fetch_geo
from .geo_soft import list_geo_supplementary
from .io import read_counts, read_h5ad_checked, validate_counts, write_h5ad_atomic
from .preprocess import preprocess

__all__ = [
    "assemble_geo",
    "fetch_geo",
    "list_geo_supplementary",
    "preprocess",
    "read_counts",
    "read_h5ad_checked",
    "validate_counts",
    "write_h5ad_atomic",
]
