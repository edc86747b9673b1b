"""External metrics: agreement with the dataset's labels.

Items whose true label is unknown (-1) are left out of every metric here. Noise points
(-1 from the clusterer) stay in, so a clusterer cannot score well by calling hard
points noise: the information-theoretic and pair-counting scores treat noise as one
more cluster, and the matching-based scores (accuracy, purity, per-class recall) count
every noise point as wrong. Every metric is NaN when no item has a known label.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from clustergrid import Metric

NAN = float("nan")


def _known(
    labels: np.ndarray, true_labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(true, predicted)`` for the items with a known label, or None if there are none."""
    if true_labels is None:
        raise ValueError("this metric needs the dataset's true labels")
    labels, true_labels = np.asarray(labels), np.asarray(true_labels)
    if len(labels) != len(true_labels):
        raise ValueError(f"{len(labels)} cluster labels but {len(true_labels)} true labels")
    known = true_labels != -1
    if not known.any():
        return None
    return true_labels[known], labels[known]


def _contingency(
    true: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, class_sizes, counts)``: the sorted class values, their item counts,
    and a (non-noise cluster x class) matrix of item counts; noise is in no row."""
    classes, class_index, class_sizes = np.unique(
        true, return_inverse=True, return_counts=True
    )
    clustered = predicted != -1
    _, cluster_index = np.unique(predicted[clustered], return_inverse=True)
    counts = np.zeros((int(cluster_index.max(initial=-1)) + 1, len(classes)), dtype=np.int64)
    np.add.at(counts, (cluster_index, class_index[clustered]), 1)
    return classes, class_sizes, counts


def hungarian_match(
    true: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of clusters to classes maximising the items they share.

    Returns ``(classes, matched, class_sizes)``: the sorted class values, the number of
    items of each class that fall in the cluster matched to it (0 when the class has no
    cluster), and each class's size. Noise (-1) is never matched to a class. With more
    clusters than classes the extra clusters stay unmatched (their items are wrong),
    and vice versa.
    """
    from scipy.optimize import linear_sum_assignment

    classes, class_sizes, counts = _contingency(true, predicted)
    matched = np.zeros(len(classes), dtype=np.int64)
    if len(counts):
        rows, cols = linear_sum_assignment(counts, maximize=True)
        matched[cols] = counts[rows, cols]
    return classes, matched, class_sizes


class _LabelAgreement(Metric):
    """Base of the scikit-learn scores that compare two labelings."""

    needs_labels = True
    direction = "higher"
    #: the name of the function in ``sklearn.metrics``, called as ``score(true, predicted)``
    score: ClassVar[str]

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        import sklearn.metrics

        data = _known(labels, true_labels)
        return NAN if data is None else float(getattr(sklearn.metrics, self.score)(*data))


class AdjustedRand(_LabelAgreement):
    """Adjusted Rand index against the true labels; 1 is perfect, ~0 is chance.

    Noise counts as one more cluster (scikit-learn on the raw labels).
    """

    name = "ari"
    score = "adjusted_rand_score"


class AdjustedMutualInfo(_LabelAgreement):
    """Adjusted mutual information against the true labels; 1 is perfect, ~0 is chance.

    Noise counts as one more cluster (scikit-learn on the raw labels).
    """

    name = "ami"
    score = "adjusted_mutual_info_score"


class NormalizedMutualInfo(_LabelAgreement):
    """Normalised mutual information (arithmetic mean) against the true labels.

    Noise counts as one more cluster (scikit-learn on the raw labels).
    """

    name = "nmi"
    score = "normalized_mutual_info_score"


class Homogeneity(_LabelAgreement):
    """Homogeneity in [0, 1]: 1 when each cluster holds a single class.

    Noise counts as one more cluster, so noise mixing classes lowers it.
    """

    name = "homogeneity"
    score = "homogeneity_score"


class Completeness(_LabelAgreement):
    """Completeness in [0, 1]: 1 when each class lies in a single cluster.

    Noise counts as one more cluster, so classes split into noise lower it.
    """

    name = "completeness"
    score = "completeness_score"


class VMeasure(_LabelAgreement):
    """V-measure in [0, 1]: harmonic mean of homogeneity and completeness.

    Noise counts as one more cluster (scikit-learn on the raw labels).
    """

    name = "v_measure"
    score = "v_measure_score"


class Accuracy(Metric):
    """Accuracy after the best one-to-one cluster-to-class matching (Hungarian).

    Clusters are matched to classes by ``scipy.optimize.linear_sum_assignment`` on the
    cluster x class contingency matrix; accuracy is the matched items over all known
    items. Noise points and items in unmatched clusters count as wrong.
    """

    name = "accuracy"
    needs_labels = True
    direction = "higher"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        data = _known(labels, true_labels)
        if data is None:
            return NAN
        _, matched, class_sizes = hungarian_match(*data)
        return float(matched.sum() / class_sizes.sum())


class Purity(Metric):
    """Purity in [0, 1]: each cluster's majority class count, summed, over all items.

    Clusters may share a majority class (unlike ``accuracy``), so many small clusters
    score high. Noise points count as wrong: they are in the denominator and never in a
    majority; every point noise gives 0.
    """

    name = "purity"
    needs_labels = True
    direction = "higher"

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float:
        data = _known(labels, true_labels)
        if data is None:
            return NAN
        true, predicted = data
        _, _, counts = _contingency(true, predicted)
        return float(counts.max(axis=1, initial=0).sum() / len(true))


class PerClassRecall(Metric):
    """Recall of each class under the Hungarian matching used by ``accuracy``.

    Logged as ``recall.<class>`` (the integer class label) for every class with known
    items: the share of that class's items in the cluster matched to it; 0 for a class
    left without a cluster. Noise points count as not recalled. The main key
    ``per_class_recall`` is their unweighted mean (balanced accuracy under the matching).
    """

    name = "per_class_recall"
    needs_labels = True
    direction = "higher"
    directions: ClassVar[dict[str, str]] = {"recall.*": "higher"}

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> dict[str, float]:
        data = _known(labels, true_labels)
        if data is None:
            return {self.name: NAN}
        classes, matched, class_sizes = hungarian_match(*data)
        recall = matched / class_sizes
        out = {self.name: float(recall.mean())}
        out.update({f"recall.{int(c)}": float(r) for c, r in zip(classes, recall, strict=True)})
        return out


METRICS = (
    AdjustedRand,
    AdjustedMutualInfo,
    NormalizedMutualInfo,
    Homogeneity,
    Completeness,
    VMeasure,
    Accuracy,
    Purity,
    PerClassRecall,
)
