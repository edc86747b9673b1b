"""Every metric against a direct scikit-learn / scipy computation of the documented
definition, with noise and unknown labels present, plus the degenerate inputs."""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import entropy
from sklearn import metrics as skm
from sklearn.datasets import make_blobs
from sklearn.metrics.cluster import contingency_matrix

from clustergrid import Metric, hookimpl
from clustergrid.directions import direction, metric_directions
from clustergrid.plugins.metrics import dbcv, external, internal, representation
from clustergrid.plugins.metrics.dbcv import DBCV
from clustergrid.plugins.metrics.external import (
    Accuracy,
    AdjustedMutualInfo,
    AdjustedRand,
    Completeness,
    Homogeneity,
    NormalizedMutualInfo,
    PerClassRecall,
    Purity,
    VMeasure,
)
from clustergrid.plugins.metrics.internal import (
    CalinskiHarabasz,
    ClusterSizeEntropy,
    DaviesBouldin,
    NClusters,
    NoiseFraction,
    Silhouette,
)
from clustergrid.plugins.metrics.representation import KnnAccuracy, LinearProbe
from clustergrid.stages import logged_directions

ALL_METRICS = (*internal.METRICS, *dbcv.METRICS, *external.METRICS)


@pytest.fixture(scope="module")
def noisy():
    """Blobs with an imperfect clustering: some points mislabelled, ~10% noise, and
    ~5% of the true labels unknown."""
    rng = np.random.default_rng(0)
    X, y = make_blobs(n_samples=400, centers=4, n_features=5, cluster_std=2.0, random_state=0)
    labels = (y + 1) % 4  # renamed clusters: the matching metrics must undo this
    flip = rng.random(len(y)) < 0.15
    labels[flip] = rng.integers(0, 4, flip.sum())
    labels[rng.random(len(y)) < 0.1] = -1
    true = y.copy()
    true[rng.random(len(y)) < 0.05] = -1
    return X, labels, true


# --------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("cls", ALL_METRICS, ids=lambda c: c.name)
def test_contract(cls):
    assert cls.summary(), "first docstring line is the summary"
    assert cls.needs_labels == (cls in external.METRICS)
    assert not cls.is_stochastic(), "a metric's seed is fixed, not the experiment's"
    metric = cls()
    assert type(metric)(**metric.get_params()).get_params() == metric.get_params()


# --------------------------------------------------------------------------- internal


@pytest.mark.parametrize(
    ("metric", "direct"),
    [
        (DaviesBouldin(), skm.davies_bouldin_score),
        (CalinskiHarabasz(), skm.calinski_harabasz_score),
    ],
    ids=["davies_bouldin", "calinski_harabasz"],
)
def test_internal_index_excludes_noise(noisy, metric, direct):
    X, labels, _ = noisy
    keep = labels != -1
    assert metric.compute(X, labels) == pytest.approx(direct(X[keep], labels[keep]), rel=1e-12)


def test_silhouette_exact_excludes_noise(noisy):
    X, labels, _ = noisy
    keep = labels != -1
    out = Silhouette().compute(X, labels)
    assert out["silhouette"] == pytest.approx(skm.silhouette_score(X[keep], labels[keep]))
    assert out["silhouette_sample_size"] == keep.sum()
    assert out["silhouette_spread"] == 0.0


def test_silhouette_sampled_matches_documented_procedure(noisy):
    X, labels, _ = noisy
    metric = Silhouette(max_exact=100, sample_size=150, n_repeats=4, seed=3)
    out = metric.compute(X, labels)
    keep = labels != -1
    Xk, lk = X[keep], labels[keep]
    rng = np.random.default_rng(3)
    scores = []
    for _ in range(4):
        index = rng.choice(len(lk), size=150, replace=False)
        scores.append(skm.silhouette_score(Xk[index], lk[index]))
    assert out["silhouette"] == pytest.approx(np.mean(scores))
    assert out["silhouette_spread"] == pytest.approx(np.std(scores, ddof=1))
    assert out["silhouette_sample_size"] == 150
    assert metric.compute(X, labels) == out, "a fixed seed gives the same estimate"


