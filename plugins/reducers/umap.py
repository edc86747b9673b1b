from __future__ import annotations

import warnings
from typing import Annotated

import numpy as np
from annotated_types import Ge

from clustergrid import Reducer

#: below this many points umap-learn finds exact neighbours, through a distance function
#: it calls from Python once per pair (about 8 s for 1,800 points, longer than the rest of
#: the fit); the same exact neighbours come from scikit-learn's vectorised search instead
EXACT_NEIGHBOURS_BELOW = 4096
#: metrics that mean the same to scikit-learn's search as to umap-learn
VECTORISED_METRICS = frozenset({"euclidean", "l2", "manhattan", "l1", "taxicab", "cosine",
                                "chebyshev", "linfinity", "correlation"})


def exact_neighbours(X: np.ndarray, n_neighbors: int, metric: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``n_neighbors`` nearest points, itself first, as umap-learn lists them:
    ``(indices, distances)``, int64 and float32."""
    from sklearn.neighbors import NearestNeighbors

    metric = {"l2": "euclidean", "l1": "manhattan", "taxicab": "manhattan",
              "linfinity": "chebyshev"}.get(metric, metric)
    X = np.asarray(X, dtype=np.float64)  # float32 dot products lose close distances
    search = NearestNeighbors(n_neighbors=n_neighbors, metric=metric, algorithm="brute")
    distances, indices = search.fit(X).kneighbors(X)
    return indices.astype(np.int64), distances.astype(np.float32)


class UMAP(Reducer):
    """UMAP manifold embedding (umap-learn); defaults suited to clustering afterwards.

    ``min_dist: 0`` packs neighbours tightly and ``n_components`` above 2 keeps more
    structure than a plot needs, as the umap-learn guide recommends before density
    clustering. ``metric`` is any umap-learn metric ("euclidean", "cosine", ...).
    A fixed ``random_state`` makes umap-learn run single-threaded so that the result is
    reproducible. What umap-learn compiles is kept in numba's disk cache, so only the
    first fit on a machine pays the compilation (about 10 s), not every process. Below
    4,096 points umap-learn uses exact nearest neighbours; they are found here by
    scikit-learn's vectorised search for the metrics both libraries share.
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

    def memory_estimate(self, n: int, d: int) -> int:
        """The fuzzy neighbour graph (``n_neighbors`` per item, a few sparse matrices of a
        value and an index each) and the data in float64; below
        ``EXACT_NEIGHBOURS_BELOW`` items, the exact search's distances, in blocks of at
        most 1 GiB (scikit-learn's working memory)."""
        from clustergrid.memory import FLOAT64

        exact = min(n * n * FLOAT64, 2**30) if n < EXACT_NEIGHBOURS_BELOW else 0
        return n * max(1, int(self.n_neighbors)) * 16 * 6 + exact + n * d * FLOAT64

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        import umap

        from clustergrid.plugins.support.numba_cache import cache_compiled_functions

        cache_compiled_functions()
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
        exact = n < EXACT_NEIGHBOURS_BELOW and self.metric in VECTORISED_METRICS
        model = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            n_epochs=self.n_epochs,
            random_state=self.random_state,
            # umap-learn forces one thread when seeded and warns; say so up front.
            n_jobs=1 if self.random_state is not None else -1,
            precomputed_knn=(exact_neighbours(X, self.n_neighbors, self.metric) if exact
                             else (None, None, None)),
        )
        with warnings.catch_warnings():
            # the neighbours given come with no search index, which only `transform` of
            # new points would need; the grid never calls it
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
            return np.asarray(model.fit_transform(X), dtype=np.float32)
