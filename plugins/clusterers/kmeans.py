from __future__ import annotations

from typing import Any, Literal

import numpy as np

from clustergrid.plugins.support.choose_k import (
    KClusterer,
    KRange,
    NClusters,
    centroid_outlier_scores,
)


class KMeans(KClusterer):
    """k-means (scikit-learn, k-means++ initialisation); k fixed or chosen; inertia logged.

    ``n_clusters: auto`` fits every k in ``k_range`` (inclusive) and keeps the best by
    ``criterion`` (only "silhouette"); see ``choose_k`` for what is logged. Each item's
    outlier score (``outlier_scores_``; the higher, the more unusual) is its distance to
    the nearest centroid over that cluster's median (``choose_k.centroid_outlier_scores``).
    """

    name = "kmeans"

    def __init__(
        self,
        n_clusters: NClusters = 8,
        n_init: int = 10,
        random_state: int | None = None,
        k_range: KRange = (2, 10),
        criterion: Literal["silhouette"] = "silhouette",
    ):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.random_state = random_state
        self.k_range = k_range
        self.criterion = criterion

    def memory_estimate(self, n: int, d: int) -> int:
        """scikit-learn's centred copy of the data and the centroids, in the data's
        float32, and each item's distance to each centroid (outlier scores)."""
        from clustergrid.memory import FLOAT32

        k = self.largest_k(n)
        return (n * d + 3 * k * d + 2 * n * k + 4 * n) * FLOAT32 + self.criterion_bytes(n)

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        from sklearn.cluster import KMeans as SklearnKMeans

        model = SklearnKMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        return model.fit_predict(X), model

    def _model_metrics(self, X: np.ndarray, model: Any) -> dict[str, float]:
        return {"inertia": float(model.inertia_)}

    def _outlier_scores(self, X: np.ndarray, model: Any) -> np.ndarray:
        return centroid_outlier_scores(model.transform(X))
