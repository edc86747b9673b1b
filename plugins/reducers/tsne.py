from __future__ import annotations

import os
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge, Gt, Le

from clustergrid import Reducer

#: Up to this many points the nearest neighbours are found exactly, by scikit-learn's
#: brute force on BLAS: faster there than Annoy's 50 trees (on 64-d blobs with 2 threads:
#: 2.0 s against 5.5 s at 10,000 points, 20.6 s against 25.2 s at 40,000; at 512-d,
#: 5.9 s against 8.6 s at 10,000), and the neighbours scikit-learn's t-SNE uses.
EXACT_NEIGHBOURS_UP_TO = 40_000
#: metrics whose exact search is a matrix product (cosine: euclidean on unit vectors)
BLAS_METRICS = ("euclidean", "cosine")


class TSNE(Reducer):
    """t-SNE embedding (openTSNE), a visualisation method; see the caveat below.

    t-SNE preserves who is near whom, not distances: cluster sizes, gaps between
    clusters and their relative positions in the embedding are not meaningful, and it
    can split or merge clusters depending on ``perplexity``. Clustering a t-SNE
    embedding is therefore a visual aid, not a measurement; prefer ``umap`` or ``pca``
    before a clusterer.

    Computed by openTSNE on ``n_jobs`` threads. Nearest neighbours are exact up to
    40,000 points with "euclidean" or "cosine" (a matrix product: faster there than
    Annoy, and the neighbours scikit-learn's t-SNE finds), approximate above (Annoy).
    The repulsive forces are interpolated on a grid by FFT from 10,000 points up
    (Barnes-Hut below, where it is faster), so the cost grows about linearly with the
    number of points. The grid is openTSNE's: 3 points per unit of the embedding, at
    least 50 intervals a side. Against the exact gradient of a 10,000-point embedding it
    errs by 1.1%, as Barnes-Hut does at scikit-learn's theta 0.5 (1.3%); a grid half as
    fine is 4 times cheaper but errs by 12%, and fewer intervals in the early,
    compact iterations by 4%, so it is kept. The FFT method handles 1 or 2 components
    only: with ``n_components: 3`` Barnes-Hut is used at every size, slower on large
    data. More than 3 components are refused (openTSNE's Barnes-Hut may crash there).

    - ``perplexity`` (30): roughly how many neighbours each point keeps (3 x perplexity
      are searched); at most the number of points minus one.
    - ``metric`` ("euclidean"): distance between input points: "euclidean", "cosine",
      "manhattan" or another metric of scikit-learn's nearest neighbours (searched
      with pynndescent from 1,000 points, which compiles it first).
    - ``initialization`` ("pca"): "pca" (the data's first principal components),
      "spectral" (of the neighbour graph) or "random"; the first two keep the global
      layout more faithfully than random.
    - ``early_exaggeration`` (12) for the first ``early_exaggeration_iter`` (250)
      iterations lets clusters form; ``exaggeration`` (1, plain t-SNE) for the rest:
      values of 2-4 pack clusters more tightly, useful above ~100,000 points.
    - ``max_iter`` (1000): iterations in all, the early exaggerated ones included, as
      in scikit-learn. The learning rate is chosen from the number of points.
    - ``n_jobs``: threads; unset, this worker's share of the cores (the runner's
      ``OMP_NUM_THREADS``, else all of them); -1 is all cores. openTSNE's FFT step runs
      on one thread, and its idle OpenMP threads spin through it (some milliseconds
      each iteration): on a machine busy with other work, ``OMP_WAIT_POLICY=passive``
      set before Python starts keeps them from taking its cores (10,000 points on 2
      threads of a loaded 2-core machine: 58 s instead of 91).
    - ``random_state``: the same seed with the same ``n_jobs`` gives the same
      embedding; another thread count changes it slightly (sums run in another order).

    The final KL divergence is logged as ``kl_divergence``.
    """

    name = "tsne"
    # Bumped whenever the same parameters give another embedding, so that cached results
    # are not reused: "2", openTSNE replaced scikit-learn's t-SNE; "3", exact neighbours
    # up to EXACT_NEIGHBOURS_UP_TO points instead of Annoy's approximate ones.
    version = "3"

    def __init__(
        self,
        n_components: Annotated[int, Ge(1), Le(3)] = 2,
        perplexity: Annotated[float, Gt(0)] = 30.0,
        metric: str = "euclidean",
        max_iter: Annotated[int, Ge(1)] = 1000,
        initialization: Literal["pca", "spectral", "random"] = "pca",
        early_exaggeration: Annotated[float, Gt(0)] = 12.0,
        early_exaggeration_iter: Annotated[int, Ge(0)] = 250,
        exaggeration: Annotated[float, Gt(0)] = 1.0,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.metric = metric
        self.max_iter = max_iter
        self.initialization = initialization
        self.early_exaggeration = early_exaggeration
        self.early_exaggeration_iter = early_exaggeration_iter
        self.exaggeration = exaggeration
        self.n_jobs = n_jobs
        self.random_state = random_state

    def memory_estimate(self, n: int, d: int) -> int:
        """The affinities: ``3 x perplexity`` neighbours per item, in a few sparse matrices
        (a value and an index each); the exact neighbour search (up to
        ``EXACT_NEIGHBOURS_UP_TO`` items) computes distances in blocks of at most 1 GiB
        (scikit-learn's working memory); the data in float64."""
        from clustergrid.memory import FLOAT64

        neighbours = min(max(n - 1, 1), max(1, int(3 * self.perplexity)))
        exact = min(n * n * FLOAT64, 2**30) if n <= EXACT_NEIGHBOURS_UP_TO else 0
        return n * neighbours * 16 * 4 + exact + n * d * FLOAT64

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        import openTSNE
        from openTSNE.affinity import PerplexityBasedNN

        self._check(X)
        threads = self._threads()
        # openTSNE's default affinities silently lower a perplexity above (n - 1) / 3 (the
        # logged parameter would then be wrong); these search min(n - 1, 3 x perplexity)
        # neighbours instead, as scikit-learn does, so any perplexity up to n - 1 is kept.
        affinities = PerplexityBasedNN(
            X,
            perplexity=self.perplexity,
            k_neighbors=min(len(X) - 1, max(1, int(3 * self.perplexity))),
            method=self._neighbour_search(len(X)),
            metric=self.metric,
            n_jobs=threads,
            random_state=self.random_state,
        )
        model = openTSNE.TSNE(
            n_components=self.n_components,
            early_exaggeration=self.early_exaggeration,
            early_exaggeration_iter=self.early_exaggeration_iter,
            exaggeration=self.exaggeration,
            n_iter=self.max_iter - self.early_exaggeration_iter,
            initialization=self.initialization,
            # "auto": Barnes-Hut below 10,000 points, FFT interpolation above; FFT cannot
            # embed in 3-d.
            negative_gradient_method="auto" if self.n_components <= 2 else "bh",
            n_jobs=threads,
            random_state=self.random_state,
        )
        embedding = model.fit(X, affinities=affinities)
        self.metrics_ = {"kl_divergence": float(embedding.kl_divergence)}
        return np.asarray(embedding, dtype=np.float32)

    def _check(self, X: np.ndarray) -> None:
        """One-line ValueErrors for what openTSNE would fail on obscurely, or silently
        change (a perplexity it lowers), or turn into NaN (identical points)."""
        n = len(X)
        if not 0 < self.perplexity <= n - 1:
            raise ValueError(
                f"perplexity={self.perplexity} must be above 0 and at most the number of "
                f"points minus one ({n - 1}); it is roughly the number of neighbours each "
                "point keeps"
            )
        if np.ptp(X, axis=0).max() == 0:
            raise ValueError(f"all {n} points are identical: t-SNE has nothing to embed")
        if not 1 <= self.n_components <= 3:
            raise ValueError(
                f"n_components={self.n_components} must be 1, 2 or 3: t-SNE is for "
                "plots, and openTSNE's Barnes-Hut may crash above 3; use umap or pca"
            )
        if self.initialization == "pca" and self.n_components > X.shape[1]:
            raise ValueError(
                f"initialization: pca needs at least n_components={self.n_components} "
                f"features, got {X.shape[1]}; use spectral or random"
            )
        if not 0 <= self.early_exaggeration_iter <= self.max_iter:
            raise ValueError(
                f"max_iter={self.max_iter} must be at least "
                f"early_exaggeration_iter={self.early_exaggeration_iter}: max_iter counts "
                "every iteration, the early exaggerated ones included"
            )
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 runs nothing: give a number of threads, -1 for all "
                             "cores, or leave it unset for this worker's share")

    def _neighbour_search(self, n: int) -> str:
        """openTSNE's neighbour search for ``n`` points: exact up to
        ``EXACT_NEIGHBOURS_UP_TO`` where the metric runs on BLAS, else its own choice."""
        if n <= EXACT_NEIGHBOURS_UP_TO and self.metric in BLAS_METRICS:
            return "exact"
        return "auto"  # exact below 1,000 points, then Annoy, or pynndescent

    def _threads(self) -> int:
        """``n_jobs`` as a positive number of threads."""
        cores = os.cpu_count() or 1
        if self.n_jobs is None:
            # The runner shares the cores between its workers through OMP_NUM_THREADS;
            # openTSNE starts its own threads and would otherwise take every core.
            share = os.environ.get("OMP_NUM_THREADS", "")
            return int(share) if share.isdigit() and int(share) > 0 else cores
        if self.n_jobs < 0:
            return max(1, cores + 1 + self.n_jobs)
        return self.n_jobs
