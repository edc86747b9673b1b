from __future__ import annotations

import numpy as np

from clustergrid import Clusterer


class KMeans(Clusterer):
    """k-means (scikit-learn, k-means++ initialisation); inertia is logged."""

    name = "kmeans"

    def __init__(self, n_clusters: int = 8, n_init: int = 10, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.random_state = random_state

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans as SklearnKMeans

        if self.n_clusters > len(X):
            raise ValueError(f"n_clusters={self.n_clusters} exceeds the {len(X)} points")
        model = SklearnKMeans(
            n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.random_state
        )
        labels = model.fit_predict(X)
        self.metrics_ = {"inertia": float(model.inertia_)}
        return labels
