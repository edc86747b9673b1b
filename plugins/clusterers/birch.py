from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from clustergrid.plugins.clusterers.choose_k import KClusterer, KRange, NClusters


class Birch(KClusterer):
    """BIRCH (scikit-learn): a one-pass CF-tree of subclusters, then agglomerated to k.

    ``threshold`` is the largest radius of a subcluster, in the data's units: too small
    and every point becomes its own subcluster (slow, n^2 final step), too large and
    fewer than k subclusters exist (scikit-learn then warns and returns fewer
    clusters). ``n_clusters: auto`` picks k from ``k_range`` by ``criterion`` (only
    "silhouette"); the tree is built once and only the final step is redone per k.
    """

    name = "birch"

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

    def _model(self, k: int | None) -> Any:
        from sklearn.cluster import Birch as SklearnBirch

        return SklearnBirch(
            n_clusters=k, threshold=self.threshold, branching_factor=self.branching_factor
        )

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        model = self._model(k)
        return model.fit_predict(X), model

    def _fit_each(self, X: np.ndarray, ks: list[int]) -> Iterator[tuple[int, np.ndarray, Any]]:
        # The CF-tree does not depend on k: build it once, then `partial_fit()` with no
        # data reruns only the global clustering of the subclusters for each new k.
        # The one model is re-used, so only the labels (fresh arrays) describe each k.
        model = self._model(None).fit(X)
        for k in ks:
            model.set_params(n_clusters=k)
            model.partial_fit()
            yield k, model.predict(X), model
