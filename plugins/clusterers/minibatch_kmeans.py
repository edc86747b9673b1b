from __future__ import annotations

from typing import Any, Literal

import numpy as np

from clustergrid.plugins.support.choose_k import (
    KClusterer,
    KRange,
    NClusters,
    centroid_outlier_scores,
)


class MiniBatchKMeans(KClusterer):
    """Mini-batch k-means (scikit-learn): k-means on random batches, for large inputs.

    Faster and lighter than ``kmeans`` at a small cost in inertia. ``n_clusters: auto``
    picks k from ``k_range`` by ``criterion`` (only "silhouette"); inertia is logged.
    Outlier scores as for ``kmeans`` (the higher, the more unusual). Fitted in float64,
    whatever the precision the embeddings are stored in (a copy of twice their size).
    """

    name = "minibatch-kmeans"
    # 2: fitted in float64 (``dtype``). Unlike ``kmeans`` (scikit-learn centres the data
    # first), mini-batch distances are |c|^2 - 2 x.c on the raw data, which in float32
    # cancel to noise once the data sit far from the origin (blobs of spread 0.05 offset
    # by 1e3: ARI 0.04 between float32's labels and float64's).
    version = "2"
    dtype = np.float64

    def __init__(
        self,
        n_clusters: NClusters = 8,
        batch_size: int = 1024,
        n_init: int = 3,
        max_iter: int = 100,
        random_state: int | None = None,
        k_range: KRange = (2, 10),
        criterion: Literal["silhouette"] = "silhouette",
    ):
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.k_range = k_range
        self.criterion = criterion

    def memory_estimate(self, n: int, d: int) -> int:
        """A float64 working copy of the data, the centroids of each init, a batch, and
        each item's distance to each centroid (outlier scores)."""
        from clustergrid.memory import FLOAT64

        k = self.largest_k(n)
        batch = min(n, 3 * int(self.batch_size))
        return ((n * d + 3 * k * d + batch * d + 2 * n * k + 4 * n) * FLOAT64
                + self.criterion_bytes(n))

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        from sklearn.cluster import MiniBatchKMeans as SklearnMiniBatchKMeans

        model = SklearnMiniBatchKMeans(
            n_clusters=k,
            batch_size=self.batch_size,
            n_init=self.n_init,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        return model.fit_predict(X), model

    def _model_metrics(self, X: np.ndarray, model: Any) -> dict[str, float]:
        return {"inertia": float(model.inertia_)}

    def _outlier_scores(self, X: np.ndarray, model: Any) -> np.ndarray:
        return centroid_outlier_scores(model.transform(X))