def test_sampled_silhouette_is_within_its_spread_of_exact():
    X, y = make_blobs(n_samples=20_000, centers=5, n_features=8, cluster_std=3.0, random_state=1)
    exact = skm.silhouette_score(X, y)
    sampled = Silhouette(max_exact=10_000, sample_size=2_000, n_repeats=5).compute(X, y)
    assert sampled["silhouette_sample_size"] == 2_000
    assert 0 < sampled["silhouette_spread"] < 0.05
    assert abs(sampled["silhouette"] - exact) <= 3 * sampled["silhouette_spread"]


def test_counts_and_size_entropy(noisy):
    X, labels, _ = noisy
    clustered = labels[labels != -1]
    _, counts = np.unique(clustered, return_counts=True)
    assert NClusters().compute(X, labels) == len(counts)
    assert NoiseFraction().compute(X, labels) == np.mean(labels == -1)
    assert ClusterSizeEntropy().compute(X, labels) == pytest.approx(
        entropy(counts) / math.log(len(counts))
    )
    # Equal sizes are the maximum, 1; a lopsided split is lower.
    assert ClusterSizeEntropy().compute(X, np.repeat([0, 1], [200, 200])) == pytest.approx(1.0)
    assert ClusterSizeEntropy().compute(X, np.repeat([0, 1], [390, 10])) == pytest.approx(
        entropy([390, 10]) / math.log(2)
    )


INTERNAL_GEOMETRIC = (Silhouette(), DaviesBouldin(), CalinskiHarabasz(), DBCV())


def _main(value):
    return value["silhouette"] if isinstance(value, dict) else value


@pytest.mark.parametrize(
    "labels",
    [
        np.full(6, -1),  # all noise
        np.zeros(6, dtype=int),  # a single cluster
        np.array([0, 0, 0, -1, -1, -1]),  # a single cluster left after removing noise
        np.array([0, 1, 2, -1, -1, -1]),  # as many clusters as clustered points
    ],
    ids=["all-noise", "one-cluster", "one-cluster-plus-noise", "one-point-per-cluster"],
)
@pytest.mark.parametrize("metric", INTERNAL_GEOMETRIC, ids=lambda m: m.name)
def test_internal_undefined_is_nan(metric, labels):
    X = np.arange(18, dtype=float).reshape(6, 3)
    assert math.isnan(_main(metric.compute(X, labels)))


def test_counts_on_all_noise():
    labels = np.full(5, -1)
    X = np.zeros((5, 2))
    assert NClusters().compute(X, labels) == 0
    assert NoiseFraction().compute(X, labels) == 1.0
    assert math.isnan(ClusterSizeEntropy().compute(X, labels))
    assert math.isnan(ClusterSizeEntropy().compute(X, np.zeros(5, dtype=int)))
    assert math.isnan(NoiseFraction().compute(np.zeros((0, 2)), np.zeros(0, dtype=int)))


@pytest.mark.parametrize("metric", INTERNAL_GEOMETRIC, ids=lambda m: m.name)
def test_all_points_identical_is_nan(metric):
    # scikit-learn returns 0 (silhouette, Davies-Bouldin) or 1 (Calinski-Harabasz) here,
    # numbers a report would read as real scores; every distance is 0, so it is 0/0.
    X = np.ones((10, 3))
    labels = np.repeat([0, 1], 5)
    assert math.isnan(_main(metric.compute(X, labels)))


