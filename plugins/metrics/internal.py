"""Internal metrics: how compact and separated the clusters are in the space the
clusterer saw.

Noise points (-1) belong to no cluster, so every geometric metric here is computed on
the clustered points only; the share left out is what ``noise_fraction`` reports, and
it should be read next to them (a clusterer can look compact by calling half the data
noise). A metric is NaN when it is undefined on what remains: fewer than two clusters,
as many clusters as points, or every point at the same position.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from clustergrid import Metric

NAN = float("nan")


def _clustered(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The non-noise points and their labels, or None when a geometric index is undefined.

    Undefined means fewer than two clusters or as many clusters as points (the
    scikit-learn indices divide by ``n_clusters - 1`` and ``n_points - n_clusters``), or
    all points identical (every distance is 0, so every ratio is 0/0).
    """
    X, labels = np.asarray(X), np.asarray(labels)
    if len(X) != len(labels):
        raise ValueError(f"X has {len(X)} rows but labels has {len(labels)} entries")
    keep = labels != -1
    X, labels = X[keep], labels[keep]
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or n_clusters >= len(labels):
        return None
    if np.all(np.ptp(X, axis=0) == 0):
        return None
    return X, labels


#: scikit-learn's working memory: pairwise distances are computed in blocks of this size
WORKING_MEMORY = 2**30


def silhouette_bytes(n: int, max_exact: int = 10_000, sample_size: int = 2_000) -> int:
    """Peak bytes of ``silhouette_estimate`` on ``n`` points: the float64 distances of
    the points it scores (all up to ``max_exact``, else ``sample_size``) to each other,
    computed by scikit-learn in blocks of at most ``WORKING_MEMORY``."""
    m = n if n <= max_exact or sample_size >= n else sample_size
    return min(m * m * 8, WORKING_MEMORY + m * 8) + 4 * m * 8


