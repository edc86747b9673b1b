"""Clusterers against direct scikit-learn / hdbscan runs, choosing k, degenerate inputs,
and the digits pipeline (pixels -> umap -> hdbscan)."""

from __future__ import annotations

import math
import warnings

import hdbscan
import numpy as np
import pytest
from sklearn import cluster as skc
from sklearn import mixture
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score

from clustergrid.plugins.clusterers.agglomerative import Agglomerative
from clustergrid.plugins.clusterers.birch import Birch
from clustergrid.plugins.clusterers.dbscan import DBSCAN
from clustergrid.plugins.clusterers.gmm import GaussianMixture
from clustergrid.plugins.clusterers.hdbscan import HDBSCAN
from clustergrid.plugins.clusterers.kmeans import KMeans
from clustergrid.plugins.clusterers.minibatch_kmeans import MiniBatchKMeans
from clustergrid.plugins.clusterers.spectral import Spectral
from clustergrid.plugins.support.choose_k import KClusterer

# Well-separated blobs give a disconnected k-NN graph, which spectral clustering handles
# (each component is a cluster); scikit-learn still warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Graph is not fully connected:UserWarning")

CLUSTERERS = (KMeans, MiniBatchKMeans, GaussianMixture, HDBSCAN, DBSCAN, Agglomerative,
              Spectral, Birch)
