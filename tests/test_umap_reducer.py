"""The umap reducer's speed-ups change nothing but time: what UMAP compiles is cached on
disk, so a new process loads it instead of compiling; small data gets umap-learn's exact
neighbours from a vectorised search."""

from __future__ import annotations

import os
import sys
import textwrap

import numpy as np
import pytest

from clustergrid.plugins.support.numba_cache import cache_compiled_functions


@pytest.fixture
def compiled_package(tmp_path, monkeypatch):
    """A package of two numba functions, one of which already asks for the cache."""
    package = tmp_path / "nbpackage"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import numba

        @numba.njit
        def plain(x):
            return x + 1

        @numba.njit(cache=True)
        def cached(x):
            return x * 2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import nbpackage

    yield nbpackage
    sys.modules.pop("nbpackage", None)


def test_plain_functions_get_the_disk_cache_and_their_code_is_written(compiled_package):
    assert type(compiled_package.plain._cache).__name__ == "NullCache"
    assert cache_compiled_functions(("nbpackage",)) == 1  # `cached` already had one
    assert compiled_package.plain(1) == 2
    index = compiled_package.plain._cache._cache_file._index_path
    assert index.endswith(".nbi") and os.path.exists(index)
    # a second call finds nothing left to switch on
    assert cache_compiled_functions(("nbpackage",)) == 0


def test_the_umap_reducer_caches_what_umap_compiles():
    from clustergrid.plugins.reducers.umap import UMAP

    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    UMAP(n_components=2, n_neighbors=5, n_epochs=5, random_state=0).fit_transform(X)
    import umap.layouts
    import umap.umap_

    for function in (umap.umap_.smooth_knn_dist, umap.layouts.clip):
        assert type(function._cache).__name__ != "NullCache", function


def test_exact_neighbours_are_umaps_own_on_small_data():
    import umap

    from clustergrid.plugins.reducers.umap import exact_neighbours

    X = np.random.default_rng(1).normal(size=(200, 8)).astype(np.float32)  # no ties
    indices, distances = exact_neighbours(X, 10, "euclidean")
    assert (indices[:, 0] == np.arange(200)).all() and (distances[:, 0] == 0).all()
    # umap-learn below 4,096 points: every pairwise distance, then its graph
    theirs = umap.UMAP(n_neighbors=10, n_epochs=0, random_state=0).fit(X)
    ours = umap.UMAP(n_neighbors=10, n_epochs=0, random_state=0,
                     precomputed_knn=(indices, distances)).fit(X)
    assert (theirs.graph_ != ours.graph_).nnz == 0 or \
        abs(theirs.graph_ - ours.graph_).max() < 1e-5


def test_cosine_neighbours_use_the_cosine_distance():
    from clustergrid.plugins.reducers.umap import exact_neighbours

    X = np.random.default_rng(2).normal(size=(50, 5))
    indices, _ = exact_neighbours(X * np.arange(1, 51)[:, None], 5, "cosine")
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    expected = np.argsort(-(unit @ unit.T), axis=1, kind="stable")[:, :5]
    assert (np.sort(indices, axis=1) == np.sort(expected, axis=1)).all()
