"""Analysis 5: UniCoord as a pretrained reference, mapping a new dataset (a simulated query) onto its labels."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...plotting import _save, _style

def simulate_query(prep, test: np.ndarray, *, drop_genes: float, seed: int):
    """A stand-in for a new dataset: the raw counts of the test cells in a separate AnnData, with a
    share ``drop_genes`` of the genes removed (another gene panel) and the genes in another order."""
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_genes = prep.n_vars
    keep = np.sort(rng.choice(n_genes, n_genes - int(round(drop_genes * n_genes)), replace=False))
    keep = rng.permutation(keep)
    label = prep.uns["livaebench"].get("label_key") or ""
    obs = prep.obs.loc[test, [label]] if label in prep.obs else pd.DataFrame(index=prep.obs_names[test])
    return ad.AnnData(sp.csr_matrix(prep.layers["counts"][test][:, keep], dtype=np.float32), obs=obs.copy(),
                      var=pd.DataFrame(index=prep.var_names[keep].copy()))


def confusion(truth, predicted) -> pd.DataFrame:
    """Share of each true class (rows) predicted as each class (columns)."""
    table = pd.crosstab(pd.Series(np.asarray(truth).astype(str), name="true"),
                        pd.Series(np.asarray(predicted).astype(str), name="predicted"), normalize="index")
    return table


def plot_confusion(table: pd.DataFrame, *, out_png, title: str) -> Figure:
    with _style():
        fig = Figure(figsize=(0.6 * table.shape[1] + 3.5, 0.45 * table.shape[0] + 2.6), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(table.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(table.to_numpy()):
            if v >= 0.01:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "0.1")
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right", fontsize=9)
        ax.set_yticks(range(table.shape[0]), table.index, fontsize=9)
        ax.set_xlabel("predicted by the reference model")
        ax.set_ylabel("label in the new dataset")
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.6, label="share of the row's cells")
        ax.set_title(title)
        return _save(fig, out_png)
