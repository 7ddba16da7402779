"""What every baseline's test checks: the embedding carries the cell-type labels well above chance."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsClassifier


def knn_label_agreement(latent: np.ndarray, labels, k: int = 15, seed: int = 0) -> float:
    """Accuracy of a k-NN classifier predicting each cell's label from its neighbours (5-fold, held out)."""
    labels = np.asarray(labels).astype(str)
    folds = np.random.default_rng(seed).permutation(len(labels)) % 5
    pred = cross_val_predict(KNeighborsClassifier(n_neighbors=k), np.asarray(latent, dtype=np.float64), labels,
                             groups=folds, cv=[(np.where(folds != f)[0], np.where(folds == f)[0]) for f in range(5)])
    return float(np.mean(pred == labels))


def chance_agreement(labels) -> float:
    """Accuracy of always guessing the most frequent label: what an uninformative embedding reaches."""
    _, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return float(counts.max() / counts.sum())


def assert_carries_labels(latent: np.ndarray, labels, margin: float = 0.15) -> float:
    """kNN agreement at least ``margin`` above chance; returns it."""
    acc, chance = knn_label_agreement(latent, labels), chance_agreement(labels)
    assert acc >= chance + margin, f"kNN label agreement {acc:.3f} is not well above chance {chance:.3f}"
    return acc


def twice_fitted(overrides_by_method: dict, adata, tmp_path_factory, global_params: dict, dataset: str = "pancreas"):
    """Two fits per method with seed 0 (the second for determinism): method -> [(embeddings, outdir)] * 2."""
    from livaebench.methods import fit_method

    out = {}
    for method, overrides in overrides_by_method.items():
        out[method] = []
        for rep in range(2):
            outdir = tmp_path_factory.mktemp(f"{method}{rep}")
            out[method].append((fit_method(method, adata, dataset=dataset, seed=0, outdir=outdir, overrides=overrides,
                                           global_params=global_params), outdir))
    return out