def test_duplicate_points_in_distinct_clusters():
    # Two clusters, each all duplicates: perfectly separated and compact.
    X = np.repeat([[0.0, 0.0], [3.0, 4.0]], 5, axis=0)
    labels = np.repeat([0, 1], 5)
    assert Silhouette().compute(X, labels)["silhouette"] == skm.silhouette_score(X, labels) == 1
    assert DaviesBouldin().compute(X, labels) == skm.davies_bouldin_score(X, labels) == 0
    # Zero within-cluster dispersion: the variance ratio divides by 0 (documented NaN).
    assert math.isnan(CalinskiHarabasz().compute(X, labels))


def test_davies_bouldin_nan_when_centroids_coincide():
    # Two concentric rings: every centroid at the origin, each ratio divides by 0.
    angle = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ring = np.c_[np.cos(angle), np.sin(angle)]
    X = np.vstack([ring, 3 * ring])
    labels = np.repeat([0, 1], 8)
    assert math.isnan(DaviesBouldin().compute(X, labels))
    keep = labels != -1
    assert CalinskiHarabasz().compute(X, labels) == pytest.approx(
        skm.calinski_harabasz_score(X[keep], labels[keep])
    )


# --------------------------------------------------------------------------- external


@pytest.mark.parametrize(
    ("metric", "direct"),
    [
        (AdjustedRand(), skm.adjusted_rand_score),
        (AdjustedMutualInfo(), skm.adjusted_mutual_info_score),
        (NormalizedMutualInfo(), skm.normalized_mutual_info_score),
        (Homogeneity(), skm.homogeneity_score),
        (Completeness(), skm.completeness_score),
        (VMeasure(), skm.v_measure_score),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_sklearn_external_metrics_noise_as_a_cluster(noisy, metric, direct):
    X, labels, true = noisy
    known = true != -1
    # Documented: unknown true labels left out, noise kept as its own cluster (-1).
    assert metric.compute(X, labels, true) == pytest.approx(direct(true[known], labels[known]))


def _brute_force_matching(true, labels):
    """The best cluster -> class assignment by trying every one (small inputs only)."""
    clusters = sorted(set(labels[labels != -1].tolist()))
    classes = sorted(set(true.tolist()))
    best, best_map = -1, None
    # None = cluster left unmatched (more clusters than classes).
    for targets in itertools.permutations(classes + [None] * len(clusters), len(clusters)):
        mapping = dict(zip(clusters, targets, strict=True))
        correct = sum(1 for t, p in zip(true, labels, strict=True) if p != -1 and mapping[p] == t)
        if correct > best:
            best, best_map = correct, mapping
    return best, best_map


@pytest.fixture
def small_case():
    """Four clusters (one extra), three classes, noise, one unknown label; the optimal
    matching is unique (0->2, 1->0, 2->1, 3 unmatched)."""
    true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 0, 1, -1])
    labels = np.array([1, 1, 1, 2, 2, 2, 3, 0, 0, 0, -1, -1, -1, 0, 0])
    return np.zeros((len(true), 2)), labels, true


def test_accuracy_is_the_optimal_matching(small_case):
    X, labels, true = small_case
    known = true != -1
    t, p = true[known], labels[known]
    best, _ = _brute_force_matching(t, p)
    assert Accuracy().compute(X, labels, true) == pytest.approx(best / len(t))
    # The same through scikit-learn's contingency matrix and the Hungarian solver,
    # noise being a row that can never count as correct.
    clusters = np.unique(p)
    counts = contingency_matrix(p, t)[clusters != -1]
    rows, cols = linear_sum_assignment(counts, maximize=True)
    assert Accuracy().compute(X, labels, true) == counts[rows, cols].sum() / len(t)


def test_accuracy_on_larger_input_matches_hungarian(noisy):
    X, labels, true = noisy
    known = true != -1
    t, p = true[known], labels[known]
    counts = contingency_matrix(p, t)[np.unique(p) != -1]
    rows, cols = linear_sum_assignment(counts, maximize=True)
    assert Accuracy().compute(X, labels, true) == pytest.approx(
        counts[rows, cols].sum() / len(t)
    )


