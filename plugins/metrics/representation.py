"""Representation quality: how much of the labels an encoder's output carries, whatever
clustering follows. Computed once per encoder output (``scope = "embedding"``), on
labelled items only (true label -1 left out), with stratified folds shuffled by a fixed
seed so every encoder is judged on the same splits. Above ``max_points`` labelled items,
a fixed random sample of that size is used; NaN when fewer than two classes remain or a
class has fewer than two items.

Both fit on one thread (BLAS and OpenMP). Their work is many small operations (each
L-BFGS iteration multiplies the fold's features by a matrix of one column per class,
twice; a k-NN fold computes a few blocks of distances), where threads spend more time
meeting each other than they save, and on a busy machine each meeting waits for the
scheduler: on 2 shared cores, both probes of 1,000 galaxies of 1,024 pixels took 78-129 s
with the libraries' threads and 1.6-4.4 s on one, with the same scores
(``tests/benchmarks/bench_grid.py --probes``). The solver is kept as it was: at its
tolerance (1e-4) the scores are the converged fit's, a looser one moves them by up to a
fold's spread, saga and newton-cholesky are slower, and starting each fold from the
previous fold's fit would carry that fold's test items into it."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np

from clustergrid import Metric

NAN = float("nan")


def _one_thread():
    """A context in which BLAS and OpenMP run one thread (see the module's docstring)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _labelled(X: np.ndarray, truth: np.ndarray, max_points: int, seed: int):
    """Labelled rows (sampled above ``max_points``) and the number of folds they allow."""
    known = truth != -1
    X, truth = np.asarray(X)[known], truth[known]
    if len(truth) > max_points:
        index = np.sort(np.random.default_rng(seed).choice(len(truth), max_points, replace=False))
        X, truth = X[index], truth[index]
    classes, counts = np.unique(truth, return_counts=True)
    return X, truth, classes, int(counts.min()) if len(counts) else 0


def _folds(n_folds: int, smallest_class: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    # Each class needs a member in every fold.
    return StratifiedKFold(n_splits=min(n_folds, smallest_class), shuffle=True,
                           random_state=seed)


class KnnAccuracy(Metric):
    """Cross-validated k-nearest-neighbour accuracy of the encoder output."""

    name = "knn_accuracy"
    needs_labels = True
    scope = "embedding"
    direction = "higher"

    def __init__(self, n_neighbors: int = 5, n_folds: int = 5, max_points: int = 20_000,
                 seed: int = 0):
        self.n_neighbors = n_neighbors
        self.n_folds = n_folds
        self.max_points = max_points
        self.seed = seed

    def compute(self, X, labels=None, true_labels=None) -> float:
        from sklearn.model_selection import cross_val_score
        from sklearn.neighbors import KNeighborsClassifier

        X, truth, classes, smallest = _labelled(X, true_labels, self.max_points, self.seed)
        if len(classes) < 2 or smallest < 2:
            return NAN
        folds = _folds(self.n_folds, smallest, self.seed)
        n_neighbors = min(self.n_neighbors, len(truth) - len(truth) // folds.n_splits - 1)
        model = KNeighborsClassifier(n_neighbors=max(1, n_neighbors))
        with _one_thread():
            return float(cross_val_score(model, X, truth, cv=folds).mean())


class LinearProbe(Metric):
    """Cross-validated logistic-regression probe: accuracy and one-vs-rest ROC AUC.

    Features are standardised inside each training fold. Logged keys: ``probe_accuracy``,
    ``probe_auc`` (macro one-vs-rest ROC AUC over the out-of-fold probabilities),
    ``probe_auc.<class>`` for each class against the rest, and that class's ROC curve
    ``roc_tpr.<class>``: the true-positive rate at each false-positive rate of
    ``ROC_FPR`` (0, 0.02, ..., 1), logged as steps. ``<class>`` is the class's name
    (``metric_key``) when the dataset names its classes, else its index.
    """

    name = "linear_probe"
    needs_labels = True
    scope = "embedding"
    direction = "higher"
    # Curves are never ranked (they are logged under the probe stage's prefix anyway).
    directions: ClassVar[dict[str, str]] = {
        "probe_accuracy": "higher",
        "probe_auc": "higher",
        "probe_auc.*": "higher",
        "roc_tpr.*": "descriptive",
    }

    def __init__(self, C: float = 1.0, n_folds: int = 5, max_points: int = 20_000,
                 seed: int = 0):
        self.C = C
        self.n_folds = n_folds
        self.max_points = max_points
        self.seed = seed

    def compute(self, X, labels=None, true_labels=None,
                class_names: list[str] | None = None) -> dict[str, float | list[float]]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, truth, classes, smallest = _labelled(X, true_labels, self.max_points, self.seed)
        if len(classes) < 2 or smallest < 2:
            return {"probe_accuracy": NAN, "probe_auc": NAN}
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
        folds = _folds(self.n_folds, smallest, self.seed)
        with _one_thread():
            proba = cross_val_predict(model, X, truth, cv=folds, method="predict_proba")
        return probe_scores(truth, classes, proba, class_names)


def probe_scores(truth: np.ndarray, classes: np.ndarray, proba: np.ndarray,
                 class_names: list[str] | None = None) -> dict[str, float | list[float]]:
    """The linear probe's logged values from its out-of-fold probabilities ``proba``
    (one column per class of ``classes``) of the items labelled ``truth``; per-class
    keys by ``class_names`` (one per class code) when given and unique as metric keys."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    scores = {"probe_accuracy": float(accuracy_score(truth, classes[proba.argmax(1)]))}
    if len(classes) == 2:
        scores["probe_auc"] = float(roc_auc_score(truth, proba[:, 1]))
    else:
        scores["probe_auc"] = float(roc_auc_score(truth, proba, multi_class="ovr",
                                                  labels=classes))
    keys = [str(label) for label in classes]
    if class_names is not None and all(0 <= label < len(class_names) for label in classes):
        named = [metric_key(class_names[label]) for label in classes]
        if len(set(named)) == len(named):  # two names made one key: indices stay
            keys = named
    for column, (label, key) in enumerate(zip(classes, keys, strict=True)):
        scores[f"probe_auc.{key}"] = float(roc_auc_score(truth == label, proba[:, column]))
        scores[f"roc_tpr.{key}"] = roc_at(truth == label, proba[:, column])
    return scores


def metric_key(name: str) -> str:
    """``name`` as part of an MLflow metric key: letters, digits, ``_ - . /`` and
    spaces are kept, anything else becomes ``_``."""
    return re.sub(r"[^\w\-. /]", "_", str(name), flags=re.ASCII) or "_"


#: false-positive rates at which the probe's ROC curves are logged
ROC_FPR = np.linspace(0.0, 1.0, 51)


def roc_at(positive: np.ndarray, score: np.ndarray, fpr_grid: np.ndarray = ROC_FPR,
           ) -> list[float]:
    """The ROC curve's true-positive rate at each false-positive rate of ``fpr_grid``:
    the best rate any threshold reaches without exceeding that false-positive rate."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(positive, score)
    return tpr[np.searchsorted(fpr, fpr_grid, side="right") - 1].tolist()


METRICS = (KnnAccuracy, LinearProbe)
