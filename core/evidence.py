"""The numbers behind the label-free verdict, as pure functions of arrays.

- A **null reference**: a Gaussian with the embedding's mean and covariance, the
  "no structure beyond second moments" model of SigClust (Liu, Hayes, Nobel & Marron,
  2008). Any clustering finds *something* in it, so a pipeline's internal score means
  little until it is compared with what the same pipeline scores on such data.
- A **noise-honest silhouette**: the silhouette of the clustered points, averaged over
  *all* points with noise scoring 0, as DBCV weights its clusters (Moulavi et al.,
  2014). Calling points noise therefore never raises it.
- The **gap** of the gap statistic (Tibshirani, Walther & Hastie, 2001): how much
  tighter the clusters are than the same pipeline's on null data, as a log-ratio of
  within-cluster dispersions, noise counting around the mean of all points.
- **Density-based validity** (DBCV; Moulavi, Jaskowiak, Campello, Zimek & Sander,
  2014): each cluster's density separation from its nearest cluster against its own
  density sparseness, over mutual-reachability distances, weighted by its share of all
  points (noise included). It asks whether clusters are dense regions parted by sparse
  ones, whatever their shape: rings, moons and chains score as well as round blobs, and
  a cut through a dense region scores badly, where the silhouette and the gap reward
  any compact partition.
- **Clusterwise stability** under subsampling (Hennig, 2007): for each cluster of the
  full fit, the best Jaccard overlap with a cluster of a refit on a subsample, averaged
  over subsamples.

The plan's stages (``clustergrid.stages``) call these; the rule that turns them into a
ranking is ``clustergrid.verdict``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: part of every evidence step's key: bump it when what these functions compute changes,
#: so cached evidence is recomputed rather than read back stale
VERSION = "5"


def sample_index(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``min(n, size)`` items drawn without replacement (all when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def gaussian_model(X: np.ndarray, max_points: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The mean and scaled principal axes of ``X``: ``mean + z @ axes`` with standard
    normal ``z`` is Gaussian with ``X``'s sample covariance. Estimated from at most
    ``4 * max_points`` rows, so its cost is bounded whatever the data's size."""
    rows = np.asarray(X[sample_index(len(X), 4 * max_points, seed)], dtype=np.float64)
    mean = rows.mean(axis=0)
    if len(rows) < 2:
        return {"mean": mean, "axes": np.zeros((0, rows.shape[1])), "n": np.asarray(len(X))}
    _, singular, vt = np.linalg.svd(rows - mean, full_matrices=False)
    keep = singular > singular.max(initial=0.0) * 1e-7  # drop directions with no variance
    axes = (singular[keep, None] / np.sqrt(len(rows) - 1)) * vt[keep]
    return {"mean": mean, "axes": axes, "n": np.asarray(len(X))}


