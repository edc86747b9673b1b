"""The command line: run, results, report and ui as a user types them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import cli, write_experiment

from clustergrid.cli import ui_command

TINY = """\
name: tiny
seeds: [0, 1]
datasets:
  - plugin: digits
    n_samples: 200
encoders:
  - plugin: pixels
    downsample: [1, 2]
clusterers:
  - plugin: kmeans
    n_clusters: [4, 8]
    n_init: 1
metrics: [silhouette, davies_bouldin, ari]
executor: {workers: 1}
"""


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """One run of the tiny grid; the tests below only read from it."""
    folder = tmp_path_factory.mktemp("tiny")
    path = write_experiment(folder, TINY)
    result = cli("run", str(path), cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


def test_run_prints_the_plan_progress_and_where_results_are(tiny_store):
    folder, result = tiny_store
    out = result.stdout
    assert "Experiment tiny: 8 combinations, 0 already finished, 8 to run." in out
    # 1 data, 2 encoders, 2 reductions (none after each), 8 clusterings and scores, and a
    # stability step for each of the 4 pipelines over its 2 seeds, and a map of each
    # encoder output; the verdict's evidence: a null reference per encoder output, null
    # and subsample fits per pipeline, resampling and calibration per combination.
    assert "Steps: 53 computed, 0 from cache, 0 failed, 0 skipped." in out
    assert "Combinations: 8 finished, 0 failed" in out
    assert f"MLflow store: sqlite:///{folder}/clustergrid-runs/mlflow.db" in out
    assert f"Report: {folder}/clustergrid-runs/reports/tiny.html" in out
    assert (folder / "clustergrid-runs" / "reports" / "tiny.html").is_file()


def test_dry_run_of_a_finished_experiment_has_nothing_to_do(tiny_store):
    folder, _ = tiny_store
    result = cli("run", "experiment.yaml", "--dry-run", cwd=folder)
    assert result.returncode == 0
    assert "8 combinations, 8 already finished, 0 to run." in result.stdout
    forced = cli("run", "experiment.yaml", "--dry-run", "--no-resume", cwd=folder)
    assert "8 to run" in forced.stdout
    rows = [line.split() for line in forced.stdout.splitlines()]
    assert ["cluster", "8", "8", "0"] in rows and ["stability", "4", "4", "0"] in rows


def test_results_formats_list_every_combination(tiny_store):
    folder, _ = tiny_store
    records = json.loads(cli("results", "tiny", "--format", "json", cwd=folder).stdout)
    assert len(records) == 8
    assert {(r["param.encoder.downsample"], r["param.clusterer.n_clusters"], r["param.seed"])
            for r in records} == {(d, k, s) for d in "12" for k in "48" for s in "01"}
    assert all(set(r) >= {"silhouette", "davies_bouldin", "ari", "pipeline"} for r in records)
    rows = list(csv.DictReader(io.StringIO(cli("results", "tiny", "--format", "csv",
                                               cwd=folder).stdout)))
    assert sorted(float(r["ari"]) for r in rows) == sorted(r["ari"] for r in records)
    table = cli("results", "tiny", cwd=folder, env={"COLUMNS": "200"}).stdout
    assert table.splitlines()[0].strip() == (
        "dataset: digits[n_samples=200], transforms: none, reducer: none")
    assert "silhouette" in table and "kmeans[n_clusters=4,n_init=1]" in table
    assert len([line for line in table.splitlines() if "pixels[downsample=" in line]) == 8


def test_results_recommend_ranks_the_pipelines_without_labels(tiny_store):
    folder, _ = tiny_store
    records = json.loads(cli("results", "tiny", "--recommend", "--format", "json",
                             cwd=folder).stdout)
    # 4 pipelines (2 encoders x 2 ks), their 2 seeds pooled, best first.
    assert [r["rank"] for r in records] == [1, 2, 3, 4]
    assert all(set(r) >= {"dataset", "pipeline", "score", "stability", "coverage", "flags",
                          "structure"} for r in records)
    assert all(r["seeds"] == 2 and isinstance(r["structure"], bool) for r in records)
    structured = [r["structure"] for r in records]
    assert structured == sorted(structured, reverse=True)  # structure shown comes first
    # The score is the mean over seeds of the logged gap.
    runs = json.loads(cli("results", "tiny", "--format", "json", cwd=folder).stdout)
    seeds = [r["gap"] for r in runs if f" / {records[0]['pipeline']} / "
             in r["pipeline"]]
    assert len(seeds) == 2 and records[0]["score"] == pytest.approx(sum(seeds) / 2)
    text = cli("results", "tiny", "--recommend", cwd=folder).stdout
    assert records[0]["pipeline"] in text
    assert ("Recommended: " + records[0]["pipeline"] in text) == records[0]["structure"]
    assert "Against the labels (never used by the verdict): ari of the first choice" in text
    assert cli("results", "tiny", "--recommend", "--format", "csv", cwd=folder).returncode == 1


def test_results_of_an_unknown_experiment_is_one_line(tiny_store):
    folder, _ = tiny_store
    result = cli("results", "nope", cwd=folder)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no experiment named 'nope' in sqlite:///")


def test_report_command_writes_html_and_markdown(tiny_store):
    folder, _ = tiny_store
    assert cli("report", "tiny", "-o", "out.html", cwd=folder).returncode == 0
    html = (folder / "out.html").read_text()
    assert "id='leaderboard-table'" in html and "<b>8</b> combinations finished" in html
    assert cli("report", "tiny", "--format", "markdown", "-o", "out.md", cwd=folder).returncode == 0
    lines = (folder / "out.md").read_text().splitlines()
    assert "Every row: dataset: digits[n_samples=200]; transforms: none; reducer: none." in lines
    assert lines[lines.index("| encoder | clusterer | seeds | ari | davies_bouldin | silhouette "
                             "| stability_ari |") + 1].startswith("|---|")
    table = [line for line in lines if line.startswith("| pixels[downsample=")]
    assert len(table) == 4  # 2 downsamples x 2 k, each averaged over the 2 seeds
    assert all(" | 2 | " in line and " ± " in line for line in table)


def test_report_escapes_user_supplied_text(workdir):
    import fake_components

    text = TINY.replace("plugin: digits\n    n_samples: 200",
                        "plugin: named\n    class_name: \"<script>alert(1)</script>\"")
    from clustergrid import runner
    from clustergrid.registry import Registry
    from clustergrid.report import write_report
    from clustergrid.spec import parse_experiment

    registry = Registry.load(extra=[fake_components])
    runner.run(parse_experiment(text, registry), registry)
    html = write_report(None, "tiny", workdir / "r.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_ui_serves_the_resolved_store():
    command = ui_command("sqlite:////data/clustergrid-runs/mlflow.db", 5001)
    assert command[0].endswith("mlflow")
    assert command[1:] == ["ui", "--backend-store-uri",
                           "sqlite:////data/clustergrid-runs/mlflow.db", "--port", "5001"]


def test_tracking_uri_may_be_a_folder(tmp_path):
    path = write_experiment(tmp_path, TINY.replace("[4, 8]", "4").replace("[1, 2]", "1"))
    result = cli("run", str(path), "--tracking-uri", str(tmp_path / "elsewhere"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "mlflow.db").is_file()
    records = json.loads(cli("results", "tiny", "--format", "json", "--tracking-uri",
                             str(tmp_path / "elsewhere"), cwd=tmp_path).stdout)
    assert len(records) == 2


def test_quickstart_runs_end_to_end_and_a_second_run_does_nothing(tmp_path):
    quickstart = Path(__file__).parents[1] / "experiments" / "quickstart.yaml"
    first = cli("run", str(quickstart), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Combinations: 27 finished, 0 failed" in first.stdout
    records = json.loads(cli("results", "quickstart", "--format", "json", cwd=tmp_path).stdout)
    assert len(records) == 27
    assert {r["param.reducer"] for r in records} == {"none", "pca"}
    assert all(0 < r["ari"] <= 1 for r in records)
    second = cli("run", str(quickstart), cwd=tmp_path)
    assert "27 already finished, 0 to run" in second.stdout
    assert "Nothing to run" in second.stdout
    again = json.loads(cli("results", "quickstart", "--format", "json", cwd=tmp_path).stdout)
    assert sorted(r["run_id"] for r in again) == sorted(r["run_id"] for r in records)
