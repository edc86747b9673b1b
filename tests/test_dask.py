"""The Dask executor on a LocalCluster: the same metrics as the local executor, and
worker processes that die mid-grid are retried, then recorded as failures."""

from __future__ import annotations

import dask_components
import pytest
from grids import SMALL, combination_runs, scores

from clustergrid import runner
from clustergrid.executor import dask as dask_backend
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment

pytestmark = pytest.mark.slow


def test_dask_cluster_gives_the_same_metrics_as_the_local_executor(
        registry, tmp_path, monkeypatch):
    results = {}
    for kind, executor in [("local", "{kind: local}"), ("dask", "{kind: dask, workers: 2}")]:
        (tmp_path / kind).mkdir()
        monkeypatch.chdir(tmp_path / kind)
        experiment = parse_experiment(SMALL.replace("{workers: 1}", executor), registry)
        assert experiment.executor.kind == kind
        summary = runner.run(experiment, registry)
        assert (summary.finished, summary.failed) == (8, [])
        # every step ran here: nothing was in this fresh cache
        assert summary.step_status["cached"] == 0
        results[kind] = scores("small")
    assert len(results["dask"]) == 8
    assert results["dask"].keys() == results["local"].keys()
    for key, metrics in results["local"].items():
        assert {"ari", "silhouette"} <= metrics.keys()
        assert results["dask"][key] == pytest.approx(metrics, nan_ok=True)


DEATHS = """\
name: deaths
seeds: [0]
datasets:
  - plugin: digits
    n_samples: 300
encoders:
  - plugin: pixels
reducers:
  - plugin: none
clusterers:
  - plugin: kmeans
    n_clusters: 10
    n_init: 2
  - plugin: dies-once
    marker: MARKER
  - plugin: always-dies
metrics: [ari]
executor: {kind: dask, workers: 2, retries: 1}
"""


def test_a_step_whose_worker_dies_is_retried_then_recorded_as_failed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = Registry.load(extra=[dask_components])
    # Dask workers import the plugin module by name, from the sys.path they inherit.
    assert registry.extra_modules == ("dask_components",)
    marker = tmp_path / "died-once"
    experiment = parse_experiment(DEATHS.replace("MARKER", str(marker)), registry)
    outcomes = []
    summary = runner.run(experiment, registry, on_outcome=outcomes.append)

    assert marker.exists()  # DiesOnce did kill its first worker, and its retry finished
    assert summary.finished == 2
    [(label, error)] = summary.failed
    assert "always-dies" in label
    assert "worker" in error and "died" in error
    died = [o for o in outcomes if o.status == "failed"]
    assert [o.error_type for o in died] == ["KilledWorker"]
    assert {o.stage for o in outcomes if o.status == "skipped"} == {"score", "cards"}

    runs = {run.data.params["clusterer"]: run
            for run in combination_runs("deaths")}
    assert {name: run.info.status for name, run in runs.items()} == {
        "kmeans": "FINISHED", "dies-once": "FINISHED", "always-dies": "FAILED"}
    assert "worker" in runs["always-dies"].data.tags["error.message"]
    assert 0 < runs["dies-once"].data.metrics["ari"] < 1
    assert runs["kmeans"].data.metrics["ari"] > 0.3


def test_an_existing_cluster_at_an_address_is_used_and_left_running(registry, workdir):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        executor = f"{{kind: dask, address: '{cluster.scheduler_address}'}}"
        experiment = parse_experiment(
            SMALL.replace("{workers: 1}", executor).replace("seeds: [0, 1]", "seeds: [0]"),
            registry)
        summary = runner.run(experiment, registry)
        assert (summary.finished, summary.failed) == (4, [])
        assert summary.step_status["computed"] > 0
        # The steps ran on the cluster's (in-process) worker, which loaded the registry
        # once, and the cluster is still there for the next run.
        assert () in dask_backend._registries
        assert sum(client.nthreads().values()) == 2
    assert {metrics["ari"] > 0 for metrics in scores("small").values()} == {True}