K_CLUSTERERS = tuple(c for c in CLUSTERERS if issubclass(c, KClusterer))
STOCHASTIC = {KMeans, MiniBatchKMeans, GaussianMixture, Spectral}


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated blobs."""
    return make_blobs(n_samples=300, centers=4, n_features=4, cluster_std=0.6, random_state=2)


@pytest.mark.parametrize("cls", CLUSTERERS, ids=lambda c: c.name)
def test_contract(cls):
    assert cls.summary()
    assert cls.is_stochastic() == (cls in STOCHASTIC)
    component = cls()
    assert cls(**component.get_params()).get_params() == component.get_params()


# ------------------------------------------------------------ same result as the library


def _direct_cases():
    """(our clusterer, the library estimator it should reproduce) with the same settings."""
    return [
        (KMeans(4, n_init=3, random_state=0), skc.KMeans(4, n_init=3, random_state=0)),
        (
            MiniBatchKMeans(4, batch_size=64, random_state=0),
            skc.MiniBatchKMeans(4, batch_size=64, n_init=3, max_iter=100, random_state=0),
        ),
        (
            GaussianMixture(4, covariance_type="diag", random_state=0),
            mixture.GaussianMixture(4, covariance_type="diag", random_state=0),
        ),
        *[
            (Agglomerative(4, linkage=linkage), skc.AgglomerativeClustering(4, linkage=linkage))
            for linkage in ("ward", "average", "complete", "single")
        ],
        (
            Spectral(4, random_state=0),
            skc.SpectralClustering(4, affinity="nearest_neighbors", random_state=0),
        ),
        (Birch(4, threshold=0.8), skc.Birch(n_clusters=4, threshold=0.8)),
        (DBSCAN(eps=1.0, min_samples=5), skc.DBSCAN(eps=1.0, min_samples=5)),
    ]


@pytest.mark.parametrize(
    ("ours", "direct"), _direct_cases(),
    ids=lambda x: f"{x.name}-{getattr(x, 'linkage', '')}" if hasattr(x, "name") else "",
)
def test_matches_library(blobs, ours, direct):
    X, _ = blobs
    labels = ours.fit_predict(X)
    expected = direct.fit_predict(X)
    np.testing.assert_array_equal(labels, expected)
    if hasattr(direct, "inertia_"):
        assert ours.metrics_["inertia"] == pytest.approx(direct.inertia_)
    if isinstance(direct, mixture.GaussianMixture):
        assert ours.metrics_["bic"] == pytest.approx(direct.bic(X))
        assert ours.metrics_["aic"] == pytest.approx(direct.aic(X))


def test_hdbscan_matches_library_with_noise():
    # Blobs plus a uniform background, so that noise exists.
    X, _ = make_blobs(n_samples=300, centers=3, n_features=2, cluster_std=0.4, random_state=4)
    background = np.random.default_rng(0).uniform(X.min(), X.max(), size=(60, 2))
    X = np.vstack([X, background])
    ours = HDBSCAN(min_cluster_size=15, min_samples=5)
    labels = ours.fit_predict(X)
    direct = hdbscan.HDBSCAN(min_cluster_size=15, min_samples=5).fit(X)
    np.testing.assert_array_equal(labels, direct.labels_)
    assert (labels == -1).any() and labels.min() == -1
    assert ours.probabilities_.shape == (len(X),)
    np.testing.assert_allclose(ours.probabilities_, direct.probabilities_)
    assert np.all(ours.probabilities_[labels == -1] == 0)
    assert ours.metrics_["probability_mean"] == pytest.approx(direct.probabilities_.mean())


def test_hdbscan_leaf_selection_matches_library(blobs):
    X, _ = blobs
    labels = HDBSCAN(min_cluster_size=10, cluster_selection_method="leaf").fit_predict(X)
    expected = hdbscan.HDBSCAN(min_cluster_size=10, cluster_selection_method="leaf").fit(X)
    np.testing.assert_array_equal(labels, expected.labels_)


# ------------------------------------------------------------------------ choosing k


@pytest.mark.parametrize(
    "clusterer",
    [KMeans("auto", k_range=[2, 8], random_state=0),
     GaussianMixture("auto", k_range=[2, 8], criterion="bic", random_state=0)],
    ids=["kmeans-silhouette", "gmm-bic"],
)
def test_auto_k_finds_the_true_k(blobs, clusterer):
    X, y = blobs
    labels = clusterer.fit_predict(X)
    m = clusterer.metrics_
    assert m["chosen_k"] == 4
    assert m["k_curve_k"] == list(range(2, 9))
    assert len(m["k_curve_score"]) == 7
    assert adjusted_rand_score(y, labels) == pytest.approx(1.0)
    pick = np.argmax if clusterer.criterion == "silhouette" else np.argmin
    assert m["k_curve_k"][pick(m["k_curve_score"])] == 4


@pytest.mark.parametrize("true_k", [4, 6])
@pytest.mark.parametrize(
    "cls", [KMeans, GaussianMixture, Agglomerative], ids=lambda c: c.name
)
def test_auto_k_with_default_criterion_finds_separated_blobs(cls, true_k):
    # Centres evenly spaced on a circle of radius 10 (neighbours >= 10 apart) with unit
    # spread: no two blobs touch, so any k but the true one splits or merges a blob.
    angles = 2 * np.pi * np.arange(true_k) / true_k
    centers = 10 * np.c_[np.cos(angles), np.sin(angles)]
    X, y = make_blobs(n_samples=300, centers=centers, cluster_std=1.0, random_state=1)
    kwargs = {"random_state": 0} if cls.is_stochastic() else {}
    clusterer = cls(n_clusters="auto", **kwargs)  # default k_range (2, 10) and criterion
    labels = clusterer.fit_predict(X)
    assert clusterer.metrics_["chosen_k"] == true_k
    assert adjusted_rand_score(y, labels) > 0.95


def test_auto_k_curve_is_the_direct_criterion(blobs):
    X, _ = blobs
    ours = KMeans("auto", k_range=(2, 5), n_init=3, random_state=0)
    ours.fit_predict(X)
    direct = [
        silhouette_score(X, skc.KMeans(k, n_init=3, random_state=0).fit_predict(X))
        for k in range(2, 6)
    ]
    np.testing.assert_allclose(ours.metrics_["k_curve_score"], direct)
    gmm = GaussianMixture("auto", k_range=(2, 5), criterion="bic", random_state=0)
    gmm.fit_predict(X)
    bics = [mixture.GaussianMixture(k, random_state=0).fit(X).bic(X) for k in range(2, 6)]
    np.testing.assert_allclose(gmm.metrics_["k_curve_score"], bics)
    assert gmm.metrics_["bic"] == pytest.approx(min(bics))


@pytest.mark.parametrize(
    "cls", [Agglomerative, Birch, Spectral, MiniBatchKMeans, GaussianMixture],
    ids=lambda c: c.name,
)
def test_auto_k_keeps_the_fit_at_the_chosen_k(blobs, cls):
    # Agglomerative and Birch share one tree across ks: the kept labels must still be
    # what a fresh fit at that k gives.
    X, _ = blobs
    kwargs = {"random_state": 0} if cls.is_stochastic() else {}
    auto = cls(n_clusters="auto", k_range=[2, 6], **kwargs)
    labels = auto.fit_predict(X)
    chosen = auto.metrics_["chosen_k"]
    assert chosen == 4
    np.testing.assert_array_equal(labels, cls(n_clusters=chosen, **kwargs).fit_predict(X))


@pytest.mark.parametrize("cls", K_CLUSTERERS, ids=lambda c: c.name)
def test_criterion_not_allowed(blobs, cls):
    X, _ = blobs
    with pytest.raises(ValueError, match="allowed: 'silhouette'") as error:
        cls(n_clusters="auto", criterion="gap").fit_predict(X)
    assert ("'bic'" in str(error.value)) == (cls is GaussianMixture)
    if cls is not GaussianMixture:
        with pytest.raises(ValueError, match=r"allowed: 'silhouette'$"):
            cls(n_clusters="auto", criterion="bic").fit_predict(X)


@pytest.mark.parametrize("cls", K_CLUSTERERS, ids=lambda c: c.name)
def test_fewer_points_than_clusters(cls):
    X = np.arange(10, dtype=float).reshape(5, 2)
    with pytest.raises(ValueError, match="exceeds the 5 points"):
        cls(n_clusters=6).fit_predict(X)
    with pytest.raises(ValueError, match="more clusters than the 5 points"):
        cls(n_clusters="auto", k_range=[2, 6]).fit_predict(X)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_clusters": "many"}, "positive int or 'auto'"),
        ({"n_clusters": 0}, ">= 1"),
        ({"n_clusters": 2.5}, "positive int or 'auto'"),
        ({"n_clusters": "auto", "k_range": [1, 4]}, "2 <= low <= high"),
        ({"n_clusters": "auto", "k_range": [5, 3]}, "2 <= low <= high"),
        ({"n_clusters": "auto", "k_range": [2]}, "two ints"),
    ],
)
def test_bad_k_settings(blobs, kwargs, message):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        KMeans(**kwargs).fit_predict(X)


def test_auto_k_on_identical_points_keeps_smallest_k():
    # Silhouette is undefined at every k (all distances 0): documented fallback.
    X = np.ones((20, 3))
    clusterer = KMeans("auto", k_range=[2, 4], n_init=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn: fewer distinct points than k
        labels = clusterer.fit_predict(X)
    assert clusterer.metrics_["chosen_k"] == 2
    assert all(math.isnan(s) for s in clusterer.metrics_["k_curve_score"])
    assert len(labels) == 20


# ------------------------------------------------------------------ degenerate inputs


def test_hdbscan_degenerate_inputs():
    # Fewer points than min_cluster_size: no cluster can exist.
    one = HDBSCAN(min_cluster_size=5)
    np.testing.assert_array_equal(one.fit_predict(np.zeros((1, 3))), [-1])
    np.testing.assert_array_equal(one.probabilities_, [0.0])
    # Duplicates: the library's own answer (all noise, probability 0).
    X = np.ones((30, 2))
    ours = HDBSCAN(min_cluster_size=5)
    labels = ours.fit_predict(X)
    direct = hdbscan.HDBSCAN(min_cluster_size=5).fit(X)
    np.testing.assert_array_equal(labels, direct.labels_)
    np.testing.assert_array_equal(ours.probabilities_, direct.probabilities_)
    with pytest.raises(ValueError, match="'eom' or 'leaf'"):
        HDBSCAN(cluster_selection_method="best").fit_predict(X)


def test_dbscan_all_noise_and_duplicates():
    X = np.arange(20, dtype=float).reshape(10, 2) * 10  # points far apart
    model = DBSCAN(eps=1.0, min_samples=3)
    np.testing.assert_array_equal(model.fit_predict(X), np.full(10, -1))
    assert model.metrics_["core_fraction"] == 0.0
    # Duplicates are all within eps of each other: one cluster of core points.
    np.testing.assert_array_equal(model.fit_predict(np.ones((10, 2))), np.zeros(10))
    assert model.metrics_["core_fraction"] == 1.0


# ------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_pixels():
    """Digits as the pipeline sees them: min-max normalised per image, pixels flattened."""
    from clustergrid.plugins.datasets.digits import Digits
    from clustergrid.plugins.encoders.pixels import Pixels
    from clustergrid.plugins.transforms.normalize import Normalize

    dataset = Digits()
    images = Normalize(method="minmax").transform(dataset.read(0, len(dataset)))
    return Pixels().transform(images), dataset.labels()


@pytest.mark.slow
def test_digits_umap_hdbscan(digits_pixels):
    from clustergrid.plugins.reducers.umap import UMAP

    X, y = digits_pixels
    embedding = UMAP(n_components=10, n_neighbors=30, min_dist=0.0, random_state=0).fit_transform(X)
    clusterer = HDBSCAN(min_cluster_size=30)
    labels = clusterer.fit_predict(embedding)
    # ARI on all points, noise as one more cluster (the `ari` metric's convention).
    assert adjusted_rand_score(y, labels) > 0.75
    assert clusterer.probabilities_.shape == (len(y),)


def test_digits_kmeans_matches_sklearn(digits_pixels):
    X, y = digits_pixels
    ours = adjusted_rand_score(y, KMeans(10, n_init=4, random_state=0).fit_predict(X))
    direct = adjusted_rand_score(y, skc.KMeans(10, n_init=4, random_state=0).fit_predict(X))
    assert abs(ours - direct) <= 0.02
    assert ours > 0.5  # k-means on digit pixels is known to land around 0.6-0.7


# ----------------------------------------------------------- a k that fails, auto k


def _failing(cls, errors: dict[int, Exception], monkeypatch):
    """``cls`` whose fit at each k of ``errors`` raises that error, through the same
    ``_fits`` path (shared tree or not) as the real clusterer."""
    if cls is Birch:
        from sklearn.cluster import Birch as SklearnBirch

        partial_fit = SklearnBirch.partial_fit

        def failing_partial_fit(model, *args, **kwargs):
            if model.n_clusters in errors:
                raise errors[model.n_clusters]
            return partial_fit(model, *args, **kwargs)

        monkeypatch.setattr(SklearnBirch, "partial_fit", failing_partial_fit)
        return cls
    fit = cls._fit

    def failing_fit(self, X, k, **kwargs):
        if k in errors:
            raise errors[k]
        return fit(self, X, k, **kwargs)

    monkeypatch.setattr(cls, "_fit", failing_fit)
    return cls


@pytest.mark.parametrize("cls", [KMeans, Agglomerative, Birch], ids=lambda c: c.name)
def test_auto_k_a_failing_k_is_nan_and_the_others_go_on(blobs, cls, monkeypatch, caplog):
    X, _ = blobs
    kwargs = {"random_state": 0} if cls.is_stochastic() else {}
    expected = cls(n_clusters="auto", k_range=[2, 6], **kwargs)
    expected.fit_predict(X)
    error = np.linalg.LinAlgError("Matrix is not positive definite")
    failing = _failing(cls, {3: error}, monkeypatch)(n_clusters="auto", k_range=[2, 6],
                                                     **kwargs)
    with caplog.at_level("WARNING", logger="clustergrid"):
        labels = failing.fit_predict(X)
    curve = failing.metrics_["k_curve_score"]
    assert math.isnan(curve[1])
    # The other ks are scored as without the failure, and the best of them is kept.
    np.testing.assert_allclose(np.delete(curve, 1),
                               np.delete(expected.metrics_["k_curve_score"], 1))
    assert failing.metrics_["k_curve_failed"] == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert failing.metrics_["chosen_k"] == 4
    assert len(labels) == len(X)
    assert (f"{cls.name}: the fit at k=3 failed (LinAlgError: Matrix is not positive "
            "definite); k=3 is NaN on the k curve") in caplog.text


def test_auto_k_keeps_the_smallest_k_that_fitted_when_the_rest_are_undefined(monkeypatch):
    # Silhouette is undefined at every k (identical points) and k=2 fails: the smallest
    # k fitted is kept, never a failed one.
    clusterer = _failing(KMeans, {2: FloatingPointError("overflow")}, monkeypatch)(
        "auto", k_range=[2, 4], n_init=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn: fewer distinct points than k
        clusterer.fit_predict(np.ones((20, 3)))
    assert clusterer.metrics_["chosen_k"] == 3
    assert clusterer.metrics_["k_curve_failed"] == [1.0, 0.0, 0.0]


def test_auto_k_every_k_failing_is_one_clear_error(blobs, monkeypatch):
    X, _ = blobs
    errors = {k: ValueError(f"ill-defined empirical covariance at {k}") for k in (2, 3, 4)}
    clusterer = _failing(GaussianMixture, errors, monkeypatch)("auto", k_range=[2, 4])
    with pytest.raises(ValueError, match=r"^gmm: the fit failed at every k of k_range "
                       r"\(2, 3, 4\); at k=2: ValueError: ill-defined empirical "
                       r"covariance at 2$"):
        clusterer.fit_predict(X)


def test_auto_k_a_bug_is_raised_at_once(blobs, monkeypatch):
    # Only numerical failures make a k NaN; a programming error is not the data's fault.
    X, _ = blobs
    clusterer = _failing(KMeans, {3: TypeError("bug")}, monkeypatch)("auto", k_range=[2, 4])
    with pytest.raises(TypeError, match="bug"):
        clusterer.fit_predict(X)


# -------------------------------------------------------------- precision per clusterer


def test_clusterers_declare_the_precision_they_need():
    # Mixtures (covariances) and the uncentred |x|^2 - 2 x.c distances of mini-batch
    # k-means and BIRCH's subcluster radii lose their meaning in float32.
    assert {cls.name for cls in CLUSTERERS if cls.dtype is not None} == {
        "gmm", "birch", "minibatch-kmeans"}
    assert all(cls.dtype is np.float64 for cls in CLUSTERERS if cls.dtype is not None)
    for cls in CLUSTERERS:
        cls.check_class()
    for bad in (np.int64, "text"):
        broken = type("Broken", (KMeans,), {"name": "broken", "dtype": bad})
        with pytest.raises(ValueError, match=r"dtype = .* must be None or a floating-point"):
            broken.check_class()


@pytest.mark.parametrize("cls", [MiniBatchKMeans, Birch], ids=lambda c: c.name)
def test_float64_clusterers_are_translation_invariant(cls):
    # Far from the origin float32 distances cancel to noise: what the declared float64
    # is for. The cluster stage casts to it; here the cast is done as the stage does.
    from clustergrid.stages import clusterer_input

    X, _ = make_blobs(2000, centers=5, n_features=16, random_state=0)
    X = (X / 20).astype(np.float32)
    kwargs = {"threshold": 0.05} if cls is Birch else {"random_state": 0}
    near = cls(5, **kwargs).fit_predict(clusterer_input(cls(), X))
    far = cls(5, **kwargs).fit_predict(clusterer_input(cls(), X + np.float32(1e4)))
    assert adjusted_rand_score(near, far) == pytest.approx(1.0)


DIGITS_GMM = """\
name: digits-gmm
datasets:
  - plugin: digits
