from __future__ import annotations

import numpy as np

from clustergrid import Clusterer


class DBSCAN(Clusterer):
    """DBSCAN (scikit-learn): dense regions become clusters, the rest noise (-1).

    A point with at least ``min_samples`` points (itself included) within ``eps`` is a
    core point; clusters are core points linked within ``eps`` plus their border
    points. ``eps`` is in the data's units. Memory grows with the number of neighbours
    within ``eps``: an ``eps`` covering whole clusters is O(n^2).
    """

    name = "dbscan"

    def __init__(self, eps: float = 0.5, min_samples: int = 5, metric: str = "euclidean"):
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric

    def memory_estimate(self, n: int, d: int) -> int:
        """Every item's neighbourhood within ``eps`` (an index and a distance each) is held
        at once: counted as ten times ``min_samples`` neighbours per item, which dense
        data exceed (up to ``n^2``); beside the data in float64."""
        from clustergrid.memory import FLOAT64

        neighbours = min(n, 10 * max(1, int(self.min_samples)))
        return n * neighbours * 2 * FLOAT64 + n * d * FLOAT64

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        from sklearn.cluster import DBSCAN as SklearnDBSCAN

        model = SklearnDBSCAN(eps=self.eps, min_samples=self.min_samples, metric=self.metric)
        labels = np.asarray(model.fit_predict(X), dtype=np.int64)
        self.metrics_ = {"core_fraction": float(len(model.core_sample_indices_) / len(X))}
        return labels
