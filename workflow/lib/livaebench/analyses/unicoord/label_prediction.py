"""Analysis 1: predict the held-out cells' labels from UniCoord's cell-type coordinates, beside a kNN on PCA."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...plotting import _save, _style

def knn_predict(x_train, y_train, x_test, *, k: int = 15, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """The baseline: k-NN (scikit-learn) on a PCA of the log-normalized values fitted on the train cells."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    pca = PCA(n_components=min(n_pcs, x_train.shape[0] - 1, x_train.shape[1]), random_state=seed).fit(x_train)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(x_train))).fit(pca.transform(x_train), y_train)
    return knn.predict(pca.transform(x_test))


def per_class_accuracy(truth, predictions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per true class: cells and the share each predictor got right; then 'overall' and 'balanced' rows."""
    truth = np.asarray(truth).astype(str)
    rows = []
    for label in sorted(set(truth), key=str):
        mask = truth == label
        rows.append({"class": label, "n_cells": int(mask.sum()),
                     **{name: float(np.mean(np.asarray(p)[mask] == label)) for name, p in predictions.items()}})
    table = pd.DataFrame(rows)
    overall = {"class": "overall", "n_cells": len(truth),
               **{name: float(np.mean(np.asarray(p) == truth)) for name, p in predictions.items()}}
    balanced = {"class": "balanced", "n_cells": len(truth), **{name: float(table[name].mean()) for name in predictions}}
    chance = {"class": "chance (majority class)", "n_cells": len(truth),
              **{name: float(pd.Series(truth).value_counts(normalize=True).iloc[0]) for name in predictions}}
    return pd.concat([table, pd.DataFrame([overall, balanced, chance])], ignore_index=True)


def plot_per_class_accuracy(table: pd.DataFrame, *, out_png, title: str) -> Figure:
    """Grouped bars: accuracy per class of every predictor (the table's columns after n_cells)."""
    predictors = [c for c in table.columns if c not in ("class", "n_cells")]
    rows = table[table["class"] != "chance (majority class)"]
    chance = table.loc[table["class"] == "chance (majority class)", predictors[0]]
    colors = dict(zip(predictors, ["#C0392B", "0.55", "#2E86C1", "#28B463"]))
    with _style():
        fig = Figure(figsize=(1.0 * len(rows) + 2.5, 4.2), layout="constrained")
        ax = fig.subplots()
        width = 0.8 / len(predictors)
        x = np.arange(len(rows))
        for i, name in enumerate(predictors):
            ax.bar(x + (i - (len(predictors) - 1) / 2) * width, rows[name], width, label=name, color=colors.get(name))
        if len(chance):
            ax.axhline(float(chance.iloc[0]), color="0.3", linestyle="--", linewidth=1, label="chance (majority class)")
        ax.set_xticks(x, [f"{c}\n(n={n})" for c, n in zip(rows["class"], rows["n_cells"])], rotation=45, ha="right",
                      fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy on held-out cells")
        ax.legend(loc="lower left", fontsize=9, frameon=True)
        ax.set_title(title)
        return _save(fig, out_png)
