"""The verdict sees nuisances: clusters that follow brightness, size, orientation, offset
or background rather than what the images show are flagged, judged against chance (a
permutation null) and against the other descriptors, and ranked below those that do not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from clustergrid import cards, runner
from clustergrid.errors import SpecError
from clustergrid.registry import Registry
from clustergrid.results import load_results
from clustergrid.spec import parse_experiment
from clustergrid.verdict import recommend

NAMES = cards.descriptor_names(1)


def descriptors(n: int = 600, seed: int = 0) -> np.ndarray:
    """Independent random descriptors: each column its own quantity."""
    return np.random.default_rng(seed).lognormal(size=(n, len(NAMES)))


def split_by(values: np.ndarray) -> np.ndarray:
    return (values > np.median(values)).astype(np.int64)


def test_clusters_that_split_by_brightness_follow_it():
    values = descriptors()
    check = cards.nuisance_check(split_by(values[:, NAMES.index("brightness")]), values, NAMES)
    assert check["flag"] == 1.0 and check["follows"] == "brightness"
    assert check["brightness"] > 0.3 and check["brightness_p"] < cards.ALPHA
    assert abs(check["physics"]) < 0.05


def test_a_descriptor_declared_physics_is_never_a_nuisance():
    values = descriptors()
    labels = split_by(values[:, NAMES.index("size")])
    assert cards.nuisance_check(labels, values, NAMES)["follows"] == "size"
    # For a science where size is the point, it is physics: nothing to flag.
    check = cards.nuisance_check(labels, values, NAMES,
                                 nuisances=("brightness", "orientation"))
    assert check["flag"] == 0.0 and check["physics_name"] == "size"


def test_a_nuisance_weaker_than_the_physics_is_not_followed():
    values = descriptors()
    gini = split_by(values[:, NAMES.index("gini")])
    # Three quarters of the split is gini's, a quarter brightness's.
    bright = split_by(values[:, NAMES.index("brightness")])
    labels = np.where(np.random.default_rng(1).random(len(gini)) < 0.75, gini, bright)
    check = cards.nuisance_check(labels, values, NAMES)
    assert check["brightness"] > 0.02  # real ...
    assert check["physics_name"] == "gini" and check["physics"] > check["brightness"]
    assert check["flag"] == 0.0  # ... but not what the clusters follow
    # So it is not even tested: no p-value could change that.
    assert math.isnan(check["brightness_p"])


def test_chance_association_is_not_followed_however_large_it_looks_in_nmi():
    """Many small clusters share information with any binned descriptor by chance alone:
    a fixed NMI threshold would flag them, the permutation null does not."""
    values = descriptors(n=120)
    labels = np.random.default_rng(3).integers(0, 12, len(values))
    check = cards.nuisance_check(labels, values, NAMES)
    from sklearn.metrics import normalized_mutual_info_score

    bins = cards.quantile_bins(values[:, 0], 10)
    assert normalized_mutual_info_score(labels, bins) > 0.1  # what a fixed NMI sees
    assert abs(check["brightness"]) < 0.05 and not check["brightness_p"] < cards.ALPHA
    assert check["flag"] == 0.0


def test_a_strong_association_is_still_tested_against_chance():
    """Two clusters of 12 items can share a tenth of their information with a binned
    descriptor by chance: the permutation test, not the effect alone, decides."""
    values = descriptors(n=12, seed=5)
    rng = np.random.default_rng(2)
    checks = [cards.nuisance_check(rng.permutation(np.repeat([0, 1], 6)), values, NAMES,
                                   nuisances=("brightness",)) for _ in range(40)]
    large = [c for c in checks if c["brightness"] >= cards.NUISANCE_EFFECT
             and not c["physics"] > c["brightness"]]
    assert large  # chance alone produces such effects at this size ...
    assert all(not c["brightness_p"] < cards.ALPHA or c["flag"] for c in large)
    assert sum(c["flag"] for c in checks) <= 2  # ... and they are rarely called real


def test_the_permutation_p_value_is_uniform_under_the_null():
    rng = np.random.default_rng(0)
    p = np.array([cards.permutation_p(rng.integers(0, 3, 200), [rng.integers(0, 3, 200)],
                                      199, seed=i)[0] for i in range(200)])
    for level in (0.1, 0.3, 0.5):
        assert np.mean(p <= level) == pytest.approx(level, abs=0.08)


def test_an_unknown_nuisance_is_refused_with_the_descriptors_listed():
    text = """\
name: bad
datasets: [{plugin: digits, n_samples: 50}]
encoders: [{plugin: pixels}]
clusterers: [{plugin: kmeans, n_clusters: 2}]
verdict: {nuisances: [brightness, redshift]}
"""
    with pytest.raises(SpecError, match=r"unknown descriptor 'redshift'.*brightness, size"):
        parse_experiment(text, Registry.load())


#: Galaxies of two shapes whose brightness spans two decades whatever their class: raw
#: pixels split them by brightness, shape features by class.
GRID = """\
name: nuisance
seeds: [0]
datasets:
  - plugin: sim-galaxies
    n_samples: 160
    size: 32
    bands: 1
    classes: [[elliptical, edge-on]]
    flux_range: [[25000, 2500000]]
encoders:
  - plugin: pixels
  - plugin: morphology
reducers:
  - plugin: pca
    n_components: 10
clusterers:
  - plugin: kmeans
    n_clusters: [2, 4]
    n_init: 2
  - plugin: hdbscan
    min_cluster_size: 15
metrics: [ari]
map: null
verdict: {null_draws: 5, resamples: 3}
executor: {workers: 1}
"""


@pytest.fixture(scope="module")
def galaxies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nuisance")
    registry = Registry.load()
    text = GRID + f'tracking: {{uri: "{folder}"}}\ncache: "{folder}/cache"\n'
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.failed == []
    frame = load_results(str(folder), "nuisance")
    (verdict,) = recommend(frame)
    return verdict, frame


def test_pipelines_that_follow_brightness_are_flagged_and_ranked_below(galaxies):
    verdict, _ = galaxies
    by_encoder = {}
    for a in verdict.ranking:
        by_encoder.setdefault(a.pipeline.split(" / ")[0], []).append(a)
    clustered = [a for a in by_encoder["pixels"] if "single_cluster" not in a.flags]
    assert clustered and all("follows_brightness" in a.flags for a in clustered)
    assert all(a.reason.startswith("follows brightness") for a in clustered)
    assert not any(a.follows for a in by_encoder["morphology"])
    # Every pipeline that follows a nuisance ranks below every one that follows none.
    ranks = [bool(a.follows) for a in verdict.ranking if not a.barred]
    assert ranks == sorted(ranks)


def test_the_first_choice_follows_the_classes_better_than_any_flagged_pipeline(galaxies):
    verdict, frame = galaxies
    label_nmi = frame.groupby(frame["pipeline"].str.split(" / ").str[1:4].str.join(" / "))[
        "nuisance.labels"].mean()
    choice = verdict.choice
    assert not choice.follows and choice.structure
    assert verdict.headline().startswith("Recommended: ")
    flagged = [label_nmi[a.pipeline] for a in verdict.ranking if a.follows]
    assert flagged and label_nmi[choice.pipeline] > max(flagged) + 0.3
