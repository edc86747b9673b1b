from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from clustergrid.plugins.support.choose_k import Fit, KClusterer, KRange, NClusters


class Birch(KClusterer):
    """BIRCH (scikit-learn): a one-pass CF-tree of subclusters, then agglomerated to k.

    ``threshold`` is the largest radius of a subcluster, in the data's units: too small
    and every point becomes its own subcluster (slow, n^2 final step), too large and
    fewer than k subclusters exist (scikit-learn then warns and returns fewer
    clusters). ``n_clusters: auto`` picks k from ``k_range`` by ``criterion`` (only
    "silhouette"); the tree is built once and only the final step is redone per k.
    Fitted in float64, whatever the precision the embeddings are stored in.
    """

    name = "birch"
    # 2: fitted in float64 (``dtype``). A subcluster's radius is sum(x^2)/n - |mean|^2,
    # which in float32 cancels to noise once the data sit far from the origin (blobs of
    # spread 0.05 offset by 1e4: ARI 0 between float32's labels and float64's).
    version = "2"
    dtype = np.float64

    def __init__(
        self,
        n_clusters: NClusters = 8,
        threshold: float = 0.5,
        branching_factor: int = 50,
        k_range: KRange = (2, 10),
        criterion: Literal["silhouette"] = "silhouette",
    ):
        self.n_clusters = n_clusters
        self.threshold = threshold
        self.branching_factor = branching_factor
        self.k_range = k_range
        self.criterion = criterion

    def memory_estimate(self, n: int, d: int) -> int:
        """The CF tree: at worst a subcluster per item, each with its centroid and sum of
        squares in float64, beside the data in float64."""
        from clustergrid.memory import FLOAT64

        return 3 * n * d * FLOAT64 + self.criterion_bytes(n)

    def _model(self, k: int | None) -> Any:
        from sklearn.cluster import Birch as SklearnBirch

        return SklearnBirch(
            n_clusters=k, threshold=self.threshold, branching_factor=self.branching_factor
        )

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        model = self._model(k)
        return model.fit_predict(X), model

    def _fits(self, X: np.ndarray, ks: list[int]) -> Iterator[tuple[int, Fit]]:
        # The CF-tree does not depend on k: build it once, then `partial_fit()` with no
        # data reruns only the global clustering of the subclusters for each new k.
        # The one model is re-used, so only the labels (fresh arrays) describe each k.
        model = self._model(None).fit(X)

        def cut(k: int) -> tuple[np.ndarray, Any]:
            model.set_params(n_clusters=k)
            model.partial_fit()
            return model.predict(X), model

        for k in ks:
            yield k, functools.partial(cut, k)