def test_purity(small_case, noisy):
    for X, labels, true in (small_case, noisy):
        known = true != -1
        t, p = true[known], labels[known]
        counts = contingency_matrix(p, t)[np.unique(p) != -1]
        assert Purity().compute(X, labels, true) == pytest.approx(
            counts.max(axis=1).sum() / len(t)
        )


def test_per_class_recall_under_the_matching(small_case):
    X, labels, true = small_case
    known = true != -1
    t, p = true[known], labels[known]
    _, mapping = _brute_force_matching(t, p)
    out = PerClassRecall().compute(X, labels, true)
    expected = {}
    for c in np.unique(t):
        recalled = sum(1 for ti, pi in zip(t, p, strict=True) if ti == c and pi != -1
                       and mapping[pi] == c)
        expected[f"recall.{c}"] = recalled / np.sum(t == c)
    assert {k: v for k, v in out.items() if k != "per_class_recall"} == pytest.approx(expected)
    assert out["per_class_recall"] == pytest.approx(np.mean(list(expected.values())))


def test_renamed_perfect_clustering_scores_one():
    true = np.repeat([0, 1, 2], 5)
    labels = np.repeat([7, 3, 5], 5)
    X = np.zeros((15, 1))
    assert Accuracy().compute(X, labels, true) == 1.0
    assert Purity().compute(X, labels, true) == 1.0
    assert PerClassRecall().compute(X, labels, true) == {
        "per_class_recall": 1.0, "recall.0": 1.0, "recall.1": 1.0, "recall.2": 1.0
    }


def test_all_noise_external():
    true = np.repeat([0, 1], 5)
    labels = np.full(10, -1)
    X = np.zeros((10, 1))
    assert Accuracy().compute(X, labels, true) == 0.0
    assert Purity().compute(X, labels, true) == 0.0
    assert PerClassRecall().compute(X, labels, true) == {
        "per_class_recall": 0.0, "recall.0": 0.0, "recall.1": 0.0
    }
    # One all-noise "cluster" carries no information about the classes.
    assert AdjustedRand().compute(X, labels, true) == skm.adjusted_rand_score(true, labels) == 0
    assert Homogeneity().compute(X, labels, true) == skm.homogeneity_score(true, labels) == 0


@pytest.mark.parametrize("cls", external.METRICS, ids=lambda c: c.name)
def test_no_known_labels_is_nan(cls):
    value = cls().compute(np.zeros((4, 1)), np.array([0, 1, 0, 1]), np.full(4, -1))
    value = value[cls.name] if isinstance(value, dict) else value
    assert math.isnan(value)


def test_more_clusters_than_points_external():
    # Every point its own cluster: matching can recall at most one item per class.
    true = np.array([0, 0, 1, 1])
    labels = np.array([0, 1, 2, 3])
    X = np.zeros((4, 1))
    assert Accuracy().compute(X, labels, true) == 0.5
    assert Purity().compute(X, labels, true) == 1.0
    assert AdjustedRand().compute(X, labels, true) == skm.adjusted_rand_score(true, labels)


# --------------------------------------------------------------------------- directions


def test_every_builtin_metric_declares_its_direction(registry):
    builtin = [info.cls for info in registry.all("metric") if info.plugin == "builtin"]
    assert {*internal.METRICS, *dbcv.METRICS, *external.METRICS,
            *representation.METRICS} == set(builtin)
    for cls in builtin:
        # Declared by the metric or a base of its own, not inherited from Metric's default.
        owner = next(c for c in cls.__mro__ if "direction" in vars(c))
        assert owner is not Metric, f"{cls.name} does not declare its direction"


