"""Choosing the number of clusters without labels, shared by every clusterer with a k.

A clusterer built on ``KClusterer`` takes ``n_clusters`` as a positive int, or
``"auto"``: it is then fitted once for every k in ``k_range`` (inclusive), each fit is
scored by ``criterion``, and the best one is kept. The whole curve is logged:

- ``metrics_["k_curve_k"]``: the ks tried, in order;
- ``metrics_["k_curve_score"]``: the criterion at each (NaN where undefined, and where
  the fit failed);
- ``metrics_["k_curve_failed"]``: 1 where the fit failed, 0 elsewhere;
- ``metrics_["chosen_k"]``: the k kept.

A fit that fails at one k does not fail the others: a ``FIT_ERRORS`` exception (a
ValueError, such as a mixture's "ill-defined empirical covariance" or a LinAlgError, or
an ArithmeticError) raised by fitting or scoring that k makes it NaN on the curve, and a
warning on the ``clustergrid`` logger names the k and the error. When every k fails,
``fit_predict`` raises one ValueError naming the ks and the first k's error. Any other
exception (a bug, not the data) is raised at once.

Criteria: ``silhouette`` (higher is better; exact up to 10,000 points, else the mean
over 5 subsamples of 2,000, as the ``silhouette`` metric computes it) for every such
clusterer; ``bic`` (lower is better) only for models with a likelihood (``gmm``).
Ties go to the smallest k. When the criterion is undefined for every k that was fitted
(all points identical, say), the smallest k fitted is kept. A failed k is never kept.
"""

from __future__ import annotations

import functools
import logging
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from annotated_types import Ge

from clustergrid import Clusterer
from clustergrid.plugins.metrics.internal import silhouette_bytes, silhouette_estimate

#: criterion -> +1 when higher is better, -1 when lower is better
DIRECTIONS = {"silhouette": 1.0, "bic": -1.0}
#: what a fit at one k may raise and leave the other ks to go on: the data defeating the
#: algorithm there (numpy's and scipy's LinAlgError are ValueErrors), not a bug
FIT_ERRORS = (ValueError, ArithmeticError)

log = logging.getLogger("clustergrid")

#: The type of ``n_clusters``, so experiment files are checked before anything runs:
#: one cluster is no clustering, so a fixed k is at least 2.
NClusters = Annotated[int, Ge(2)] | Literal["auto"]
#: ``[low, high]``, inclusive; in an experiment file a list of lists: ``k_range: [[2, 12]]``
KRange = tuple[int, int]
#: fits at one k: ``() -> (labels, model)``
Fit = Callable[[], tuple[np.ndarray, Any]]


