"""Every exit status of ``clustergrid run``, from the real command: 0 all finished, 1 some
failed (after logging everything and writing the report), 2 a bad file or arguments,
130 on Ctrl-C (see test_crashes), and a refused grid that is too large."""

from __future__ import annotations

import harness


def test_every_combination_finished_exits_0(tmp_path):
    result = harness.run(harness.write_tiny(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_failed_combination_exits_1_after_logging_all_and_writing_the_report(tmp_path):
    path = harness.write_tiny(tmp_path)
    # k = 400 exceeds the 150 images: those combinations fail when they run.
    path.write_text(path.read_text().replace("n_clusters: [3, 4]", "n_clusters: [3, 400]"))
    result = harness.run(path, cwd=tmp_path)
    assert result.returncode == 1
    assert "Combinations: 4 finished, 4 failed" in result.stdout
    assert (tmp_path / "reports" / "tiny.html").is_file()
    state = harness.read_store(tmp_path / "clustergrid-runs" / "mlflow.db")
    assert (len(state.finished), state.failed) == (4, 4)


def test_every_combination_failing_exits_1(tmp_path):
    path = harness.write_tiny(tmp_path)
    path.write_text(path.read_text().replace("n_clusters: [3, 4]", "n_clusters: 400"))
    result = harness.run(path, cwd=tmp_path)
    assert result.returncode == 1
    assert "Combinations: 0 finished, 4 failed" in result.stdout


def test_a_bad_experiment_file_exits_2_in_one_line(tmp_path):
    path = harness.write_tiny(tmp_path)
    path.write_text(path.read_text().replace("n_clusters: [3, 4]", "n_clusters: true"))
    result = harness.run(path, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: {path}:14: clusterers[0].n_clusters: True is not valid: "
                             "Input should be a valid integer (true and false are not "
                             "numbers)\n")
    assert not (tmp_path / "clustergrid-runs").exists()  # nothing ran, nothing created


def test_bad_arguments_exit_2(tmp_path):
    result = harness.run(harness.write_tiny(tmp_path), "--workers", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_a_grid_over_the_limit_is_refused_unless_confirmed(tmp_path):
    path = harness.write_tiny(tmp_path)
    path.write_text(path.read_text().replace("n_clusters: [3, 4]",
                                             f"n_clusters: {list(range(2, 25_002))}"))
    refused = harness.run(path, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (f"error: {path}: 100,000 combinations, more than 10,000; "
                              "check the sweeps, or confirm with --max-combinations 100000\n")
    # A dry run needs no confirmation: it is how one looks at such a grid.
    dry = harness.run(path, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "100000 combinations, 0 already finished, 100000 to run." in dry.stdout
