"""External metrics: agreement with the dataset's labels. Items whose true label is
unknown (-1) are left out; noise points (-1 from the clusterer) count as one more
cluster, so a clusterer cannot score well by calling hard points noise."""

from __future__ import annotations

import numpy as np

from clustergrid import Metric


def _known(labels: np.ndarray, true_labels: np.ndarray):
    known = true_labels != -1
    return true_labels[known], labels[known]


class AdjustedRand(Metric):
    """Adjusted Rand index against the true labels; 1 is perfect, ~0 is chance."""

    name = "ari"
    needs_labels = True

    def compute(self, X, labels, true_labels=None):
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(*_known(labels, true_labels)))


class AdjustedMutualInfo(Metric):
    """Adjusted mutual information against the true labels; 1 is perfect, ~0 is chance."""

    name = "ami"
    needs_labels = True

    def compute(self, X, labels, true_labels=None):
        from sklearn.metrics import adjusted_mutual_info_score

        return float(adjusted_mutual_info_score(*_known(labels, true_labels)))


class NormalizedMutualInfo(Metric):
    """Normalised mutual information (arithmetic mean) against the true labels."""

    name = "nmi"
    needs_labels = True

    def compute(self, X, labels, true_labels=None):
        from sklearn.metrics import normalized_mutual_info_score

        return float(normalized_mutual_info_score(*_known(labels, true_labels)))


METRICS = (AdjustedRand, AdjustedMutualInfo, NormalizedMutualInfo)