def test_builtin_directions_of_logged_names(registry):
    known = {**metric_directions(info.cls for info in registry.all("metric")),
             **logged_directions()}
    expected = {
        "silhouette": "higher", "silhouette_sample_size": "descriptive",
        "silhouette_spread": "descriptive", "davies_bouldin": "lower",
        "calinski_harabasz": "higher", "dbcv": "higher", "n_clusters": "descriptive",
        "noise_fraction": "descriptive", "cluster_size_entropy": "descriptive",
        "ari": "higher", "ami": "higher", "accuracy": "higher", "per_class_recall": "higher",
        "recall.3": "higher", "knn_accuracy": "higher", "probe_accuracy": "higher",
        "probe_auc": "higher", "probe_auc.0": "higher", "roc_tpr.0": "descriptive",
        "stability_ari": "higher", "stability_ari_std": "descriptive",
        # What components report, curves and timings are never ranked.
        "cluster.bic": "descriptive", "reduce.trustworthiness": "descriptive",
        "probe.roc_tpr.0": "descriptive", "time.cluster": "descriptive",
        "undeclared": "descriptive",
    }
    assert {name: direction(name, known) for name in expected} == expected


def test_dict_keys_take_their_declared_directions():
    class Twofold(Metric):
        """Two keys, one declared by pattern."""

        name = "twofold"
        direction = "lower"
        directions: ClassVar[dict[str, str]] = {"twofold_count": "descriptive",
                                                "twofold.*": "higher"}

    known = metric_directions([Twofold])
    assert known == {"twofold": "lower", "twofold_count": "descriptive", "twofold.*": "higher"}
    assert direction("twofold.7", known) == "higher"
    # An exact name wins over a pattern that matches it.
    assert direction("twofold.x", {**known, "twofold.x": "lower"}) == "lower"


@pytest.mark.parametrize("declared", [{"direction": "up"},
                                      {"directions": {"bad_key": "Higher"}}],
                         ids=["direction", "key"])
def test_a_bad_direction_fails_its_plugin_naming_it(declared):
    import types

    from clustergrid.registry import Registry

    bad = type("Upward", (Metric,), {"__doc__": "Declares a bad direction.",
                                     "name": "upward", **declared})
    plugin = types.ModuleType("upward_plugin")
    plugin.register_metrics = hookimpl(lambda register: register(bad))
    registry = Registry.load(extra=[plugin])
    (failure,) = registry.failures
    assert failure.plugin == "upward_plugin"
    assert "metric 'upward'" in failure.error
    assert "expected one of 'higher', 'lower', 'descriptive'" in failure.error
    assert ("'up'" if "direction" in declared else "key 'bad_key'") in failure.error
    assert "upward" not in registry.components["metric"]
    assert "ari" in registry.components["metric"]  # the other plugins still load


# --------------------------------------------------------------------------- dbcv


@pytest.fixture(scope="module")
def separated():
    """Three well-separated blobs, every point in its true cluster."""
    X, y = make_blobs(n_samples=90, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=1.0,
                      random_state=0)
    return X.astype(np.float32), y


def test_dbcv_is_the_hdbscan_validity_index(noisy):
    from hdbscan.validity import validity_index

    X, labels, _ = noisy
    X = X[:150].astype(np.float32)  # converted to the float64 the library needs
    labels = np.where(labels[:150] >= 0, labels[:150] * 2, -1)  # gaps in numbering: no change
    expected = validity_index(X.astype(np.float64), labels)
    assert -1 <= expected <= 1
    assert DBCV().compute(X, labels) == pytest.approx(expected, rel=1e-12)


def test_dbcv_nan_with_fewer_than_two_clusters(separated):
    X, y = separated
    for labels in (np.zeros_like(y), np.where(y == 0, 0, -1), np.full_like(y, -1)):
        assert math.isnan(DBCV().compute(X, labels))


def test_dbcv_does_not_reward_noise(separated):
    X, y = separated
    good = DBCV().compute(X, y)
    assert good > 0.5
    half_noise = y.copy()
    half_noise[::2] = -1
    assert DBCV().compute(X, half_noise) < good


