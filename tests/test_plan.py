"""The planner: shared steps appear once and run once; keys follow their inputs."""

from __future__ import annotations

from dataclasses import replace

import fake_components
import pytest

from clustergrid import runner
from clustergrid.plan import make_plan
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment

GRID = """\
name: shared
seeds: [0, 1]
datasets:
  - plugin: digits
    n_samples: 200
encoders:
  - plugin: counting
    tag: [a, b]
reducers:
  - plugin: none
  - plugin: pca
    n_components: [2, 3]
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3, 4, 5]
    n_init: 1
metrics: [silhouette, ari]
executor: {workers: 1}
"""


@pytest.fixture
def registry():
    return Registry.load(extra=[fake_components])


def test_shared_steps_appear_once_in_the_plan(registry):
    plan = make_plan(parse_experiment(GRID, registry), registry)
    stages = [step.stage for step in plan.steps.values()]
    # 2 encoders x 3 reducers x 4 clusterers x 2 seeds; only k-means depends on the seed.
    assert len(plan.combinations) == 48
    # Each of the 24 pipelines compares its 2 seeds in one stability step.
    # Each encoder output gets one 2-D map for the report, whatever follows it; the data
    # is described once, and each clustering gets its cards.
    assert {s: stages.count(s) for s in set(stages)} == {
        "data": 1, "encode": 2, "reduce": 6, "cluster": 48, "score": 48, "stability": 24,
        "map": 2, "describe": 1, "cards": 48}
    assert {c.seed for c in plan.combinations} == {0, 1}


def test_each_encoder_runs_once_per_dataset(registry, workdir):
    fake_components.CALLS.clear()
    experiment = parse_experiment(GRID, registry)
    summary = runner.run(experiment, registry)
    assert summary.finished == 48 and summary.failed == []
    assert sorted(fake_components.CALLS) == [("a", None), ("b", None)]
    # + 1 describe step for the data and 48 cards, one per clustering
    assert summary.step_status == {"computed": 1 + 2 + 6 + 48 + 48 + 24 + 2 + 1 + 48}


def test_a_stochastic_encoder_runs_once_per_seed(registry, workdir):
    fake_components.CALLS.clear()
    text = GRID.replace("plugin: counting\n    tag: [a, b]", "plugin: seeded")
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.finished == 24
    assert sorted(fake_components.CALLS) == [("seeded", 0), ("seeded", 1)]


def test_a_deterministic_pipeline_is_one_combination_for_all_seeds(registry):
    text = GRID.replace("  - plugin: kmeans\n    n_clusters: [2, 3, 4, 5]\n    n_init: 1",
                        "  - plugin: kmeans\n    random_state: 7")
    plan = make_plan(parse_experiment(text, registry), registry)
    assert len(plan.combinations) == 6  # 2 encoders x 3 reducers, seeds collapse
    assert {c.seed for c in plan.combinations} == {None}


def test_keys_change_with_parameters_versions_and_data(registry):
    def steps(text):
        plan = make_plan(parse_experiment(text, registry), registry)
        return {step.key: step.stage for step in plan.steps.values()}

    base = steps(GRID)

    def changed(new):
        return sorted(stage for key, stage in new.items() if key not in base)

    # Every step depends on the data.
    assert len(changed(steps(GRID.replace("n_samples: 200", "n_samples: 201")))) == len(base)
    # A new k adds only its own steps: cluster and score for 2 seeds x 2 encoders x 3
    # reducers, their cards, and a stability step per pipeline.
    assert changed(steps(GRID.replace("[2, 3, 4, 5]", "[2, 3, 4, 6]"))) == (
        ["cards"] * 12 + ["cluster"] * 12 + ["score"] * 12 + ["stability"] * 6)
    # A new plugin version invalidates that plugin's steps and their descendants only.
    pca = registry.get("reducer", "pca")
    bumped = type("PCA", (pca.cls,), {"version": "99"})
    registry.components["reducer"]["pca"] = replace(pca, cls=bumped)
    # (The tests draw maps with PCA, so both maps change too.)
    assert changed(steps(GRID)) == (
        ["cards"] * 32 + ["cluster"] * 32 + ["map"] * 2 + ["reduce"] * 4 + ["score"] * 32
        + ["stability"] * 16)


def test_dry_run_counts_cache_hits_and_creates_nothing(registry, workdir):
    experiment = parse_experiment(GRID, registry)
    _, before = runner.dry_run(experiment, registry, None)
    assert before.steps["cluster"] == (48, 0)
    assert not (workdir / "clustergrid-runs").exists()
    runner.run(experiment, registry)
    _, after = runner.dry_run(experiment, registry, None)
    assert (after.finished, after.to_run) == (48, 0)
    _, again = runner.dry_run(experiment, registry, None, resume=False)
    assert again.to_run == 48
    assert again.steps == {"data": (1, 1), "encode": (2, 2), "probe": (0, 0), "reduce": (6, 6),
                           "cluster": (48, 48), "score": (48, 48), "stability": (24, 24),
                           "map": (2, 2), "describe": (1, 1), "cards": (48, 48),
                           "reference": (0, 0), "null_reduce": (0, 0), "null": (0, 0),
                           "subsample_reduce": (0, 0), "subsample": (0, 0),
                           "resampling": (0, 0), "calibration": (0, 0)}
