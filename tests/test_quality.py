"""Representation quality, seed stability, reducer trustworthiness and the confusion
matrix: each equals a direct scikit-learn computation, and each is computed once where
it should be."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness
from sklearn.metrics import accuracy_score, adjusted_rand_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clustergrid import runner
from clustergrid.plan import make_plan
from clustergrid.plugins.metrics.representation import KnnAccuracy, LinearProbe
from clustergrid.spec import parse_experiment
from clustergrid.stages import contingency
from clustergrid.tracking import Tracker

GRID = """\
name: quality
seeds: [0, 1, 2]
datasets:
  - plugin: digits
    n_samples: 400
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
    n_components: 8
clusterers:
  - plugin: kmeans
    n_clusters: 10
    n_init: 1
  - plugin: agglomerative
    n_clusters: 10
metrics: [ari, knn_accuracy, linear_probe]
"""


@pytest.fixture
def blobs():
    X, y = make_blobs(300, centers=3, n_features=5, cluster_std=3.0, random_state=0)
    y[:10] = -1  # unknown labels are left out
    return X, y


def folds():
    return StratifiedKFold(5, shuffle=True, random_state=0)


def test_knn_accuracy_equals_scikit_learn(blobs):
    X, y = blobs
    known = y != -1
    expected = cross_val_score(KNeighborsClassifier(5), X[known], y[known], cv=folds()).mean()
    assert KnnAccuracy().compute(X, None, y) == pytest.approx(expected)


def test_linear_probe_equals_scikit_learn(blobs):
    X, y = blobs
    known = y != -1
    X, y = X[known], y[known]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    proba = cross_val_predict(model, X, y, cv=folds(), method="predict_proba")
    scores = LinearProbe().compute(*blobs[:1], None, blobs[1])
    assert scores["probe_accuracy"] == pytest.approx(accuracy_score(y, proba.argmax(1)))
    assert scores["probe_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    for k in range(3):
        assert scores[f"probe_auc.{k}"] == pytest.approx(roc_auc_score(y == k, proba[:, k]))


def test_probes_are_nan_with_a_single_class():
    X = np.random.default_rng(0).normal(size=(20, 3))
    assert np.isnan(KnnAccuracy().compute(X, None, np.zeros(20, dtype=int)))
    assert np.isnan(LinearProbe().compute(X, None, np.zeros(20, dtype=int))["probe_auc"])


def test_contingency_counts_class_cluster_pairs_with_noise_first():
    truth = np.array([0, 0, 1, 1, 2, -1])
    labels = np.array([5, -1, 5, 5, 7, 7])
    assert contingency(truth, labels).tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]


def test_probe_runs_once_per_encoder_output_and_stability_once_per_pipeline(registry):
    plan = make_plan(parse_experiment(GRID, registry), registry)
    stages = [step.stage for step in plan.steps.values()]
    assert stages.count("probe") == 1  # pixels is deterministic: one output for all
    # kmeans is stochastic (3 seeds, 2 reducers): a stability step each; agglomerative
    # is deterministic: one combination per reducer and nothing to compare.
    assert stages.count("stability") == 2
    assert len(plan.combinations) == 2 * 3 + 2


def test_grid_logs_quality_stability_trustworthiness_and_confusion(registry, workdir):
    summary = runner.run(parse_experiment(GRID, registry), registry)
    assert summary.failed == [] and summary.finished == 8
    tracker = Tracker(None, "quality")
    runs = tracker.combination_runs()
    digits = load_digits()
    X = digits.data[:400].astype(np.float32)
    truth = digits.target[:400]

    # The probe is the same number in every run that shares the encoder output.
    assert len({r.data.metrics["knn_accuracy"] for r in runs}) == 1
    expected = cross_val_score(KNeighborsClassifier(5), X, truth, cv=folds()).mean()
    assert runs[0].data.metrics["knn_accuracy"] == pytest.approx(expected)
    assert {r.data.metrics["probe_auc"] for r in runs} == {runs[0].data.metrics["probe_auc"]}

    def labels_of(run):
        text = Path(tracker.client.download_artifacts(run.info.run_id, "labels.csv")).read_text()
        return np.array([int(row["cluster"]) for row in csv.DictReader(io.StringIO(text))])

    kmeans_pca = [r for r in runs if r.data.params["clusterer"] == "kmeans"
                  and r.data.params["reducer"] == "pca"]
    assert len(kmeans_pca) == 3
    pairs = [adjusted_rand_score(labels_of(a), labels_of(b))
             for a, b in itertools.combinations(kmeans_pca, 2)]
    for run in kmeans_pca:
        assert run.data.metrics["stability_ari"] == pytest.approx(np.mean(pairs))
        assert run.data.metrics["stability_ari_std"] == pytest.approx(np.std(pairs))
        assert run.data.metrics["stability_seeds"] == 3
    deterministic = [r for r in runs if r.data.params["clusterer"] == "agglomerative"]
    assert all("stability_ari" not in r.data.metrics for r in deterministic)

    from sklearn.decomposition import PCA

    reduced = PCA(8, random_state=0).fit_transform(X)
    assert kmeans_pca[0].data.metrics["reduce.trustworthiness"] == pytest.approx(
        trustworthiness(X, reduced, n_neighbors=5), abs=1e-6)

    run = kmeans_pca[0]
    text = Path(tracker.client.download_artifacts(run.info.run_id, "confusion.csv")).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "class" and [row[0] for row in rows[1:]] == [str(d) for d in range(10)]
    table = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert table.sum() == 400
    assert table.tolist() == contingency(truth, labels_of(run)).tolist()
