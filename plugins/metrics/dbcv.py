"""Density-Based Clustering Validation (DBCV, Moulavi et al. 2014, SDM): how dense each
cluster is inside against how sparse the gaps between clusters are, from the ``hdbscan``
library. Unlike silhouette it does not assume round clusters, so it can judge the
arbitrary shapes density clusterers find."""

from __future__ import annotations

import numpy as np

from clustergrid import Metric

NAN = float("nan")


class DBCV(Metric):
    """Density-based clustering validation index in [-1, 1], higher is better.

    ``hdbscan.validity.validity_index`` with the ``distance`` metric: each cluster's
    validity (the density separation to its nearest cluster against its own density
    sparseness, both over mutual-reachability distances) weighted by its share of *all*
    points, noise included. Noise points belong to no cluster and add nothing, so a
    clusterer cannot raise a positive score by calling points noise. A cluster of a
    single point has no density to measure and counts like noise. NaN with fewer than
    two clusters of two or more points.

    The cost grows with the square of the points: above ``max_points`` the index is
    computed on a random subsample of that many points (noise included), drawn with the
    fixed ``seed`` so that every pipeline is scored on the same items.
    """

    name = "dbcv"
    direction = "higher"

    def __init__(self, max_points: int = 2000, seed: int = 0, distance: str = "euclidean"):
        self.max_points = max_points
        self.seed = seed
        self.distance = distance

    def memory_estimate(self, n: int, d: int) -> int:
        """The data in float64, and the library's distances and mutual reachabilities
        between the ``max_points`` (at most) points it scores."""
        m = min(n, max(2, int(self.max_points)))
        return n * d * 8 + 3 * m * m * 8

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        from hdbscan.validity import validity_index

        if self.max_points < 2:
            raise ValueError(f"max_points must be >= 2, got {self.max_points}")
        # The library's compiled spanning tree only takes float64.
        X, labels = np.asarray(X, dtype=np.float64), np.asarray(labels)
        if len(X) != len(labels):
            raise ValueError(f"X has {len(X)} rows but labels has {len(labels)} entries")
        if len(labels) > self.max_points:
            rng = np.random.default_rng(self.seed)
            index = np.sort(rng.choice(len(labels), self.max_points, replace=False))
            X, labels = X[index], labels[index]
        labels = _clusters_of_two_or_more(labels)
        if labels.max(initial=-1) < 1:
            return NAN
        # Coincident points divide 0 by 0 in the library; the result is then NaN.
        with np.errstate(divide="ignore", invalid="ignore"):
            score = float(validity_index(X, labels, metric=self.distance))
        return score if np.isfinite(score) else NAN


def _clusters_of_two_or_more(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... (the library allocates one row per label value up to
    the largest), with clusters of a single point turned into noise (-1): the library
    cannot build the spanning tree of one point."""
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keep = (values != -1) & (counts >= 2)
    renumbered = np.full(len(values), -1, dtype=np.intp)
    renumbered[keep] = np.arange(int(keep.sum()))
    return renumbered[inverse.reshape(-1)]


METRICS = (DBCV,)
