from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from clustergrid.plugins.support.choose_k import Fit, KClusterer, KRange, NClusters


class Agglomerative(KClusterer):
    """Agglomerative (hierarchical) clustering (scikit-learn), cut at k clusters.

    ``linkage`` is "ward" (minimum variance; needs ``metric: euclidean``), "average",
    "complete" or "single". Memory and time grow as n^2: fine up to ~20k points.
    ``n_clusters: auto`` picks k from ``k_range`` by ``criterion`` (only "silhouette");
    the merge tree is built once and cut at each k.
    """

    name = "agglomerative"

    def __init__(
        self,
        n_clusters: NClusters = 8,
        linkage: Literal["ward", "average", "complete", "single"] = "ward",
        metric: str = "euclidean",
        k_range: KRange = (2, 10),
        criterion: Literal["silhouette"] = "silhouette",
    ):
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.metric = metric
        self.k_range = k_range
        self.criterion = criterion

    def memory_estimate(self, n: int, d: int) -> int:
        """SciPy's linkage on the observations: the condensed distance matrix
        (``n^2 / 2`` float64) and the copy its merging works on, and the data in float64
        (tests/benchmarks/bench_memory.py)."""
        from clustergrid.memory import FLOAT64, pairwise_bytes

        return pairwise_bytes(n, 1.0) + n * d * FLOAT64 + self.criterion_bytes(n)

    def _fit(self, X: np.ndarray, k: int, memory: str | None = None) -> tuple[np.ndarray, Any]:
        from sklearn.cluster import AgglomerativeClustering

        if self.linkage not in ("ward", "average", "complete", "single"):
            raise ValueError(
                f"linkage must be 'ward', 'average', 'complete' or 'single', got {self.linkage!r}"
            )
        model = AgglomerativeClustering(
            n_clusters=k,
            linkage=self.linkage,
            metric=self.metric,
            memory=memory,
            # The full tree does not depend on k, so it is what gets cached across ks.
            compute_full_tree=True,
        )
        return model.fit_predict(X), model

    def _fits(self, X: np.ndarray, ks: list[int]) -> Iterator[tuple[int, Fit]]:
        # scikit-learn caches the O(n^2) tree through `memory`; a private temporary
        # directory makes every k after the first a cheap cut of the same tree.
        with tempfile.TemporaryDirectory(prefix="clustergrid-agglomerative-") as cache:
            for k in ks:
                yield k, functools.partial(self._fit, X, k, memory=cache)