encoders:
  - plugin: pixels
reducers:
  - plugin: standardize
clusterers:
  - plugin: gmm
    n_clusters: 10
    random_state: 0
metrics: [silhouette]
verdict: {null_draws: 2, resamples: 1, max_points: 300}
"""


def test_gmm_on_standardised_digits_is_fitted_in_float64_by_the_stages(tmp_path, monkeypatch):
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
    from threadpoolctl import threadpool_limits

    from clustergrid.cache import Cache
    from clustergrid.plan import make_plan
    from clustergrid.registry import Registry
    from clustergrid.spec import parse_experiment
    from clustergrid.stages import run_step

    registry = Registry.load()
    plan = make_plan(parse_experiment(DIGITS_GMM, registry), registry)
    (combination,) = plan.combinations
    cache = Cache(tmp_path)
    for stage in ("data", "encode", "reduce"):
        run_step(plan.steps[combination.steps[stage]], cache, registry)
    X = cache.load(combination.steps["reduce"], "X")
    assert X.dtype == np.float32
    # One BLAS thread: a busy machine's oversubscribed threads make EM ten times slower.
    with threadpool_limits(1):
        # What the cluster stage passed before: scikit-learn cannot fit it in float32.
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            SklearnGaussianMixture(10, random_state=0).fit(X)
        seen = []
        fit_predict = SklearnGaussianMixture.fit_predict

        def spy(model, X, y=None):
            seen.append(X.dtype)
            return fit_predict(model, X, y)

        monkeypatch.setattr(SklearnGaussianMixture, "fit_predict", spy)
        meta = run_step(plan.steps[combination.steps["cluster"]], cache, registry)
        assert seen == [np.float64]
        assert meta["metrics"]["converged"] == 1.0
        assert len(np.unique(cache.load(combination.steps["cluster"], "labels"))) == 10
        # The verdict's refits (subsamples, null draws) get the same precision.
        subsample = next(s for s in plan.steps.values() if s.stage == "subsample")
        for parent in subsample.parents:  # the encoding, and the reducer's subsamples
            if not cache.has(parent):
                run_step(plan.steps[parent], cache, registry)
        run_step(subsample, cache, registry)
        assert seen == [np.float64, np.float64]  # the fit, then its one subsample
