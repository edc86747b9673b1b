"""Outlier scores: how unusual each item is, the higher the more unusual.

Every combination gets one score per item. A clusterer that has its own sets
``outlier_scores_`` (GLOSH for ``hdbscan``, the scaled distance to the nearest centroid for
the k-means family, the negative log-likelihood for ``gmm``); for any other, the cluster
step computes ``knn_outlier_scores`` here, in the clusterer's input space. The score
step then ranks the items (``most_unusual``) for the report's gallery of unusual items.
"""

from __future__ import annotations

import numpy as np

#: neighbours whose mean distance makes the generic score (fewer for tiny sets)
NEIGHBOURS = 10
#: above this many items, the generic score measures distances to a fixed random sample
#: of this many items instead of to all of them, so memory and time stay bounded (about
#: 15 s per 100,000 items in 10 dimensions)
REFERENCE_SIZE = 10_000
#: up to this many dimensions a k-d tree finds neighbours fastest; above, brute force
#: (chunked by scikit-learn, so memory stays bounded) beats it several times over
TREE_DIMENSIONS = 3
#: 1.4826 x the median absolute deviation estimates the standard deviation of a normal
MAD_TO_STD = 1.4826


def knn_outlier_scores(X: np.ndarray, k: int = NEIGHBOURS,
                       reference_size: int = REFERENCE_SIZE, seed: int = 0) -> np.ndarray:
    """A low-density score for clusterers that give none: each item's mean distance to its
    ``k`` nearest other items, as a robust z-score (``robust_z``): about 0 for a typical
    item, above 3 for one far from its neighbours; the higher, the more unusual.

    Above ``reference_size`` items the neighbours are looked for among a fixed random
    sample of that many, so the cost grows linearly with the number of items."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    n = len(X)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros(n)
    reference = (np.arange(n) if n <= reference_size else
                 np.sort(np.random.default_rng(seed).choice(n, reference_size, replace=False)))
    algorithm = "auto" if X.shape[1] <= TREE_DIMENSIONS else "brute"
    index = NearestNeighbors(n_neighbors=k + 1, algorithm=algorithm).fit(X[reference])
    distances, _ = index.kneighbors(X)
    # An item of the reference finds itself first (distance 0): its k neighbours follow.
    in_reference = np.zeros(n, dtype=bool)
    in_reference[reference] = True
    mean = np.where(in_reference, distances[:, 1:].mean(axis=1),
                    distances[:, :-1].mean(axis=1))
    return robust_z(mean)


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(values - median) / (1.4826 x MAD)``: a z-score that the outliers themselves do
    not inflate. Where over half the values are equal (MAD 0), the mean absolute deviation
    scales instead, and where every value is equal, every score is 0."""
    values = np.asarray(values, dtype=np.float64)
    centred = values - np.median(values)
    spread = MAD_TO_STD * np.median(np.abs(centred))
    if not spread > 0:
        spread = np.abs(centred).mean()
    return centred / spread if spread > 0 else np.zeros_like(values)


def most_unusual(scores: np.ndarray, among: np.ndarray | None = None,
                 size: int = 16) -> np.ndarray:
    """The ``size`` items with the highest scores, the most unusual first (ties by index);
    only those of ``among`` when given. NaN scores rank last."""
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.arange(len(scores)) if among is None else np.asarray(among)
    values = np.nan_to_num(scores[candidates], nan=-np.inf)
    return candidates[np.argsort(-values, kind="stable")[:size]].astype(np.int64)
