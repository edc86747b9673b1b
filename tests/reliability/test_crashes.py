"""kill -9 at chosen and random moments, store creation included: every FINISHED run the
store holds then has all its data; the next run always opens the store, logs every
combination exactly once, leaves nothing RUNNING and no scratch folder, and ends with the
values of an uninterrupted run."""

from __future__ import annotations

import random
import signal
import sqlite3
import time

import harness
import pytest


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The values of an uninterrupted run with 1 worker (``reference(2)``: with 2; the
    number of threads per process changes k-means' last digits)."""
    values = {}

    def of(workers: int = 1):
        if workers not in values:
            folder = tmp_path_factory.mktemp(f"reference{workers}")
            result = harness.run(harness.write_tiny(folder, workers=workers), cwd=folder)
            assert result.returncode == 0, result.stderr
            state = harness.read_store(folder / "clustergrid-runs" / "mlflow.db")
            assert len(state.finished) == harness.COMBINATIONS
            values[workers] = state.metrics
        return values[workers]

    return of


def assert_recovered(folder, reference):
    """Run again after the kill, then check everything the issue lists."""
    result = harness.run(folder / "tiny.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    state = harness.read_store(folder / "clustergrid-runs" / "mlflow.db")
    assert set(state.finished.values()) == {1}  # nothing doubled
    assert state.metrics == reference  # nothing lost or changed
    assert state.incomplete == []
    assert state.running == 0
    assert harness.scratch_left(folder / "cache") == []
    assert harness.damaged_entries(folder / "cache") == []


def test_a_kill_during_store_creation_leaves_no_store_to_repair(tmp_path, reference):
    experiment = harness.write_tiny(tmp_path)
    process = harness.start(experiment, cwd=tmp_path)
    store = tmp_path / "clustergrid-runs"
    deadline = time.monotonic() + harness.TIMEOUT
    while not (store.is_dir() and harness.store_creation_in_progress(store)):
        assert process.poll() is None, "the store was created before it could be caught"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    harness.kill_after(process, 0.0)
    # Either absent or whole: the half-built scratch file is never the store.
    assert not (store / "mlflow.db").exists()
    assert_recovered(tmp_path, reference())


@pytest.mark.parametrize("trial", range(2))
def test_a_kill_at_a_random_moment_loses_and_doubles_nothing(tmp_path, reference, trial):
    workers = 2 if trial else 1  # the process pool resumes too
    experiment = harness.write_tiny(tmp_path, workers=workers)
    # Any moment from the start (store creation) to the end of the run.
    harness.kill_after(harness.start(experiment, cwd=tmp_path), random.uniform(0, 15))
    database = tmp_path / "clustergrid-runs" / "mlflow.db"
    if database.is_file():  # whatever the kill interrupted, what is FINISHED is whole
        assert harness.read_store(database).incomplete == []
    assert_recovered(tmp_path, reference(workers))


def test_a_half_built_store_without_runs_is_set_aside_and_rebuilt(tmp_path, reference):
    store = tmp_path / "clustergrid-runs"
    store.mkdir()
    with sqlite3.connect(store / "mlflow.db") as db:  # as an older version left it
        db.execute("create table experiments (experiment_id integer primary key)")
        db.execute("create table alembic_version (version_num varchar(32))")
    result = harness.run(harness.write_tiny(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "half-built and held no runs" in result.stderr
    assert len(list(store.glob("mlflow.db.broken-*"))) == 1
    state = harness.read_store(store / "mlflow.db")
    assert state.metrics == reference()


def test_a_damaged_store_with_runs_is_refused_in_one_line(tmp_path):
    store = tmp_path / "clustergrid-runs"
    store.mkdir()
    with sqlite3.connect(store / "mlflow.db") as db:
        db.execute("create table runs (run_uuid varchar(32) primary key)")
        db.execute("insert into runs values ('abc')")
    result = harness.run(harness.write_tiny(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {store / 'mlflow.db'} holds 1 runs but MLflow "
                                    "cannot open it")
    with sqlite3.connect(store / "mlflow.db") as db:  # untouched
        assert db.execute("select run_uuid from runs").fetchall() == [("abc",)]


def test_ctrl_c_keeps_what_is_complete_and_says_so(tmp_path, reference):
    experiment = harness.write_tiny(tmp_path)
    process = harness.start(experiment, cwd=tmp_path)
    cache = tmp_path / "cache"
    deadline = time.monotonic() + harness.TIMEOUT
    while not list(cache.glob("??/*")):  # interrupt once a step is in the cache
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=harness.TIMEOUT)
    assert process.returncode == 130
    assert err.startswith("interrupted: ") and err.count("\n") == 1
    assert "run again to resume" in err
    state = harness.read_store(tmp_path / "clustergrid-runs" / "mlflow.db")
    assert state.running == 0  # the invocation's run is marked KILLED, not left RUNNING
    assert_recovered(tmp_path, reference())
