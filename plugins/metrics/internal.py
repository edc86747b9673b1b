"""Internal metrics: how compact and separated the clusters are in the space the
clusterer saw. Noise points (-1) are excluded, since they belong to no cluster; each
metric is NaN when fewer than two clusters (or fewer than clusters + 1 points) remain."""

from __future__ import annotations

import numpy as np

from clustergrid import Metric


def _clustered(X: np.ndarray, labels: np.ndarray):
    """Points that are not noise, or None when the metric is undefined on them."""
    keep = labels != -1
    X, labels = X[keep], labels[keep]
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or n_clusters >= len(labels):
        return None
    return X, labels


class Silhouette(Metric):
    """Mean silhouette coefficient, in [-1, 1]; higher is better."""

    name = "silhouette"

    def compute(self, X, labels, true_labels=None):
        from sklearn.metrics import silhouette_score

        data = _clustered(X, labels)
        return float("nan") if data is None else float(silhouette_score(*data))


class DaviesBouldin(Metric):
    """Davies-Bouldin index, >= 0; lower is better."""

    name = "davies_bouldin"

    def compute(self, X, labels, true_labels=None):
        from sklearn.metrics import davies_bouldin_score

        data = _clustered(X, labels)
        return float("nan") if data is None else float(davies_bouldin_score(*data))


class CalinskiHarabasz(Metric):
    """Calinski-Harabasz variance ratio, >= 0; higher is better."""

    name = "calinski_harabasz"

    def compute(self, X, labels, true_labels=None):
        from sklearn.metrics import calinski_harabasz_score

        data = _clustered(X, labels)
        return float("nan") if data is None else float(calinski_harabasz_score(*data))


METRICS = (Silhouette, DaviesBouldin, CalinskiHarabasz)