def check_n_clusters(n_clusters: Any, n_samples: int) -> int:
    """``n_clusters`` as an int, or a ValueError saying what is wrong with it."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise ValueError(f"n_clusters must be a positive int or 'auto', got {n_clusters!r}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if n_clusters > n_samples:
        raise ValueError(f"n_clusters={n_clusters} exceeds the {n_samples} points")
    return int(n_clusters)


def candidate_ks(k_range: Sequence[int], n_samples: int) -> list[int]:
    """The ks of an inclusive ``[low, high]`` range, checked against the data size."""
    if (
        len(k_range) != 2
        or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in k_range)
    ):
        raise ValueError(f"k_range must be two ints [low, high], got {k_range!r}")
    low, high = int(k_range[0]), int(k_range[1])
    # k = 1 cannot be scored by silhouette (it needs two clusters to compare).
    if not 2 <= low <= high:
        raise ValueError(f"k_range must satisfy 2 <= low <= high, got {k_range!r}")
    if high > n_samples:
        raise ValueError(f"k_range reaches k={high}, more clusters than the {n_samples} points")
    return list(range(low, high + 1))


#: a cluster smaller than this share of the mean cluster size (n / k) is no reference for
#: outlier scores: a few outliers that k-means gave a centroid of their own (or a mixture a
#: component of their own) would otherwise sit at their centre and look typical
SMALL_CLUSTER_SHARE = 0.25


def reference_clusters(sizes: np.ndarray) -> np.ndarray:
    """Which clusters (by size or weight) are references for outlier scores: those of at
    least ``SMALL_CLUSTER_SHARE`` of the mean size; never none, the largest always is."""
    sizes = np.asarray(sizes, dtype=np.float64)
    return sizes >= SMALL_CLUSTER_SHARE * sizes.sum() / len(sizes)


def centroid_outlier_scores(distances: np.ndarray) -> np.ndarray:
    """k-means outlier scores from ``(n, k)`` distances of each item to each centroid:
    the distance to the nearest centroid divided by the median of that distance over the
    cluster's members, so scores compare across tight and loose clusters (about 1 for a
    typical member; the higher, the more unusual). Members of small clusters (under
    ``SMALL_CLUSTER_SHARE`` of the mean size) are measured against the nearest of the other
    clusters instead."""
    distances = np.asarray(distances, dtype=np.float64)
    n, k = distances.shape
    nearest = distances.argmin(axis=1)
    reference = reference_clusters(np.bincount(nearest, minlength=k))
    to_reference = np.where(reference, distances, np.inf)
    cluster = to_reference.argmin(axis=1)
    distance = to_reference[np.arange(n), cluster]
    scale = np.ones(k)
    for c in np.flatnonzero(reference):
        members = distance[(cluster == c) & (nearest == c)]
        median = np.median(members) if len(members) else 0.0
        scale[c] = median if median > 0 else 1.0
    return distance / scale[cluster]


class KClusterer(Clusterer):
    """Base of clusterers taking ``n_clusters``: a fixed int, or ``"auto"`` over ``k_range``.

    Subclasses implement ``_fit(X, k) -> (labels, model)`` and, optionally,
    ``_model_metrics`` (logged for the kept model), ``_memberships`` (each item's
    probability of its cluster, kept as ``probabilities_``), ``_outlier_scores`` (how
    unusual each item is under the model, the higher the more unusual, kept as
    ``outlier_scores_``), ``_score`` (criteria other than silhouette) and ``_fits`` (to
    share work across ks). ``criteria`` lists the criteria the subclass supports.
    """

    criteria: ClassVar[tuple[str, ...]] = ("silhouette",)

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _fits(self, X: np.ndarray, ks: list[int]) -> Iterator[tuple[int, Fit]]:
        """Each k with a function fitting at it, ``() -> (labels, model)``, called before
        the next k is asked for: work shared by every k is done by the iterator (where an
        error fails every k), the work of one k by its function (where an error fails
        that k alone)."""
        for k in ks:
            yield k, functools.partial(self._fit, X, k)

    def _score(self, X: np.ndarray, labels: np.ndarray, model: Any, criterion: str) -> float:
        if criterion == "silhouette":
            return silhouette_estimate(X, labels)["silhouette"]
        raise ValueError(f"{type(self).__name__} cannot score criterion {criterion!r}")

    def _model_metrics(self, X: np.ndarray, model: Any) -> dict[str, float]:
        return {}

    def criterion_bytes(self, n: int) -> int:
        """What scoring each k of ``auto`` adds: the silhouette's pairwise distances."""
        if self.n_clusters != "auto" or getattr(self, "criterion", "silhouette") != "silhouette":
            return 0
        return silhouette_bytes(n)

    def largest_k(self, n: int) -> int:
        """The largest k fitted on ``n`` points (for memory estimates): ``n_clusters``,
        or the top of ``k_range`` with ``auto``; 2 when either is malformed (the fit then
        says why)."""
        k = self.k_range[-1] if self.n_clusters == "auto" else self.n_clusters
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            return 2
        return max(1, min(int(k), n))

    def _memberships(self, X: np.ndarray, model: Any) -> np.ndarray | None:
        """Each item's probability of its cluster under ``model``, for models that have one."""
        return None

    def _outlier_scores(self, X: np.ndarray, model: Any) -> np.ndarray | None:
        """How unusual each item is under ``model`` (the higher, the more unusual), for
        models that can say; otherwise the cluster step scores items by their density."""
        return None

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        criterion = getattr(self, "criterion", "silhouette")
        # Checked even for a fixed k, so a misspelt criterion never passes silently.
        if criterion not in self.criteria:
            allowed = ", ".join(repr(c) for c in self.criteria)
            raise ValueError(
                f"criterion {criterion!r} is not available for {self.name}; allowed: {allowed}"
            )
        if isinstance(self.n_clusters, str):
            if self.n_clusters != "auto":
                raise ValueError(
                    f"n_clusters must be a positive int or 'auto', got {self.n_clusters!r}"
                )
            labels, model, curve = self._choose(X, candidate_ks(self.k_range, len(X)), criterion)
        else:
            k = check_n_clusters(self.n_clusters, len(X))
            labels, model = self._fit(X, k)
            curve = {}
        self.metrics_ = {**self._model_metrics(X, model), **curve}
        memberships = self._memberships(X, model)
        if memberships is not None:
            self.probabilities_ = memberships
        outlier_scores = self._outlier_scores(X, model)
        if outlier_scores is not None:
            self.outlier_scores_ = np.asarray(outlier_scores, dtype=np.float64)
        return np.asarray(labels, dtype=np.int64)

    def _choose(
        self, X: np.ndarray, ks: list[int], criterion: str
    ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        direction = DIRECTIONS[criterion]
        scores: list[float] = []
        failed: dict[int, Exception] = {}
        best_score, chosen, best_labels, best_model = np.nan, None, None, None
        for k, fit in self._fits(X, ks):
            try:
                labels, model = fit()
                score = float(self._score(X, labels, model, criterion))
            except FIT_ERRORS as exc:
                failed[k] = exc
                scores.append(float("nan"))
                log.warning("%s: the fit at k=%d failed (%s: %s); k=%d is NaN on the k "
                            "curve", self.name, k, type(exc).__name__, exc, k)
                continue
            scores.append(score)
            # The first fit is a fallback for an all-NaN curve; afterwards only a finite,
            # strictly better score wins, so ties keep the smaller k.
            better = np.isfinite(score) and (
                not np.isfinite(best_score) or direction * score > direction * best_score
            )
            if chosen is None or better:
                best_score, chosen, best_labels, best_model = score, k, labels, model
        if chosen is None:
            first, error = next(iter(failed.items()))
            raise ValueError(
                f"{self.name}: the fit failed at every k of k_range "
                f"({', '.join(map(str, ks))}); at k={first}: {type(error).__name__}: {error}"
            ) from error
        curve = {"k_curve_k": list(ks), "k_curve_score": scores,
                 "k_curve_failed": [float(k in failed) for k in ks], "chosen_k": chosen}
        return best_labels, best_model, curve
