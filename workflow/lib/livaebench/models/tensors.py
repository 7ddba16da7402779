"""Dense training tensors built once from a preprocessed AnnData (shared by every count-likelihood model)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError
from .likelihoods import count_tables


def count_tensors(adata, dataset: str = "") -> tuple[dict[str, torch.Tensor], int]:
    """Dense training tensors, built once, and the count cap for ``LiVAEConfig.count_cap``.

    Keys: ``x`` (model input, float32), ``counts`` (raw counts of the selected features, float32),
    ``log_lib`` (log library size), and the count tables of ``likelihoods.count_tables``.
    The library size l_i is the sum of the raw counts of the selected features (what the likelihood
    models). A cell with l_i = 0 gets log l = 0: its counts are all zero, so its likelihood does not
    depend on the mean's scale and the clamp only avoids 0·log 0.
    """
    what = f"dataset '{dataset}'" if dataset else "AnnData"
    if "counts" not in adata.layers:
        raise InputError(what, "has no layers['counts'] with the raw counts of the selected features",
                         "use the output of the preprocessing step (results/data/{dataset}/preprocessed.h5ad)")
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(what, f"the model input .X has {int((~np.isfinite(x)).sum())} NaN/inf values",
                         "re-run preprocessing; the normalized input must be finite")
    # The stored layer as it is (float32 on disk): integer counts below 2**24 are exact in float32, and
    # a float64 copy of a 100k x 5000 matrix costs 4 GB dense.
    raw = sp.csr_matrix(adata.layers["counts"])
    if not raw.has_canonical_format:
        raw = raw.copy()
        raw.sum_duplicates()
    vals = raw.data
    if not np.isfinite(vals).all() or (vals < 0).any() or (vals != np.round(vals)).any():
        raise InputError(what, "layers['counts'] has negative, non-integer or non-finite values",
                         "store the raw integer counts of the selected features in layers['counts']")
    # the tables first: their temporaries are gone before the dense counts exist (peak memory)
    tables, cap = count_tables(raw, dense_code=False)  # the bins come from `counts` per minibatch
    counts = raw.toarray().astype(np.float32, copy=False)
    lib = np.asarray(raw.sum(axis=1, dtype=np.float64)).ravel()
    log_lib = np.log(np.maximum(lib, 1.0)).astype(np.float32)
    tensors = {"x": torch.from_numpy(x), "counts": torch.from_numpy(counts), "log_lib": torch.from_numpy(log_lib),
               **tables}
    return tensors, cap
