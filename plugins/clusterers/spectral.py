from __future__ import annotations

from typing import Any, Literal

import numpy as np

from clustergrid.plugins.support.choose_k import KClusterer, KRange, NClusters


class Spectral(KClusterer):
    """Spectral clustering (scikit-learn) on a nearest-neighbour or RBF affinity graph.

    ``affinity: nearest_neighbors`` (default here) connects each point to its
    ``n_neighbors`` nearest and does not depend on the data's scale; ``rbf`` uses
    ``exp(-gamma * d^2)`` between all pairs, O(n^2) memory. ``assign_labels`` is
    "kmeans", "discretize" or "cluster_qr". ``n_clusters: auto`` picks k from
    ``k_range`` by ``criterion`` (only "silhouette"), refitting at each k.
    """

    name = "spectral"

    def __init__(
        self,
        n_clusters: NClusters = 8,
        affinity: str = "nearest_neighbors",
        n_neighbors: int = 10,
        gamma: float = 1.0,
        assign_labels: str = "kmeans",
        random_state: int | None = None,
        k_range: KRange = (2, 10),
        criterion: Literal["silhouette"] = "silhouette",
    ):
        self.n_clusters = n_clusters
        self.affinity = affinity
        self.n_neighbors = n_neighbors
        self.gamma = gamma
        self.assign_labels = assign_labels
        self.random_state = random_state
        self.k_range = k_range
        self.criterion = criterion

    def memory_estimate(self, n: int, d: int) -> int:
        """``rbf``: the dense affinity, its Laplacian and their working copies, four
        ``n x n`` float64. A nearest-neighbour graph: a few sparse matrices of
        ``n * n_neighbors`` entries (a value and an index each), and the factorisation
        ARPACK's shift-invert mode solves with, which fills in to about a quarter of a
        dense ``n x n`` float64 (tests/benchmarks/bench_memory.py). Both with the data in
        float64."""
        from clustergrid.memory import FLOAT64, pairwise_bytes

        if self.affinity == "nearest_neighbors":
            graph = n * max(1, int(self.n_neighbors)) * 16 * 6 + pairwise_bytes(n, 0.25)
        else:
            graph = pairwise_bytes(n, 4)
        return graph + n * d * FLOAT64 + self.criterion_bytes(n)

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        from sklearn.cluster import SpectralClustering

        if self.affinity == "nearest_neighbors" and self.n_neighbors >= len(X):
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be less than the {len(X)} points"
            )
        model = SpectralClustering(
            n_clusters=k,
            affinity=self.affinity,
            n_neighbors=self.n_neighbors,
            gamma=self.gamma,
            assign_labels=self.assign_labels,
            random_state=self.random_state,
        )
        return model.fit_predict(X), model
