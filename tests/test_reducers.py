"""Reducers against direct numpy / scikit-learn / umap-learn computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.manifold import TSNE as SklearnTSNE

from clustergrid.plugins.reducers.identity import NoReduction
from clustergrid.plugins.reducers.pca import PCA
from clustergrid.plugins.reducers.standardize import Standardize
from clustergrid.plugins.reducers.tsne import TSNE
from clustergrid.plugins.reducers.umap import UMAP

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
    direct = umap.UMAP(**params, n_jobs=1).fit_transform(X)
    assert out.dtype == np.float32 and out.shape == (len(X), 3)
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-5)


def test_umap_too_few_points(X):
    with pytest.raises(ValueError, match="n_neighbors=15 must be between 2 and"):
        UMAP(n_neighbors=15).fit_transform(X[:10])
    with pytest.raises(ValueError, match="more than n_components"):
        UMAP(n_components=5, n_neighbors=3).fit_transform(X[:6])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_tsne_matches_sklearn(X, metric):
    params = {"n_components": 2, "perplexity": 20.0, "metric": metric, "max_iter": 300,
              "random_state": 0}
    reducer = TSNE(**params)
    out = reducer.fit_transform(X)
    direct = SklearnTSNE(**params, init="pca", learning_rate="auto")
    expected = direct.fit_transform(X)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert reducer.metrics_["kl_divergence"] == pytest.approx(direct.kl_divergence_)


def test_tsne_perplexity_too_large(X):
    message = r"perplexity=30.0 must be less than the number of points \(20\)"
    with pytest.raises(ValueError, match=message):
        TSNE(perplexity=30.0).fit_transform(X[:20])