def test_dbcv_single_point_cluster_counts_as_noise(separated):
    X, y = separated
    labels = y.copy()
    labels[0] = 7  # alone in its cluster: the library cannot measure its density
    as_noise = y.copy()
    as_noise[0] = -1
    assert DBCV().compute(X, labels) == DBCV().compute(X, as_noise)


def test_dbcv_samples_above_max_points(noisy):
    from hdbscan.validity import validity_index

    X, labels, _ = noisy
    index = np.sort(np.random.default_rng(3).choice(len(X), 100, replace=False))
    expected = validity_index(X[index].astype(np.float64), labels[index])
    assert DBCV(max_points=100, seed=3).compute(X, labels) == pytest.approx(expected)
    assert DBCV(max_points=100, seed=4).compute(X, labels) != pytest.approx(expected)


# --------------------------------------------------------------------------- isolation


class Raising(Metric):
    """Always raises."""

    name = "raising"

    def compute(self, X, labels, true_labels=None):
        raise RuntimeError("the lab's metric is broken")


class Wordy(Metric):
    """Returns a word, not a number."""

    name = "wordy"

    def compute(self, X, labels, true_labels=None):
        return "good"


class HalfWordy(Metric):
    """A dict with one number and one word."""

    name = "half_wordy"
    directions: ClassVar[dict[str, str]] = {"half_*": "higher"}

    def compute(self, X, labels, true_labels=None):
        return {"half_number": 1.0, "half_word": "good"}


class FakeAri(Metric):
    """Logs the name another metric logs."""

    name = "fake_ari"

    def compute(self, X, labels, true_labels=None):
        return {"ari": 0.0}


@pytest.fixture
def bad_metrics_registry():
    import types

    from clustergrid.registry import Registry

    plugin = types.ModuleType("bad_metrics")
    plugin.register_metrics = hookimpl(
        lambda register: [register(cls) for cls in (Raising, Wordy, HalfWordy, FakeAri)])
    return Registry.load(extra=[plugin])


def test_a_failing_metric_costs_only_its_own_value(bad_metrics_registry, workdir):
    from conftest import write_experiment

    from clustergrid import runner
    from clustergrid.spec import load_experiment
    from clustergrid.tracking import Tracker

    path = write_experiment(workdir, """\
        name: bad-metrics
        datasets:
          - plugin: digits
            n_samples: 100
        encoders: [{plugin: pixels}]
        reducers: [{plugin: pca, n_components: 4}]
        clusterers: [{plugin: kmeans, n_clusters: 3, n_init: 1}]
        metrics: [ari, wordy, raising, n_clusters]
        """)
    registry = bad_metrics_registry
    summary = runner.run(load_experiment(path, registry), registry)
    assert (summary.finished, summary.failed) == (1, [])  # the combination still finishes
    (run,) = Tracker(None, "bad-metrics").combination_runs()
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    assert 0 < metrics["ari"] <= 1 and metrics["n_clusters"] == 3
    assert math.isnan(metrics["wordy"]) and math.isnan(metrics["raising"])
    # Each error is told under the name of the metric that failed, and names it.
    assert tags["clustergrid.metric.wordy.error"] == (
        "metric 'wordy' failed: TypeError: returned 'good', not a float or a dict of floats")
    assert tags["clustergrid.metric.raising.error"] == (
        "metric 'raising' failed: RuntimeError: the lab's metric is broken")
    assert {key for key in tags if key.startswith("clustergrid.metric.")} == {
        "clustergrid.metric.wordy.error", "clustergrid.metric.raising.error"}


