"""Runs started together: on a new store, on an existing one, of the same experiment
and of different ones. Every combination ends logged exactly once, and a refused run
says in one line who holds the experiment."""

from __future__ import annotations

import os
import signal
import time

import harness


def finished(folder):
    return harness.read_store(folder / "clustergrid-runs" / "mlflow.db").finished


def test_concurrent_first_runs_that_wait_log_every_combination_once(tmp_path):
    experiment = harness.write_tiny(tmp_path)
    first, second = (harness.start(experiment, "--wait", cwd=tmp_path) for _ in range(2))
    results = [process.communicate(timeout=harness.TIMEOUT) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), results
    counts = finished(tmp_path)
    assert len(counts) == harness.COMBINATIONS and set(counts.values()) == {1}
    # One of them computed everything; the other found it all finished.
    outputs = sorted(out for out, _ in results)
    assert "0 already finished, 8 to run" in "".join(outputs)
    assert sum("Nothing to run" in out for out in outputs) == 1


def test_different_experiments_share_a_new_store_at_once(tmp_path):
    cache = tmp_path / "cache"
    one = harness.write_tiny(tmp_path, "one", cache=cache)
    two = harness.write_tiny(tmp_path, "two", cache=cache)
    processes = [harness.start(path, cwd=tmp_path) for path in (one, two)]
    for process in processes:
        _, err = process.communicate(timeout=harness.TIMEOUT)
        assert process.returncode == 0, err
    counts = finished(tmp_path)
    # The two files are the same grid: the same hashes, each once per experiment.
    assert len(counts) == harness.COMBINATIONS and set(counts.values()) == {2}


def test_a_second_run_of_the_same_experiment_is_refused_in_one_line(tmp_path):
    experiment = harness.write_tiny(tmp_path)
    assert harness.run(experiment, cwd=tmp_path).returncode == 0  # an existing store
    first = harness.start(experiment, "--no-resume", cwd=tmp_path)
    lock = tmp_path / "clustergrid-runs" / "locks" / "tiny.lock.holder"
    deadline = time.monotonic() + harness.TIMEOUT
    while not lock.is_file():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    # Frozen while it holds the lock: on a busy machine the tiny run could otherwise end
    # before the second one has even started, which would then rightly run.
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = harness.run(experiment, "--no-resume", cwd=tmp_path)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    first.communicate(timeout=harness.TIMEOUT)
    assert first.returncode == 0
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1
    assert second.stderr.startswith(
        f"error: experiment 'tiny' on sqlite:///{tmp_path / 'clustergrid-runs' / 'mlflow.db'}"
        f" is in use by process {first.pid} on ")
    # The first run and the --no-resume one: two each, never more.
    assert set(finished(tmp_path).values()) == {2}