def draw_reference(mean: np.ndarray, axes: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` points from the Gaussian of ``gaussian_model``."""
    z = np.random.default_rng(seed).standard_normal((size, len(axes)))
    return (mean + z @ axes).astype(np.float32)


def honest_silhouette(X: np.ndarray, labels: np.ndarray, max_points: int,
                      seed: int = 0) -> float:
    """Mean silhouette over all points, noise (-1) scoring 0; on a fixed sample of
    ``max_points`` items when larger (its cost is quadratic). 0 when fewer than two
    clusters remain: there is no separation to measure."""
    return internal_scores(X, labels, max_points, seed).silhouette


@dataclass(frozen=True)
class InternalScores:
    """What ``internal_scores`` measures of one clustering."""

    #: ``honest_silhouette``
    silhouette: float
    #: ``log_dispersion``
    log_dispersion: float
    #: ``density_validity``, and each cluster's own validity
    validity: float
    per_cluster: np.ndarray


def internal_scores(X: np.ndarray, labels: np.ndarray, max_points: int,
                    seed: int = 0) -> InternalScores:
    """The silhouette, the dispersion and the density-based validity of one clustering,
    on one fixed sample of ``max_points`` items and one matrix of its distances: the
    verdict scores every combination and every null draw with all three, and the
    distances are most of their cost."""
    from sklearn.metrics import silhouette_samples

    index = sample_index(len(X), max_points, seed)
    X, labels = np.asarray(X[index], dtype=np.float64), np.asarray(labels[index])
    distances = pairwise_distances(X)
    clustered = labels != -1
    n_clusters = len(np.unique(labels[clustered]))
    silhouette = 0.0
    if 2 <= n_clusters < clustered.sum():
        values = silhouette_samples(distances[np.ix_(clustered, clustered)],
                                    labels[clustered], metric="precomputed")
        silhouette = float(values.sum() / len(labels))
    validity, per_cluster = _density_validity(distances, labels, X.shape[1])
    return InternalScores(silhouette, _log_dispersion(X, labels), validity, per_cluster)


def pairwise_distances(X: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``X`` through one matrix product (a
    sixth of the time of a loop over pairs at 1,000 items): the evidence computes one
    such matrix per clustering and per null draw. Centring first keeps the product's
    cancellation error small; identical rows are exactly 0 apart, as the density-based
    validity needs to leave coincident points out."""
    X = X - X.mean(axis=0)
    squared = np.einsum("ij,ij->i", X, X)
    distances = squared[:, None] + squared[None, :] - 2.0 * (X @ X.T)
    np.maximum(distances, 0.0, out=distances)
    np.sqrt(distances, out=distances)
    np.fill_diagonal(distances, 0.0)
    distinct, row = np.unique(X, axis=0, return_inverse=True)
    if len(distinct) < len(X):
        distances[row[:, None] == row[None, :]] = 0.0
    return distances


def log_dispersion(X: np.ndarray, labels: np.ndarray, max_points: int, seed: int = 0) -> float:
    """``log W``, the pooled within-cluster sum of squares of the gap statistic
    (Tibshirani, Walther & Hastie, 2001), on the sample ``honest_silhouette`` uses. A
    noise point is explained by no cluster: it counts at its distance to the mean of all
    points, as it would in a solution with no clusters at all, so calling points noise
    does not make clusters look tighter."""
    index = sample_index(len(X), max_points, seed)
    return _log_dispersion(np.asarray(X[index], dtype=np.float64), np.asarray(labels[index]))


def _log_dispersion(X: np.ndarray, labels: np.ndarray) -> float:
    residuals = X - X.mean(axis=0)
    for cluster in np.unique(labels[labels != -1]):
        members = labels == cluster
        residuals[members] = X[members] - X[members].mean(axis=0)
    return float(np.log(max(np.sum(residuals**2), 1e-300)))


def density_validity(X: np.ndarray, labels: np.ndarray, max_points: int,
                     seed: int = 0, per_cluster: bool = False):
    """DBCV (Moulavi et al., 2014) on the sample ``honest_silhouette`` uses, in [-1, 1].

    As the authors define it and ``hdbscan.validity.validity_index`` computes it, with
    two differences that keep it defined where that one is not: the all-points core
    distance ``(mean_j d_ij^-D)^(-1/D)`` is computed in log space, so it neither
    overflows nor underflows in hundreds of dimensions (where the library returns NaN),
    and a solution with fewer than two clusters of two or more points scores 0, what
    claiming no structure is worth. Singleton clusters count as noise; noise counts in
    the weights, so calling points noise never raises the score."""
    scores = internal_scores(X, labels, max_points, seed)
    return (scores.validity, scores.per_cluster) if per_cluster else scores.validity


def _density_validity(distances: np.ndarray, labels: np.ndarray,
                      dimension: int) -> tuple[float, np.ndarray]:
    """DBCV and each cluster's validity from the items' pairwise ``distances``."""
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.special import logsumexp

    ids, counts = np.unique(labels[labels != -1], return_counts=True)
    ids = ids[counts >= 2]
    if len(ids) < 2:
        return 0.0, np.zeros(0)
    members = [np.flatnonzero(labels == cluster) for cluster in ids]
    core = np.zeros(len(labels))
    internal, sparseness = [], []
    for where in members:
        within = distances[np.ix_(where, where)]
        with np.errstate(divide="ignore"):
            log_inverse = np.where(within > 0, -np.log(within), -np.inf) * dimension
        # Coincident points add nothing to a density, as in the library.
        log_mean = logsumexp(log_inverse, axis=1) - np.log(len(where) - 1)
        core[where] = np.where(np.isfinite(log_mean), np.exp(-log_mean / dimension), 0.0)
        reach = np.maximum(within, np.maximum.outer(core[where], core[where]))
        # Zero-weight edges vanish from a sparse graph: nudge them to the smallest float.
        tree = minimum_spanning_tree(np.maximum(reach, np.finfo(float).tiny)).tocoo()
        degree = np.bincount(np.r_[tree.row, tree.col], minlength=len(where))
        inner = degree > 1
        edges = inner[tree.row] & inner[tree.col]
        # With no internal edge (a cluster of two), the authors take the largest edge.
        sparseness.append(float(tree.data[edges].max() if edges.any() else tree.data.max()))
        internal.append(where[inner] if inner.any() else where)
    validity = np.empty(len(ids))
    for i, nodes in enumerate(internal):
        separation = min(
            float(np.maximum(distances[np.ix_(nodes, other)],
                             np.maximum.outer(core[nodes], core[other])).min())
            for j, other in enumerate(internal) if j != i)
        validity[i] = (separation - sparseness[i]) / max(separation, sparseness[i], 1e-300)
    score = float(sum(len(where) / len(labels) * v for where, v in zip(members, validity,
                                                                        strict=True)))
    return score, validity


def clusterwise_jaccard(full: np.ndarray, sub: np.ndarray) -> dict[int, float]:
    """For each cluster of ``full`` (restricted to the points ``sub`` labels), the
    highest Jaccard similarity with a cluster of ``sub``; noise is no cluster. A
    cluster absent from the shared points is left out."""
    result = {}
    found = [sub == c for c in np.unique(sub) if c != -1]
    for cluster in np.unique(full):
        if cluster == -1:
            continue
        members = full == cluster
        best = 0.0
        for other in found:
            union = np.count_nonzero(members | other)
            best = max(best, np.count_nonzero(members & other) / union)
        result[int(cluster)] = best
    return result


#: the smallest difference of a k-selection criterion read as a real preference: a
#: silhouette point of 0.01, and a BIC difference of 6 ("strong evidence", Kass & Raftery 1995)
CRITERION_RESOLUTION = {"silhouette": 0.01, "bic": 6.0}


def k_curve_prominence(ks: list[float], scores: list[float], chosen: float,
                       criterion: str) -> float:
    """How far the chosen k's criterion stands from its nearest neighbour on the curve,
    in units of the criterion's resolution (``CRITERION_RESOLUTION``): below 1 the
    curve has no clear optimum. NaN when the chosen k has no finite neighbour."""
    values = dict(zip(ks, scores, strict=True))
    position = list(ks).index(chosen)
    neighbours = [values[ks[i]] for i in (position - 1, position + 1)
                  if 0 <= i < len(ks) and np.isfinite(values[ks[i]])]
    if not neighbours or not np.isfinite(values[chosen]):
        return float("nan")
    gap = min(abs(values[chosen] - v) for v in neighbours)
    return float(gap / CRITERION_RESOLUTION.get(criterion, 1.0))