def test_a_metric_is_checked_whole_and_cannot_overwrite_another(bad_metrics_registry):
    from clustergrid.spec import Component
    from clustergrid.stages.pipeline import _compute_metrics

    X, truth = make_blobs(n_samples=60, centers=3, random_state=0)
    components = [Component("metric", name, ())
                  for name in ("ari", "half_wordy", "fake_ari", "builtin:n_clusters")]
    meta = _compute_metrics(components, bad_metrics_registry, X, truth, truth)
    scores, errors = meta["metrics"], meta["metric_errors"]
    assert scores["ari"] == 1.0  # not the impostor's 0.0
    assert scores["n_clusters"] == 3  # a qualified metric logs its own name
    assert "half_number" not in scores and math.isnan(scores["half_wordy"])
    assert math.isnan(scores["fake_ari"])
    assert errors == {
        "half_wordy": "metric 'half_wordy' failed: TypeError: returned 'good' for "
                      "'half_word', not a float or a dict of floats",
        "fake_ari": "metric 'fake_ari' failed: ValueError: it logs 'ari', which metric "
                    "'ari' logs too",
    }


# --------------------------------------------------------------------------- representation


@pytest.fixture(scope="module")
def informative():
    """Three overlapping classes in 8 dimensions, 5 % of the labels unknown, and
    features of unequal scale (as raw pixels or handcrafted features are)."""
    rng = np.random.default_rng(1)
    X, y = make_blobs(n_samples=300, centers=3, n_features=8, cluster_std=3.0, random_state=1)
    X = X * np.geomspace(0.01, 100.0, 8)
    y[rng.random(len(y)) < 0.05] = -1
    return X, y


def test_probes_separate_an_informative_embedding_from_a_random_one(informative):
    X, y = informative
    noise = np.random.default_rng(2).normal(size=X.shape)
    probe, random_probe = LinearProbe().compute(X, None, y), LinearProbe().compute(noise, None, y)
    assert probe["probe_accuracy"] > 0.8 and probe["probe_auc"] > 0.9
    # Three balanced classes: chance is 1/3 and an AUC of 0.5.
    assert random_probe["probe_accuracy"] < 0.5 and random_probe["probe_auc"] < 0.65
    assert KnnAccuracy().compute(X, None, y) > KnnAccuracy().compute(noise, None, y) + 0.3


def test_probes_are_exact_on_a_linearly_separable_set():
    X, y = make_blobs(n_samples=120, centers=[[0, 0, 0], [8, 0, 0], [0, 8, 0]],
                      cluster_std=0.5, random_state=0)
    scores = LinearProbe().compute(X, None, y)
    assert scores["probe_accuracy"] == 1.0 and scores["probe_auc"] == 1.0
    assert all(scores[f"probe_auc.{k}"] == 1.0 for k in range(3))
    # A perfect ranking reaches a true-positive rate of 1 at a false-positive rate of 0.
    assert all(scores[f"roc_tpr.{k}"][0] == 1.0 for k in range(3))
    assert len(scores["roc_tpr.0"]) == len(representation.ROC_FPR)
    assert KnnAccuracy().compute(X, None, y) == 1.0


