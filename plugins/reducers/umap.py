from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge

from clustergrid import Reducer


class UMAP(Reducer):
    """UMAP manifold embedding (umap-learn); defaults suited to clustering afterwards.

    ``min_dist: 0`` packs neighbours tightly and ``n_components`` above 2 keeps more
    structure than a plot needs, as the umap-learn guide recommends before density
    clustering. ``metric`` is any umap-learn metric ("euclidean", "cosine", ...).
    A fixed ``random_state`` makes umap-learn run single-threaded so that the result is
    reproducible.
    """

    name = "umap"

    def __init__(
        self,
        n_components: Annotated[int, Ge(1)] = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "euclidean",
        n_epochs: int | None = None,
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        import umap

        n = len(X)
        # umap-learn would silently truncate n_neighbors (the logged parameter would
        # then be wrong) and its spectral initialisation fails with too few points.
        if not 2 <= self.n_neighbors < n:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be between 2 and n_samples - 1 = {n - 1}"
            )
        if self.n_components + 1 >= n:
            raise ValueError(
                f"umap needs more than n_components + 1 = {self.n_components + 1} points, "
                f"got {n}"
            )
        model = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            n_epochs=self.n_epochs,
            random_state=self.random_state,
            # umap-learn forces one thread when seeded and warns; say so up front.
            n_jobs=1 if self.random_state is not None else -1,
        )
        return np.asarray(model.fit_transform(X), dtype=np.float32)
