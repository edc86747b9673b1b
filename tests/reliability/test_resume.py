"""Resume with any executor, whatever subset of a pipeline's seeds finished: the steps
the unfinished combinations share with finished ones (the stability step reads every
seed's clustering) come from the cache, or are computed again when it was cleared."""

from __future__ import annotations

import shutil

import pytest

from clustergrid import runner
from clustergrid.record import TAG_HASH
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment
from clustergrid.tracking import Tracker

GRID = """\
name: resume
seeds: [0, 1, 2]
datasets:
  - plugin: digits
    n_samples: 150
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: [3, 4]
    n_init: 1
metrics: [silhouette]
map: null
executor: {kind: local, workers: 1}
"""


def forget(tracker: Tracker, keep_seed: str) -> int:
    """Delete the FINISHED runs of every seed but one: as if only that seed had finished."""
    forgotten = 0
    for run in tracker.combination_runs("FINISHED"):
        if run.data.params["seed"] != keep_seed:
            tracker.client.delete_run(run.info.run_id)
            forgotten += 1
    return forgotten


@pytest.mark.parametrize("workers,clear_cache", [(2, False), (1, True)])
def test_resume_with_only_some_seeds_finished(workdir, workers, clear_cache):
    registry = Registry.load()
    experiment = parse_experiment(GRID, registry)
    first = runner.run(experiment, registry)
    tracker = Tracker(None, "resume")
    stability = {run.data.tags[TAG_HASH]: run.data.metrics["stability_ari"]
                 for run in tracker.combination_runs("FINISHED")}
    assert forget(tracker, keep_seed="1") == 4
    if clear_cache:
        shutil.rmtree(first.cache_root)
    again = runner.run(experiment, registry, workers=workers)
    assert (again.preview.finished, again.finished, again.failed) == (2, 4, [])
    runs = tracker.combination_runs("FINISHED")
    assert sorted(run.data.tags[TAG_HASH] for run in runs) == sorted(stability)
    assert {run.data.tags[TAG_HASH]: run.data.metrics["stability_ari"]
            for run in runs} == stability
