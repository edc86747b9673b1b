"""Where the store is: an experiment file's ``tracking.uri`` is relative to the file, not
to the current directory; ``$CLUSTERGRID_TRACKING_URI`` names the default store;
``--tracking-uri`` wins over both; the cache follows the store; an experiment the store
lacks is named with what the store holds. How a combination's run is written: in one
transaction, reading back as MLflow's own calls leave it, or not at all."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import cli, write_experiment

from clustergrid.errors import ClustergridError
from clustergrid.locations import STORE_VARIABLE, locate, resolve_uri
from clustergrid.record import Record
from clustergrid.spec import parse_experiment
from clustergrid.tracking import Tracker

TINY = """\
name: {name}
datasets:
  - plugin: digits
    n_samples: 100
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: 3
    n_init: 1
metrics: [silhouette]
map: null
verdict: null
executor: {{workers: 1}}
"""


@pytest.fixture(autouse=True)
def no_store_variable(monkeypatch):
    monkeypatch.delenv(STORE_VARIABLE, raising=False)


def test_the_files_relative_store_is_found_from_any_folder(workdir):
    project, elsewhere = workdir / "project", workdir / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    path = write_experiment(project, TINY.format(name="here") + "tracking: {uri: runs}\n")
    result = cli("run", str(path), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    store = project / "runs"
    assert (store / "mlflow.db").is_file()
    assert (store / "cache").is_dir()  # the default cache follows the store
    assert (store / "reports" / "here.html").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing in the current directory
    assert f"MLflow store: sqlite:///{store}/mlflow.db" in result.stdout
    assert f"Results: clustergrid results here --tracking-uri {store}" in result.stdout
    # From the file's own folder, the same store: everything is already finished.
    again = cli("run", "experiment.yaml", cwd=project)
    assert "Nothing to run" in again.stdout, again.stdout + again.stderr
    assert not (project / "clustergrid-runs").exists()


def test_the_store_variable_is_the_default_and_the_command_line_wins(workdir, registry):
    shared = workdir / "shared-store"
    env = {STORE_VARIABLE: str(shared)}
    path = write_experiment(workdir, TINY.format(name="shared"))
    result = cli("run", str(path), cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert (shared / "mlflow.db").is_file() and (shared / "cache").is_dir()
    assert not (workdir / "clustergrid-runs").exists()
    other = workdir / "other"
    other.mkdir()
    records = cli("results", "shared", "--format", "json", cwd=other, env=env)
    assert records.returncode == 0, records.stderr
    assert len(json.loads(records.stdout)) == 1
    # The file's store wins over the variable, and --tracking-uri over both.
    given = parse_experiment(TINY.format(name="x") + "tracking: {uri: /data/runs}\n",
                             registry, source=workdir / "x.yaml")
    assert locate(given).cache == Path("/data/runs/cache")
    assert locate(given, str(workdir / "cli")).cache == workdir / "cli" / "cache"
    explicit = cli("results", "shared", "--tracking-uri", str(workdir / "cli"), cwd=other,
                   env=env)
    assert explicit.returncode == 1
    assert f"no MLflow store at {workdir / 'cli' / 'mlflow.db'}" in explicit.stderr


def test_resolve_uri_reads_the_variable(workdir, monkeypatch):
    assert resolve_uri(None) == f"sqlite:///{workdir}/clustergrid-runs/mlflow.db"
    monkeypatch.setenv(STORE_VARIABLE, "http://host:5000")
    assert resolve_uri(None) == "http://host:5000"
    assert resolve_uri(str(workdir / "mine")) == f"sqlite:///{workdir}/mine/mlflow.db"
    monkeypatch.setenv(STORE_VARIABLE, "relative")
    assert resolve_uri(None) == f"sqlite:///{workdir}/relative/mlflow.db"
    monkeypatch.setenv(STORE_VARIABLE, "")  # set but empty: the project-local default
    assert resolve_uri(None) == f"sqlite:///{workdir}/clustergrid-runs/mlflow.db"


def test_an_unknown_experiment_is_named_with_what_the_store_holds(workdir):
    store = str(workdir / "store")
    deleted = Tracker(store, "deleted")
    deleted.client.delete_experiment(deleted.experiment_id)
    with pytest.raises(ClustergridError, match=r"; it holds no experiments$"):
        Tracker(store, "quickstart", create=False)
    for number in range(12):
        Tracker(store, f"exp{number:02d}")
    with pytest.raises(ClustergridError) as raised:
        Tracker(store, "quickstart", create=False)
    assert str(raised.value) == (
        f"no experiment named 'quickstart' in sqlite:///{store}/mlflow.db; it holds "
        "exp00, exp01, exp02, exp03, exp04, exp05, exp06, exp07, exp08, exp09, and 2 more")


#: one combination as the runner logs it: a curve, a NaN and an infinite score, a long
#: error message, text and file artifacts (one in a folder)
COMBINATION = {
    "params": {"encoder": "pixels", "clusterer.n_clusters": "10", "long": "x" * 7000},
    "metrics": {"silhouette": 0.25, "ari": float("nan"), "ratio": float("inf"),
                "time.cluster": 0.5, "cluster.curve": [3.0, 2.0, 2.5]},
    "tags": {"clustergrid.hash": "abc123", "clustergrid.metric.x.error": "e" * 5000},
    "texts": {"labels.csv": "id,cluster\n0,1\n", "gallery.csv": "cluster,index,id\n"},
}


def test_a_combination_reads_back_as_it_was_logged(workdir):
    tracker = Tracker(str(workdir / "store"), "written")
    card = workdir / "cards.json"
    card.write_text('{"clusters": []}')
    parent = tracker.start_invocation({"file": "x.yaml"}, {})
    run_id = tracker.log_combination(parent, Record(
        "pipeline", **COMBINATION, files={"cards/cards.json": card}, status="FINISHED"))
    client = tracker.client
    run = client.get_run(run_id)
    assert (run.info.status, run.info.run_name) == ("FINISHED", "pipeline")
    assert run.info.start_time <= run.info.end_time
    assert run.data.params["encoder"] == "pixels"
    assert len(run.data.params["long"]) == 6000  # cut to MLflow's limit
    assert run.data.tags["clustergrid.hash"] == "abc123"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert math.isnan(run.data.metrics["ari"])
    assert run.data.metrics["ratio"] > 1e300  # infinity as MLflow stores it
    assert run.data.metrics["silhouette"] == 0.25
    history = sorted(client.get_metric_history(run_id, "cluster.curve"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 2.0), (2, 2.5)]

    def artifacts(path=None):
        found = {}
        for item in client.list_artifacts(run_id, path):
            found.update(artifacts(item.path) if item.is_dir else {item.path: Path(
                client.download_artifacts(run_id, item.path, str(workdir / "got"))
            ).read_text()})
        return found

    assert artifacts() == {**COMBINATION["texts"], "cards/cards.json": '{"clusters": []}'}
    # What resuming, results and reports ask of the store finds it.
    assert tracker.finished_hashes() == {"abc123"}
    found = client.search_runs([tracker.experiment_id], "tags.`clustergrid.hash` = 'abc123' "
                               "and metrics.silhouette > 0.2 and params.encoder = 'pixels'")
    assert [r.info.run_id for r in found] == [run_id]


def test_a_run_that_fails_to_be_written_is_never_finished(workdir):
    """Writing its metrics fails (as a full disk would): the run is left RUNNING, not
    FINISHED without its metrics, and resuming finds nothing to skip."""
    import sqlalchemy

    tracker = Tracker(str(workdir / "store"), "failing")
    parent = tracker.start_invocation({}, {})
    engine = tracker.client._tracking_client.store.engine

    def full_disk(connection, cursor, statement, *args):
        if statement.startswith("INSERT INTO latest_metrics"):
            raise OSError("disk full")

    sqlalchemy.event.listen(engine, "before_cursor_execute", full_disk)
    try:
        with pytest.raises(Exception, match="disk full"):
            tracker.log_combination(parent, Record(
                "pipeline", **{**COMBINATION, "texts": {}}, files={}, status="FINISHED"))
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", full_disk)
    assert [run.info.status for run in tracker.combination_runs()] == ["RUNNING"]
    assert tracker.combination_runs("FINISHED") == []
    assert tracker.finished_hashes() == set()


def test_an_experiments_locations_follow_its_store(workdir, registry):
    local = parse_experiment(TINY.format(name="x") + "tracking: {uri: runs}\n", registry,
                             source=workdir / "x.yaml")
    where = locate(local)
    assert where.uri == f"sqlite:///{workdir}/runs/mlflow.db"
    assert (where.cache, where.locks) == (workdir / "runs" / "cache", workdir / "runs" / "locks")
    assert where.report("x") == workdir / "runs" / "reports" / "x.html"
    # A tracking server's runs cache in the default folder, their locks keyed by the server.
    server = locate(local, "http://host:5000")
    assert server.cache == workdir / "clustergrid-runs" / "cache"
    assert server.locks.parent == server.cache / "locks"
    assert server.locks != locate(local, "http://other:5000").locks
    # A cache the file names carries the reports with it.
    cached = parse_experiment(TINY.format(name="x") + "cache: elsewhere/cache\n", registry,
                              source=workdir / "x.yaml")
    assert locate(cached).reports == workdir / "elsewhere" / "reports"
