"""Outlier scores for every combination, and the report's gallery of unusual items: a
handful of pure-noise images hidden among digits must come out on top."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import write_experiment

from clustergrid import runner
from clustergrid.cache import Cache
from clustergrid.export import cluster_table
from clustergrid.outliers import knn_outlier_scores, most_unusual, robust_z
from clustergrid.plugins.datasets.digits import Digits
from clustergrid.plugins.support.choose_k import centroid_outlier_scores
from clustergrid.report import write_report
from clustergrid.spec import load_experiment
from clustergrid.stages import UNUSUAL_SIZE
from clustergrid.tracking import Tracker

#: digits, then this many images of uniform noise at the end
N_DIGITS, N_ODD = 200, 5

GRID = """\
name: odd
seeds: [0]
datasets:
  - plugin: npy
    path: {stack}
    array: images
encoders:
  - plugin: pixels
reducers:
  - plugin: pca
    n_components: 10
clusterers:
  - plugin: kmeans
    n_clusters: 8
  - plugin: minibatch-kmeans
    n_clusters: 8
  - plugin: gmm
    n_clusters: 8
    covariance_type: diag
  - plugin: hdbscan
    min_cluster_size: 5
  - plugin: agglomerative
    n_clusters: 8
executor: {{workers: 1}}
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The grid run once on 200 digits and 5 noise images (the last five); returns its
    folder, the cache and each combination's cluster and reduce step keys by clusterer."""
    folder = tmp_path_factory.mktemp("odd")
    digits = Digits(N_DIGITS).read(0, N_DIGITS)[:, 0]
    noise = np.random.default_rng(1).uniform(0, 16, (N_ODD, *digits.shape[1:]))
    np.savez(folder / "odd.npz", images=np.concatenate([digits, noise]).astype(np.float32))
    path = write_experiment(folder, GRID.format(stack=folder / "odd.npz"))
    monkey = pytest.MonkeyPatch()
    monkey.chdir(folder)
    from clustergrid import spec
    from clustergrid.registry import Registry

    monkey.setattr(spec, "DEFAULT_MAP", {"plugin": "pca"})
    monkey.setattr(spec, "DEFAULT_VERDICT", None)
    summary = runner.run(load_experiment(path, Registry.load()), Registry.load())
    assert summary.finished == 5 and not summary.failed
    runs = Tracker(None, "odd", create=False).combination_runs()
    steps = {run.data.params["clusterer"]: (run.data.tags["clustergrid.step.cluster"],
                                            run.data.tags["clustergrid.step.reduce"])
             for run in runs}
    yield folder, Cache(summary.cache_root), steps
    monkey.undo()


ODD = set(range(N_DIGITS, N_DIGITS + N_ODD))


@pytest.mark.parametrize("clusterer", ["kmeans", "minibatch-kmeans", "gmm", "hdbscan",
                                       "agglomerative"])
def test_injected_noise_images_top_the_outlier_scores(grid, clusterer):
    _, cache, steps = grid
    scores = cache.load(steps[clusterer][0], "outlier_scores")
    assert scores.shape == (N_DIGITS + N_ODD,) and np.isfinite(scores).all()
    top = set(np.argsort(-scores, kind="stable")[:10].tolist())
    assert len(top & ODD) >= 4, f"{clusterer}: {sorted(top)}"


def test_the_generic_score_only_for_clusterers_that_give_none(grid):
    _, cache, steps = grid
    for clusterer in ("agglomerative", "kmeans", "gmm", "hdbscan"):
        cluster, reduce = steps[clusterer]
        generic = knn_outlier_scores(cache.load(reduce, "X"))
        same = np.allclose(cache.load(cluster, "outlier_scores"), generic)
        assert same == (clusterer == "agglomerative"), clusterer


def test_labels_export_has_outlier_scores_for_kmeans(grid):
    folder, cache, steps = grid
    table = cluster_table(str(folder / "clustergrid-runs"), "odd", "/ kmeans[")
    np.testing.assert_allclose(table["outlier_score"],
                               cache.load(steps["kmeans"][0], "outlier_scores"))
    assert "probability" not in table.colnames


def test_outliers_csv_ranks_the_most_unusual_items(grid):
    folder, cache, steps = grid
    tracker = Tracker(None, "odd", create=False)
    run = next(r for r in tracker.combination_runs() if r.data.params["clusterer"] == "gmm")
    path = tracker.client.download_artifacts(run.info.run_id, "outliers.csv",
                                             str(folder / "download"))
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert len(rows) == UNUSUAL_SIZE and [r["rank"] for r in rows[:2]] == ["1", "2"]
    scores = cache.load(steps["gmm"][0], "outlier_scores")
    assert [float(r["score"]) for r in rows] == sorted(scores, reverse=True)[:UNUSUAL_SIZE]
    assert {int(r["index"]) for r in rows[:N_ODD]} == ODD
    assert [r["id"] for r in rows] == [r["index"] for r in rows]  # the npy ids: positions


def test_report_shows_the_unusual_items_of_each_combination(grid):
    folder, _, _ = grid
    page = write_report(str(folder / "clustergrid-runs"), "odd",
                        folder / "report.html").read_text()
    assert "<h3>Unusual items</h3>" in page and "the higher, the more unusual" in page
    blocks = page.count("<div class='unusual-run'")
    assert blocks == 5 and page.count("<div class='unusual-run' data-run=") == 5
    assert page.count("class='unusual-item'") == 5 * UNUSUAL_SIZE
    assert "#1 20" in page  # a noise image (ids 200-204) first
    # Thumbnails drawn by the score step: one strip per combination.
    assert page.count(".unusual-0{background-image:url(data:image/png;base64,") == 1


def test_knn_score_over_a_subsample_still_finds_the_far_points():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(3000, 4)), rng.normal(size=(3, 4)) + 12])
    full = knn_outlier_scores(X)
    sampled = knn_outlier_scores(X, reference_size=500)
    for scores in (full, sampled):
        assert np.isfinite(scores).all() and scores.shape == (3003,)
        assert set(most_unusual(scores, size=3).tolist()) == {3000, 3001, 3002}
    assert abs(np.median(full)) < 1e-9  # a robust z-score: a typical item near 0


def test_small_sets_and_identical_points_give_finite_scores():
    assert knn_outlier_scores(np.zeros((1, 3))).tolist() == [0.0]
    assert np.isfinite(knn_outlier_scores(np.ones((4, 2)))).all()
    assert robust_z(np.array([1.0, 1.0, 1.0, 5.0])).argmax() == 3


def test_an_outlier_with_a_centroid_of_its_own_still_scores_high():
    # Two clusters of 50 around 0 and 10, and one far point k-means gave its own centroid.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + 10, [[40, 40]]])
    centres = np.array([X[:50].mean(0), X[50:100].mean(0), X[100]])
    distances = np.linalg.norm(X[:, None] - centres[None], axis=2)
    scores = centroid_outlier_scores(distances)
    assert scores.argmax() == 100 and scores[100] > 10
    assert 0.5 < np.median(scores[:100]) < 1.5  # about 1 for a typical member


def test_most_unusual_ranks_among_candidates_nan_last():
    scores = np.array([0.5, np.nan, 3.0, 1.0, 2.0])
    assert most_unusual(scores).tolist() == [2, 4, 3, 0, 1]
    assert most_unusual(scores, among=np.array([0, 1, 3]), size=2).tolist() == [3, 0]