def silhouette_estimate(
    X: np.ndarray,
    labels: np.ndarray,
    max_exact: int = 10_000,
    sample_size: int = 2_000,
    n_repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Mean silhouette of the non-noise points: exact, or estimated from subsamples.

    Up to ``max_exact`` clustered points the exact value is returned (spread 0). Above
    it the exact value costs O(n^2) distances, so it is estimated: ``n_repeats`` times,
    ``np.random.default_rng(seed).choice(n, sample_size, replace=False)`` draws a
    subsample of the clustered points (one generator, drawn from in turn) and its
    silhouette is computed; the estimate is their mean and the spread their standard
    deviation (ddof=1, 0 for one repeat). A subsample holding fewer than two clusters
    is skipped. Shared with the clusterers' ``n_clusters: auto`` so both agree.
    """
    from sklearn.metrics import silhouette_score

    if sample_size < 2 or n_repeats < 1:
        raise ValueError(
            f"sample_size must be >= 2 and n_repeats >= 1, got {sample_size}, {n_repeats}"
        )
    data = _clustered(X, labels)
    if data is None:
        n_kept = int(np.sum(np.asarray(labels) != -1))
        return {"silhouette": NAN, "silhouette_sample_size": float(n_kept),
                "silhouette_spread": NAN}
    X, labels = data
    n = len(labels)
    if n <= max_exact or sample_size >= n:
        return {
            "silhouette": float(silhouette_score(X, labels)),
            "silhouette_sample_size": float(n),
            "silhouette_spread": 0.0,
        }
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n_repeats):
        index = rng.choice(n, size=sample_size, replace=False)
        n_sampled = len(np.unique(labels[index]))
        # A tiny cluster can be missed by a draw; silhouette then needs >= 2 clusters.
        if 2 <= n_sampled < sample_size:
            scores.append(float(silhouette_score(X[index], labels[index])))
    if not scores:
        return {"silhouette": NAN, "silhouette_sample_size": float(sample_size),
                "silhouette_spread": NAN}
    spread = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    return {
        "silhouette": float(np.mean(scores)),
        "silhouette_sample_size": float(sample_size),
        "silhouette_spread": spread,
    }


class Silhouette(Metric):
    """Mean silhouette coefficient in [-1, 1], higher is better; sampled on large inputs.

    Noise points are excluded (a noise point has no own cluster to compare against);
    NaN with fewer than two clusters, as many clusters as points, or all points
    identical. Up to ``max_exact`` clustered points it is exact; above, the mean over
    ``n_repeats`` random subsamples of ``sample_size`` points drawn with the fixed
    ``seed`` (see ``silhouette_estimate``). Logged keys: ``silhouette``,
    ``silhouette_sample_size`` (points per computation: all clustered points when
    exact) and ``silhouette_spread`` (standard deviation across subsamples; 0 when
    exact). The seed is fixed rather than the experiment's, so every seed of a run is
    scored on the same subsamples.
    """

    name = "silhouette"
    direction = "higher"
    directions: ClassVar[dict[str, str]] = {
        "silhouette_sample_size": "descriptive",
        "silhouette_spread": "descriptive",
    }

    def __init__(
        self, max_exact: int = 10_000, sample_size: int = 2_000, n_repeats: int = 5, seed: int = 0
    ):
        self.max_exact = max_exact
        self.sample_size = sample_size
        self.n_repeats = n_repeats
        self.seed = seed

    def memory_estimate(self, n: int, d: int) -> int:
        """The distances between the points it scores (``silhouette_bytes``)."""
        return silhouette_bytes(n, self.max_exact, self.sample_size)

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> dict[str, float]:
        return silhouette_estimate(
            X, labels, self.max_exact, self.sample_size, self.n_repeats, self.seed
        )


class DaviesBouldin(Metric):
    """Davies-Bouldin index (scikit-learn), >= 0; lower is better.

    Noise points are excluded. NaN with fewer than two clusters, as many clusters as
    points, all points identical, or every cluster centroid at the same position (each
    ratio then divides by a zero centroid distance; scikit-learn returns 0.0 there,
    which would read as a perfect score).
    """

    name = "davies_bouldin"
    direction = "lower"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        from sklearn.metrics import davies_bouldin_score

        data = _clustered(X, labels)
        if data is None:
            return NAN
        X, labels = data
        centroids = np.stack([X[labels == k].mean(axis=0) for k in np.unique(labels)])
        if np.allclose(centroids, centroids[0]):
            return NAN
        return float(davies_bouldin_score(X, labels))


class CalinskiHarabasz(Metric):
    """Calinski-Harabasz variance ratio (scikit-learn), >= 0; higher is better.

    Noise points are excluded. NaN with fewer than two clusters, as many clusters as
    points, or zero within-cluster dispersion (every cluster a set of duplicates: the
    ratio divides by 0; scikit-learn returns 1.0 there, an arbitrary value).
    """

    name = "calinski_harabasz"
    direction = "higher"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        from sklearn.metrics import calinski_harabasz_score

        data = _clustered(X, labels)
        if data is None:
            return NAN
        X, labels = data
        within = sum(
            float(np.sum((X[labels == k] - X[labels == k].mean(axis=0)) ** 2))
            for k in np.unique(labels)
        )
        if within == 0.0:
            return NAN
        return float(calinski_harabasz_score(X, labels))


class NClusters(Metric):
    """Number of clusters found, noise (-1) not counted; 0 when every point is noise."""

    name = "n_clusters"
    direction = "descriptive"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        labels = np.asarray(labels)
        return float(len(np.unique(labels[labels != -1])))


class NoiseFraction(Metric):
    """Fraction of points labelled noise (-1), in [0, 1]; NaN for an empty input.

    This is the share that the internal metrics leave out.
    """

    name = "noise_fraction"
    # Not "lower": a clusterer that finds no noise may be forcing outliers into clusters.
    direction = "descriptive"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        labels = np.asarray(labels)
        return float(np.mean(labels == -1)) if len(labels) else NAN


class ClusterSizeEntropy(Metric):
    """Normalised Shannon entropy of the cluster sizes, in [0, 1]; 1 = equal sizes.

    ``H(p) / log(k)`` with ``p`` the share of each of the ``k`` clusters among the
    clustered points: noise is excluded (it is not a cluster). NaN with fewer than two
    clusters, where ``log(k) = 0`` leaves the normalisation undefined.
    """

    name = "cluster_size_entropy"
    # Not "higher": equal sizes are only better when the true classes are balanced.
    direction = "descriptive"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        labels = np.asarray(labels)
        _, counts = np.unique(labels[labels != -1], return_counts=True)
        if len(counts) < 2:
            return NAN
        p = counts / counts.sum()
        return float(-np.sum(p * np.log(p)) / np.log(len(counts)))


METRICS = (
    Silhouette,
    DaviesBouldin,
    CalinskiHarabasz,
    NClusters,
    NoiseFraction,
    ClusterSizeEntropy,
)