def test_probe_standardises_on_each_training_fold_only():
    """The scaler of each fold sees that fold's training items only. One far outlier
    inflates a feature's scale: scaled on every item first, all five folds shrink the
    informative feature and predict the majority class; scaled inside the folds, the
    fold that holds the outlier out of its training items does not."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    X = np.c_[y * 2.5 + rng.normal(size=200), rng.normal(size=(200, 2))]
    X[np.flatnonzero(y == 0)[0], 0] = 1e4
    folds = StratifiedKFold(5, shuffle=True, random_state=0)

    def accuracy(model, features):
        proba = cross_val_predict(model, features, y, cv=folds, method="predict_proba")
        return float(np.mean(proba.argmax(1) == y))

    in_folds = accuracy(make_pipeline(StandardScaler(), LogisticRegression()), X)
    leaked = accuracy(LogisticRegression(), StandardScaler().fit_transform(X))
    assert in_folds > leaked + 0.02  # the data tell the two apart
    assert LinearProbe().compute(X, None, y)["probe_accuracy"] == pytest.approx(in_folds)


def test_items_without_labels_or_sampled_out_do_not_reach_the_probes(informative):
    X, y = informative
    extreme = np.full((40, X.shape[1]), 1e6)
    with_unknown = np.vstack([X, extreme]), np.concatenate([y, np.full(40, -1)])
    assert LinearProbe().compute(*with_unknown[:1], None, with_unknown[1]) == \
        LinearProbe().compute(X, None, y)
    assert KnnAccuracy().compute(with_unknown[0], None, with_unknown[1]) == \
        KnnAccuracy().compute(X, None, y)
    # Above max_points, the probe sees a fixed sample: the same score each time.
    sampled = [LinearProbe(max_points=150).compute(X, None, y)["probe_accuracy"]
               for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_probes_fit_on_one_thread_and_restore_the_thread_pools(informative, monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from threadpoolctl import threadpool_info

    seen = []

    def recording(fit):
        def wrapper(self, *args, **kwargs):
            seen.append({pool["num_threads"] for pool in threadpool_info()})
            return fit(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(LogisticRegression, "fit", recording(LogisticRegression.fit))
    monkeypatch.setattr(KNeighborsClassifier, "predict", recording(KNeighborsClassifier.predict))
    before = threadpool_info()
    LinearProbe().compute(*informative[:1], None, informative[1])
    KnnAccuracy().compute(*informative[:1], None, informative[1])
    assert len(seen) == 10 and all(threads == {1} for threads in seen)
    assert threadpool_info() == before


def test_per_class_probe_scores_are_logged_by_class_name():
    X, y = make_blobs(n_samples=120, centers=[[0, 0, 0], [8, 0, 0], [0, 8, 0]],
                      cluster_std=0.5, random_state=0)
    scores = LinearProbe().compute(X, None, y, class_names=["FR I", "FR II", "<b>bent"])
    assert scores["probe_auc.FR I"] == scores["probe_auc.FR II"] == 1.0
    assert "probe_auc._b_bent" in scores and "roc_tpr.FR II" in scores
    assert direction("probe_auc.FR II", metric_directions([LinearProbe])) == "higher"
    # Names that would make one key keep the indices; so does a dataset without names.
    assert "probe_auc.2" in LinearProbe().compute(X, None, y, class_names=["a b", "a?b", "a!b"])
    assert "probe_auc.2" in LinearProbe().compute(X, None, y)


def test_the_probe_stage_gives_class_names_to_metrics_that_take_them():
    from clustergrid.stages.pipeline import _names_for

    class Old(Metric):
        name = "old"

        def compute(self, X, labels, true_labels=None):
            return 0.0

    names = ["FRI", "FRII"]
    assert _names_for(LinearProbe(), np.zeros(3), names) == {"class_names": names}
    assert _names_for(Old(), np.zeros(3), names) == {}
    assert _names_for(LinearProbe(), None, names) == {}


def test_a_run_logs_the_probe_per_class_by_the_datasets_class_names(workdir):
    from clustergrid import runner
    from clustergrid.registry import Registry
    from clustergrid.spec import parse_experiment
    from clustergrid.tracking import Tracker

    registry = Registry.load()
    summary = runner.run(parse_experiment("""\
name: named
datasets: [{plugin: sim-lenses, n_samples: 30, size: 16}]
encoders: [{plugin: pixels}]
reducers: [{plugin: pca, n_components: 2}]
clusterers: [{plugin: kmeans, n_clusters: 3}]
metrics: [linear_probe]
executor: {workers: 1}
""", registry), registry)
    assert summary.finished == 1 and not summary.failed
    metrics = Tracker(None, "named", create=False).combination_runs()[0].data.metrics
    for name in ("no_substructure", "subhalos", "vortex"):
        assert 0 <= metrics[f"probe_auc.{name}"] <= 1
    assert "probe_auc.0" not in metrics
