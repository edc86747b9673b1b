"""The label-free verdict: its evidence (null references, resampling, noise-honest
scores), the steps that gather it, and the rule that ranks pipelines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_samples, silhouette_score

from clustergrid import evidence, runner
from clustergrid.registry import Registry
from clustergrid.results import load_results
from clustergrid.spec import parse_experiment
from clustergrid.tracking import Tracker
from clustergrid.verdict import FLAGS, excess_p_value, recommend

GRID = """\
name: verdict
seeds: [0, 1]
datasets:
  - plugin: blobs
    centers: [3, 1]
    n_samples: 240
    n_features: 4
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
    n_components: 2
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3]
    n_init: 2
metrics: [ari, silhouette]
map: null
verdict: {null_draws: 4, resamples: 3}
executor: {workers: 1}
"""


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, 5, centers=4, random_state=0)
    labels = KMeans(4, n_init=4, random_state=0).fit_predict(X)
    return X, y, labels


# Evidence ---------------------------------------------------------------------------

def test_honest_silhouette_is_scikit_learns_when_nothing_is_noise(blobs):
    X, _, labels = blobs
    assert evidence.honest_silhouette(X, labels, max_points=1000) == pytest.approx(
        silhouette_score(X, labels), abs=1e-12)


def test_calling_points_noise_never_raises_the_honest_scores(blobs):
    X, _, labels = blobs
    sound = evidence.honest_silhouette(X, labels, max_points=1000)
    dispersion = evidence.log_dispersion(X, labels, max_points=1000)
    # Half the points at random, the half with the lowest silhouette (the points a
    # noise-calling clusterer would drop to look compact), and the half farthest from
    # their centroid (those that most loosen a cluster).
    centroids = np.stack([X[labels == k].mean(axis=0) for k in range(4)])
    spread = ((X - centroids[labels]) ** 2).sum(axis=1)
    halves = {"random": np.random.default_rng(0).permutation(len(X))[: len(X) // 2],
              "worst silhouette": np.argsort(silhouette_samples(X, labels))[: len(X) // 2],
              "farthest": np.argsort(spread)[len(X) // 2:]}
    for name, half in halves.items():
        noisy = labels.copy()
        noisy[half] = -1
        assert evidence.honest_silhouette(X, noisy, max_points=1000) < sound, name
        # The gap is the null's log W minus this one: a larger W is a smaller gap.
        assert evidence.log_dispersion(X, noisy, max_points=1000) > dispersion, name
    # The trap they avoid: on the clustered points alone, dropping points helps.
    kept = noisy != -1
    assert silhouette_score(X[kept], noisy[kept]) > sound
    assert evidence.log_dispersion(X[kept], noisy[kept], 1000) < dispersion


def test_log_dispersion_is_the_pooled_within_cluster_sum_of_squares(blobs):
    X, _, _ = blobs
    model = KMeans(4, n_init=4, random_state=0).fit(X)
    assert evidence.log_dispersion(X, model.labels_, 1000) == pytest.approx(
        np.log(model.inertia_), rel=1e-9)
    # No cluster at all: every point around the mean, as in a one-cluster solution.
    everything = np.full(len(X), -1)
    assert evidence.log_dispersion(X, everything, 1000) == pytest.approx(
        np.log(((X - X.mean(axis=0)) ** 2).sum()))


def test_honest_silhouette_is_zero_without_two_clusters(blobs):
    X, _, labels = blobs
    assert evidence.honest_silhouette(X, np.zeros(len(X), int), 1000) == 0.0
    assert evidence.honest_silhouette(X, np.where(labels == 0, 0, -1), 1000) == 0.0


@pytest.mark.parametrize("dimensions", [2, 5, 10])
def test_density_validity_is_the_hdbscan_librarys_dbcv(dimensions):
    from hdbscan.validity import validity_index

    X, y = make_blobs(300, dimensions, centers=4, cluster_std=2.0, random_state=1)
    kmeans = KMeans(3, n_init=2, random_state=0).fit_predict(X)
    with_noise = np.where(np.arange(300) % 7 == 0, -1, y)
    for labels in (y, kmeans, with_noise):
        assert evidence.density_validity(X, labels, 1000) == pytest.approx(
            validity_index(X.astype(np.float64), labels), abs=1e-9)


def test_density_validity_tells_moons_from_a_cut_through_them_in_any_dimension():
    from sklearn.datasets import make_moons

    X, moons = make_moons(400, noise=0.05, random_state=0)
    cut = KMeans(2, n_init=2, random_state=0).fit_predict(X)
    score, per_cluster = evidence.density_validity(X, moons, 1000, per_cluster=True)
    assert score > 0.3 and (per_cluster > 0).all()  # each moon separated from the other
    assert evidence.density_validity(X, cut, 1000) < 0  # a cut through dense regions
    # In 512 dimensions (the moons in a plane of the space) the library's core distances,
    # powers of -512, underflow; in log space they do not, and tell the moons apart.
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(512, 512)))
    wide = np.hstack([X, np.zeros((400, 510))]) @ rotation * 30
    assert evidence.density_validity(wide, moons, 1000) > 0.3
    assert evidence.density_validity(wide, cut, 1000) < 0
    # One cluster claims nothing; noise never raises the score.
    assert evidence.density_validity(X, np.zeros(400, dtype=int), 1000) == 0.0
    noisy = np.where(np.arange(400) % 2 == 0, -1, moons)
    assert evidence.density_validity(X, noisy, 1000) < score


def test_gaussian_reference_has_the_datas_mean_and_covariance():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 3)) @ np.array([[2.0, 0.5, 0], [0, 1.0, 0.3], [0, 0, 0.2]])
    X += [5.0, -1.0, 0.5]
    model = evidence.gaussian_model(X, max_points=1000)
    drawn = evidence.draw_reference(model["mean"], model["axes"], 40_000, seed=0)
    assert np.allclose(drawn.mean(axis=0), X.mean(axis=0), atol=0.05)
    assert np.allclose(np.cov(drawn.T), np.cov(X.T), atol=0.06)
    # Estimated from at most 4 * max_points rows, whatever the data's size.
    assert evidence.sample_index(10_000, 4 * 1000, seed=0).shape == (4000,)


def test_clusterwise_jaccard_takes_each_clusters_best_match():
    full = np.array([0, 0, 0, 1, 1, 1, -1])
    sub = np.array([5, 5, 1, 1, 1, -1, 1])
    # Cluster 0 {0,1,2} best matches {0,1}: 2/3. Cluster 1 {3,4,5} best matches
    # {2,3,4,6}: 2/5. Noise is no cluster on either side.
    assert evidence.clusterwise_jaccard(full, sub) == pytest.approx({0: 2 / 3, 1: 2 / 5})


def test_k_curve_prominence_is_in_units_of_the_criterions_resolution():
    ks = [2, 3, 4, 5]
    assert evidence.k_curve_prominence(ks, [0.2, 0.5, 0.3, 0.1], 3, "silhouette") == (
        pytest.approx(20.0))  # 0.2 above its best neighbour, in units of 0.01
    assert evidence.k_curve_prominence(ks, [0.2, 0.3, 0.305, 0.1], 4, "silhouette") < 1
    assert evidence.k_curve_prominence(ks, [100, 80, 90, 95], 3, "bic") == pytest.approx(10 / 6)


def test_excess_p_value_is_uniform_when_the_data_are_as_structureless_as_the_null():
    rng = np.random.default_rng(0)
    draws = 5
    null = rng.standard_normal((20_000, draws)) * 0.02 + 0.3
    observed = rng.standard_normal(20_000) * 0.02 + 0.3
    z = (observed - null.mean(axis=1)) / null.std(axis=1, ddof=1)
    p = np.array([excess_p_value(value, draws) for value in z])
    for level in (0.01, 0.05, 0.2, 0.5):
        assert np.mean(p < level) == pytest.approx(level, abs=0.01 + level * 0.1)
    assert math.isnan(excess_p_value(float("nan"), draws))


# The rule -----------------------------------------------------------------------------

def _row(clusterer: str, **metrics) -> dict:
    evidence_defaults = {"gap": 0.3, "excess": 40.0, "validity": 0.3,
                         "validity_excess": 40.0, "coverage": 1.0,
                         "resampling_jaccard": 0.95, "calibration.null_draws": 5.0,
                         "calibration.clusters": 3.0, "calibration.largest_cluster": 0.4}
    return {"param.dataset": "blobs", "param.encoder": "pixels", "param.reducer": "none",
            "param.clusterer": clusterer, "param.seed": "0",
            **evidence_defaults, **metrics}


def test_a_degenerate_solution_is_flagged_and_ranked_below_a_sound_one():
    frame = pd.DataFrame([
        _row("dominant", gap=0.9, excess=300.0, **{"calibration.largest_cluster": 0.95}),
        _row("noisy", gap=0.8, excess=200.0, coverage=0.3),
        _row("sound"),
    ])
    (verdict,) = recommend(frame)
    first, *rest = verdict.ranking
    assert first.pipeline.endswith("sound") and first.structure and first.flags == []
    assert {a.pipeline.split(" / ")[-1]: a.flags for a in rest} == {
        "dominant": ["dominant_cluster"], "noisy": ["mostly_noise"]}
    assert not any(a.structure for a in rest)  # degenerate solutions claim no structure


def test_structure_needs_an_excess_beyond_the_bonferroni_corrected_null():
    # p of z=4 with 5 draws is about 0.007: significant alone (two tests, 0.025), not
    # among 10 pipelines (20 tests, 0.0025).
    alone = pd.DataFrame([_row("kmeans", excess=4.0, validity_excess=4.0)])
    many = pd.DataFrame([_row(f"c{i}", excess=4.0, validity_excess=4.0) for i in range(10)])
    assert recommend(alone)[0].structure
    (verdict,) = recommend(many)
    assert not verdict.structure
    # The reason says which threshold the p-values missed.
    first = verdict.choice
    assert first.threshold == pytest.approx(0.0025)
    p = f"{first.p_value:.2g}"
    assert first.reason == (f"no structure: neither test passes; density p {p} (validity "
                            f"0.30), silhouette p {p}, against the corrected 0.0025")


def test_either_view_of_structure_is_enough():
    """Rings show structure by density and not by silhouette; blobs that touch, by
    silhouette and not by density."""
    (verdict,) = recommend(pd.DataFrame([_row("rings", excess=-2.0, validity_excess=40.0),
                                         _row("blobs", excess=40.0, validity_excess=-2.0),
                                         _row("none", excess=-2.0, validity_excess=-2.0)]))
    found = {a.pipeline.split(" / ")[-1]: a.structure for a in verdict.ranking}
    assert found == {"rings": True, "blobs": True, "none": False}


def test_density_separated_partitions_come_first_the_finest_first():
    def row(name, gap, separated, clusters):
        return _row(name, gap=gap, **{"calibration.separated_clusters": separated,
                                      "calibration.clusters": clusters,
                                      "calibration.validity_min": 0.2 if separated ==
                                      clusters else -0.3})
    (verdict,) = recommend(pd.DataFrame([
        row("compact", gap=2.0, separated=1, clusters=8),  # tightest, not separated
        row("merged", gap=0.5, separated=2, clusters=2),  # separated, coarser
        row("leaves", gap=0.8, separated=3, clusters=3),  # separated, finest
    ]))
    assert [a.pipeline.split(" / ")[-1] for a in verdict.ranking] == [
        "leaves", "merged", "compact"]
    assert verdict.choice.density_separated
    assert verdict.choice.reason.startswith("structure, all 3 clusters density-separated")
    # Without the density test passing, separation alone does not count.
    (verdict,) = recommend(pd.DataFrame([
        row("compact", gap=2.0, separated=1, clusters=8),
        {**row("leaves", gap=0.8, separated=3, clusters=3), "validity_excess": -1.0},
    ]))
    assert verdict.choice.pipeline.endswith("compact")


def test_every_flag_has_a_description_and_unstable_clusters_are_flagged():
    (verdict,) = recommend(pd.DataFrame([_row("kmeans", resampling_jaccard=0.4),
                                         _row("gmm", **{"calibration.k_at_edge": 1.0,
                                                        "calibration.k_prominence": 0.5})]))
    flags = {a.pipeline.split(" / ")[-1]: a.flags for a in verdict.ranking}
    assert flags == {"kmeans": ["unstable"], "gmm": ["k_at_edge", "no_clear_k"]}
    assert all(FLAGS[flag] for flag in ("unstable", "k_at_edge", "no_clear_k"))


# Steps of the plan ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def verdict_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verdict")
    registry = Registry.load()
    text = GRID + f'tracking: {{uri: "{folder}"}}\ncache: "{folder}/cache"\n'
    experiment = parse_experiment(text, registry)
    counts = []
    summary = runner.run(experiment, registry,
                         on_outcome=lambda outcome: counts.append(
                             (outcome.stage, outcome.status)))
    return folder, registry, experiment, summary, counts


def test_null_and_resampling_steps_are_shared_like_any_step(verdict_run):
    _, _, _, summary, counts = verdict_run
    computed = pd.Series([stage for stage, status in counts if status == "computed"])
    by_stage = computed.value_counts().to_dict()
    # 2 datasets x 2 reducers x 2 ks x 2 seeds = 16 combinations. The reference depends
    # on the encoder output alone (one per dataset); the reducer's null and subsample
    # fits on the reducer (4), shared by both ks; the clusterer's on the pipeline (8),
    # whatever its seed; resampling and calibration on the combination.
    assert summary.finished == 16
    assert by_stage["reference"] == 2
    assert (by_stage["null_reduce"], by_stage["subsample_reduce"]) == (4, 4)
    assert (by_stage["null"], by_stage["subsample"]) == (8, 8)
    assert (by_stage["resampling"], by_stage["calibration"]) == (16, 16)


def test_a_rerun_computes_no_evidence_again(verdict_run):
    _, registry, experiment, _, _ = verdict_run
    statuses = []
    runner.run(experiment, registry, resume=False,
               on_outcome=lambda outcome: statuses.append(outcome.status))
    assert statuses and set(statuses) == {"cached"}


def test_the_verdict_finds_the_blobs_and_nothing_in_one_gaussian(verdict_run):
    folder, _, _, _, _ = verdict_run
    verdicts = {v.dataset: v for v in recommend(load_results(str(folder), "verdict"))}
    three = next(v for name, v in verdicts.items() if "centers=3" in name)
    one = next(v for name, v in verdicts.items() if "centers=1" in name)
    assert three.structure and three.choice.clusters == 3
    assert three.grade["choice"] == pytest.approx(1.0)  # labels only grade it
    assert not one.structure


def test_evidence_is_logged_with_every_combination(verdict_run):
    folder, _, _, _, _ = verdict_run
    frame = load_results(str(folder), "verdict")
    for column in ("adjusted_silhouette", "honest_silhouette", "excess", "coverage", "gap",
                   "calibration.gap_sd",
                   "resampling_ari", "resampling_jaccard", "calibration.null_silhouette",
                   "calibration.null_draws", "calibration.largest_cluster",
                   "resampling.jaccard_min"):
        assert frame[column].notna().all(), column
    assert (frame["calibration.null_draws"] == 4).all()


def test_a_failed_null_leaves_the_combination_finished_and_flagged(tmp_path, monkeypatch):
    registry = Registry.load()

    def broken(*args, **kwargs):
        raise RuntimeError("no null today")

    monkeypatch.setattr(evidence, "draw_reference", broken)
    text = GRID.replace("centers: [3, 1]", "centers: 3").replace("seeds: [0, 1]", "seeds: [0]")
    text += f'tracking: {{uri: "{tmp_path}"}}\ncache: "{tmp_path}/cache"\n'
    summary = runner.run(parse_experiment(text, registry), registry)
    assert (summary.finished, summary.failed) == (4, [])
    runs = Tracker(str(tmp_path), "verdict", create=False).combination_runs("FINISHED")
    assert all("no null today" in run.data.tags["clustergrid.calibration.error"]
               for run in runs)
    (verdict,) = recommend(load_results(str(tmp_path), "verdict"))
    assert all("no_null" in a.flags and not a.structure for a in verdict.ranking)
