from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Clusterer

#: metrics the ``hdbscan`` library's Boruvka algorithms (KD- and ball trees) take: any
#: other sends it to its generic algorithm, which builds the n x n distance matrix
TREE_METRICS = frozenset({"euclidean", "l2", "minkowski", "p", "manhattan", "cityblock",
                          "l1", "chebyshev", "infinity", "seuclidean", "mahalanobis",
                          "haversine", "braycurtis", "canberra"})


class HDBSCAN(Clusterer):
    """HDBSCAN (the ``hdbscan`` library): density clusters of varying density, noise -1.

    ``min_cluster_size`` is the smallest group kept as a cluster; ``min_samples``
    (default: ``min_cluster_size``) sets how conservative the density estimate is, the
    larger the more points end up as noise. ``cluster_selection_method`` is "eom"
    (excess of mass, a few large clusters) or "leaf" (many small homogeneous ones).
    Each point's membership strength in [0, 1] (0 for noise) is kept as
    ``probabilities_``; their mean is logged as ``probability_mean``. Each point's GLOSH
    outlier score in [0, 1] (the higher, the more unusual) is kept as ``outlier_scores_``
    (NaN where the library leaves it undefined, such as duplicated points). With fewer points
    than ``min_cluster_size`` no cluster can exist and every point is noise. Uses the
    standalone ``hdbscan`` package, not ``sklearn.cluster.HDBSCAN``.
    """

    name = "hdbscan"

    def __init__(
        self,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        cluster_selection_method: Literal["eom", "leaf"] = "eom",
        cluster_selection_epsilon: float = 0.0,
        metric: str = "euclidean",
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.metric = metric

    def memory_estimate(self, n: int, d: int) -> int:
        """With a metric a KD- or ball tree knows, the library's Boruvka algorithm keeps
        each item's ``min_samples`` nearest (core distances) and the tree; with any other,
        its generic algorithm holds the ``n x n`` mutual reachability matrix and the
        distances it is computed from."""
        from clustergrid.memory import FLOAT64, pairwise_bytes

        samples = int(self.min_samples or self.min_cluster_size)
        if self.metric in TREE_METRICS:
            return (4 * n * max(1, samples) * 2 + 3 * n * d + 16 * n) * FLOAT64
        return pairwise_bytes(n, 2) + n * d * FLOAT64

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        import hdbscan

        if self.cluster_selection_method not in ("eom", "leaf"):
            raise ValueError(
                "cluster_selection_method must be 'eom' or 'leaf', got "
                f"{self.cluster_selection_method!r}"
            )
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be >= 2, got {self.min_cluster_size}")
        if len(X) < self.min_cluster_size:
            # Not a single cluster fits; the library itself crashes on one point.
            self.probabilities_ = np.zeros(len(X))
            self.metrics_ = {"probability_mean": 0.0}
            return np.full(len(X), -1, dtype=np.int64)
        model = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_method=self.cluster_selection_method,
            cluster_selection_epsilon=self.cluster_selection_epsilon,
            metric=self.metric,
        )
        labels = np.asarray(model.fit_predict(X), dtype=np.int64)
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        self.outlier_scores_ = np.asarray(model.outlier_scores_, dtype=np.float64)
        self.metrics_ = {"probability_mean": float(self.probabilities_.mean())}
        return labels
