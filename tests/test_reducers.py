"""Reducers against direct numpy / scikit-learn / umap-learn computations."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA as SklearnPCA

from clustergrid.errors import SpecError
from clustergrid.plugins.reducers.identity import NoReduction
from clustergrid.plugins.reducers.pca import PCA
from clustergrid.plugins.reducers.standardize import Standardize
from clustergrid.plugins.reducers.tsne import TSNE
from clustergrid.plugins.reducers.umap import UMAP, exact_neighbours
from clustergrid.spec import parse_experiment

REDUCERS = (NoReduction, Standardize, PCA, UMAP, TSNE)
STOCHASTIC = {UMAP, TSNE}


@pytest.fixture(scope="module")
def X():
    """200 points in 12-d with correlated features of different scales."""
    X, _ = make_blobs(n_samples=200, centers=3, n_features=6, random_state=0)
    mixing = np.random.default_rng(0).normal(size=(6, 12)) * np.linspace(0.1, 10, 12)
    return (X @ mixing + 5).astype(np.float32)


@pytest.mark.parametrize("cls", REDUCERS, ids=lambda c: c.name)
def test_contract(cls):
    assert cls.summary()
    assert cls.is_stochastic() == (cls in STOCHASTIC)
    component = cls()
    assert cls(**component.get_params()).get_params() == component.get_params()


def test_standardize(X):
    X = X.copy()
    X[:, 3] = 7.0  # a constant feature
    out = Standardize().fit_transform(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    X64 = X.astype(np.float64)
    std = X64.std(axis=0)
    expected = (X64 - X64.mean(axis=0)) / np.where(std > 0, std, 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_array_equal(out[:, 3], 0.0)


def test_pca_int_matches_sklearn(X):
    reducer = PCA(n_components=4)
    out = reducer.fit_transform(X)
    direct = SklearnPCA(n_components=4, random_state=0).fit(X)
    np.testing.assert_allclose(out, direct.transform(X), rtol=1e-4, atol=1e-3)
    assert reducer.metrics_["explained_variance"] == pytest.approx(
        direct.explained_variance_ratio_.sum()
    )


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_pca_variance_fraction(X, fraction):
    reducer = PCA(n_components=fraction)
    out = reducer.fit_transform(X)
    # Fewest components whose explained variance reaches the fraction, from the
    # eigenvalues of the covariance matrix.
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(X.astype(np.float64), rowvar=False)))[::-1]
    ratio = np.cumsum(eigenvalues) / eigenvalues.sum()
    expected_k = int(np.searchsorted(ratio, fraction) + 1)
    assert out.shape == (len(X), expected_k)
    assert reducer.metrics_["n_components"] == expected_k
    assert reducer.metrics_["explained_variance"] >= fraction
    assert reducer.metrics_["explained_variance"] == pytest.approx(ratio[expected_k - 1], rel=1e-5)


def test_pca_whitening(X):
    out = PCA(n_components=3, whiten=True).fit_transform(X)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)


@pytest.mark.parametrize(
    ("n_components", "message"),
    [(0, "between 1 and"), (13, "between 1 and"), (1.0, r"in \(0, 1\)"), (1.5, r"in \(0, 1\)"),
     (0.0, r"in \(0, 1\)"), (True, "an int or a float"), ("all", "an int or a float")],
)
def test_pca_bad_n_components(X, n_components, message):
    with pytest.raises(ValueError, match=message):
        PCA(n_components=n_components).fit_transform(X)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_umap_matches_umap_learn(X, metric):
    import umap

    params = {"n_components": 3, "n_neighbors": 10, "min_dist": 0.0, "metric": metric,
              "n_epochs": 50, "random_state": 1}
    out = UMAP(**params).fit_transform(X)
    # the same exact neighbours as umap-learn's own (tests/test_umap_reducer.py), found faster
    neighbours = exact_neighbours(X, params["n_neighbors"], metric)
    direct = umap.UMAP(**params, n_jobs=1, precomputed_knn=neighbours).fit_transform(X)
    assert out.dtype == np.float32 and out.shape == (len(X), 3)
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-5)


def test_umap_too_few_points(X):
    with pytest.raises(ValueError, match="n_neighbors=15 must be between 2 and"):
        UMAP(n_neighbors=15).fit_transform(X[:10])
    with pytest.raises(ValueError, match="more than n_components"):
        UMAP(n_components=5, n_neighbors=3).fit_transform(X[:6])


@pytest.fixture(scope="module")
def two_blobs():
    """Two well-separated blobs of 100 points each in 10-d, and which blob each is in."""
    return make_blobs(n_samples=200, centers=2, n_features=10, cluster_std=1.0,
                      center_box=(-20, 20), random_state=3)


def _knn_agreement(embedding: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Fraction of points whose k nearest neighbours in ``embedding`` are mostly of
    their own label."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=k + 1).fit(embedding, labels)
    neighbours = knn.kneighbors(embedding, return_distance=False)[:, 1:]
    return float(np.mean((labels[neighbours] == labels[:, None]).mean(axis=1) > 0.5))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_tsne_keeps_separated_blobs_apart(two_blobs, metric):
    X, y = two_blobs
    reducer = TSNE(perplexity=20.0, metric=metric, max_iter=500, n_jobs=1, random_state=0)
    out = reducer.fit_transform(X)
    assert out.dtype == np.float32 and out.shape == (len(X), 2)
    assert _knn_agreement(out, y) == 1.0
    # optimised, not just the PCA start: t-SNE spreads points to a scale of tens
    assert np.ptp(out, axis=0).max() > 10
    kl = reducer.metrics_["kl_divergence"]
    assert np.isfinite(kl) and 0 < kl < 2


def test_tsne_kl_divergence_falls_with_more_iterations(X):
    # early exaggeration only (max_iter == early_exaggeration_iter), then 500 more
    kls = []
    for max_iter in (250, 750):
        reducer = TSNE(max_iter=max_iter, n_jobs=1, random_state=0)
        reducer.fit_transform(X)
        kls.append(reducer.metrics_["kl_divergence"])
    assert np.isfinite(kls).all() and kls[1] < kls[0]


@pytest.mark.parametrize(("initialization", "n_jobs"),
                         [("pca", 1), ("spectral", 1), ("random", 1), ("pca", 2)])
def test_tsne_same_random_state_same_embedding(X, initialization, n_jobs):
    # Few iterations with threads: each iteration waits for both, which takes
    # milliseconds on a loaded machine.
    iterations = ({"max_iter": 300} if n_jobs == 1
                  else {"max_iter": 40, "early_exaggeration_iter": 20})

    def embed(seed):
        return TSNE(initialization=initialization, n_jobs=n_jobs, random_state=seed,
                    **iterations).fit_transform(X)

    first = embed(0)
    np.testing.assert_array_equal(first, embed(0))
    if initialization == "random":
        assert not np.allclose(first, embed(1))


def test_tsne_three_components_use_barnes_hut(X, monkeypatch):
    import openTSNE

    made = []

    class Recording(openTSNE.TSNE):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(openTSNE, "TSNE", Recording)
    reducer = TSNE(n_components=3, max_iter=300, n_jobs=1, random_state=0)
    out = reducer.fit_transform(X)
    assert out.shape == (len(X), 3) and np.isfinite(out).all()
    assert np.isfinite(reducer.metrics_["kl_divergence"])
    TSNE(n_components=2, max_iter=250, n_jobs=1, random_state=0).fit_transform(X)
    # openTSNE's FFT gradient raises for more than 2 components; "auto" would pick it
    # from 10,000 points up.
    assert [m["negative_gradient_method"] for m in made] == ["bh", "auto"]


def test_tsne_perplexity_up_to_n_minus_one_is_honoured(X, caplog):
    # openTSNE's own affinities would lower it to (n - 1) / 3 = 9.67 with a warning
    with caplog.at_level("WARNING", logger="openTSNE"):
        out = TSNE(perplexity=25.0, max_iter=250, n_jobs=1, random_state=0).fit_transform(X[:30])
    assert np.isfinite(out).all()
    assert "too high" not in caplog.text


def test_tsne_exact_neighbours_up_to_40000_points_for_blas_metrics(X, monkeypatch):
    from openTSNE import affinity

    methods = []

    class Recording(affinity.PerplexityBasedNN):
        def __init__(self, *args, **kwargs):
            methods.append(kwargs["method"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(affinity, "PerplexityBasedNN", Recording)
    TSNE(max_iter=250, n_jobs=1, random_state=0).fit_transform(X)
    assert methods == ["exact"]
    assert TSNE(metric="cosine")._neighbour_search(40_000) == "exact"
    # openTSNE's choice: Annoy above, and for metrics that are no matrix product
    assert TSNE()._neighbour_search(40_001) == "auto"
    assert TSNE(metric="manhattan")._neighbour_search(5_000) == "auto"


def test_tsne_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert TSNE()._threads() == 3  # the runner's share for this worker
    assert TSNE(n_jobs=5)._threads() == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert TSNE()._threads() == TSNE(n_jobs=-1)._threads() == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("params", "points", "message"),
    [
        ({"perplexity": 30.0}, 20,
         r"perplexity=30.0 must be above 0 and at most the number of points minus one \(19\)"),
        ({"perplexity": 0.0}, 200, "perplexity=0.0 must be above 0"),
        ({"n_components": 4}, 200, "n_components=4 must be 1, 2 or 3"),
        ({"max_iter": 100}, 200, "max_iter=100 must be at least early_exaggeration_iter=250"),
        ({"n_jobs": 0}, 200, "n_jobs=0 runs nothing"),
    ],
)
def test_tsne_bad_parameters(X, params, points, message):
    with pytest.raises(ValueError, match=message) as raised:
        TSNE(**params).fit_transform(X[:points])
    assert "\n" not in str(raised.value)


def test_tsne_bad_input(X):
    with pytest.raises(ValueError, match="all 40 points are identical"):
        TSNE(perplexity=5.0).fit_transform(np.ones((40, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="pca needs at least n_components=2 features, got 1"):
        TSNE().fit_transform(X[:, :1])
    # openTSNE's own message, one line, naming the metrics it knows
    with pytest.raises(ValueError, match="does not support the `bogus` metric"):
        TSNE(metric="bogus").fit_transform(X)


def test_tsne_parameters_validated_in_experiment_files(registry):
    base = """\
name: t
datasets: [{plugin: digits}]
encoders: [{plugin: pixels}]
reducers: [{plugin: tsne, LINE}]
clusterers: [{plugin: kmeans}]
metrics: [silhouette]
"""
    experiment = parse_experiment(
        base.replace("LINE", "initialization: [pca, spectral], perplexity: 30, n_components: 3"),
        registry)
    assert [r.kwargs["initialization"] for r in experiment.reducers] == ["pca", "spectral"]
    for line, message in [("initialization: umap", "Input should be 'pca', 'spectral' or"),
                          ("n_components: 4", "less than or equal to 3"),
                          ("perplexity: 0", "greater than 0")]:
        with pytest.raises(SpecError, match=message):
            parse_experiment(base.replace("LINE", line), registry)
