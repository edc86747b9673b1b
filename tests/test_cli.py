"""The command line: run, results, report and ui as a user types them."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from pathlib import Path

import pytest
from conftest import cli, install_fake_distribution, write_experiment

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
map: {plugin: pca}   # UMAP's compilation would cost each run ~15 s; the quickstart test keeps it
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
    # and subsample fits per pipeline, resampling and calibration per combination; the
    # data described once and each clustering's cards.
    assert "Steps: 62 computed, 0 from cache, 0 failed, 0 skipped." in out
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
    # A row per pipeline, one line each when the terminal is wide enough.
    assert len([line for line in table.splitlines() if "pixels[downsample=" in line]) == 4
    assert "mean ± std over 2 seeds; --per-seed for each combination" in table


@pytest.fixture(scope="module")
def tiny_records(tiny_store):
    folder, _ = tiny_store
    return json.loads(cli("results", "tiny", "--format", "json", cwd=folder).stdout)


def table_rows(text: str) -> list[tuple[str, list[str]]]:
    """The rows of a table too wide for one line a row (blocks between blank lines under
    the header's rule), each as its label and its numbers in reading order; the last
    is the caption."""
    body = re.split(r"\n *─+ *\n", text, maxsplit=1)[1]
    rows = []
    for block in re.split(r"\n\s*\n", body.strip()):
        tokens = block.split()
        numbers = [t for t in tokens if re.fullmatch(r"±?\d+(\.\d+)?", t)]
        rows.append((" ".join(t for t in tokens if t not in numbers), numbers))
    return rows


def test_results_table_reads_in_80_columns_a_row_per_pipeline(tiny_store, tiny_records):
    folder, _ = tiny_store
    table = cli("results", "tiny", cwd=folder, env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    *rows, caption = table_rows(table)
    assert caption[0] == "mean ± std over seeds; --per-seed for each combination"
    metrics = ["ari", "davies_bouldin", "silhouette", "stability_ari"]
    pipelines: dict[str, list[dict]] = {}
    for record in tiny_records:
        pipelines.setdefault(record["pipeline"].rsplit(" / seed=", 1)[0], []).append(record)
    assert len(pipelines) == 4 and all(len(seeds) == 2 for seeds in pipelines.values())
    # One row per pipeline, named by the roles that vary, each value above its spread.
    assert len(rows) == 4
    for pipeline, seeds in pipelines.items():
        _, encoder, _, clusterer = pipeline.split(" / ")
        (numbers,) = [numbers for label, numbers in rows if label == f"{encoder} / {clusterer}"]
        means = [f"{statistics.mean(r[m] for r in seeds):.3f}" for m in metrics]
        assert numbers[:4] == means
        assert numbers[4] == f"±{statistics.stdev(r['ari'] for r in seeds):.3f}"
    per_seed = cli("results", "tiny", "--per-seed", cwd=folder, env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in per_seed.splitlines()) <= 80
    rows = table_rows(per_seed)
    assert len(rows) == 8
    for record in tiny_records:
        _, encoder, _, clusterer, _ = record["pipeline"].split(" / ")
        assert (f"{encoder} / {clusterer}", [record["param.seed"], *(
            f"{record[m]:.3f}" for m in metrics)]) in rows


def test_results_metrics_chooses_the_columns(tiny_store):
    folder, _ = tiny_store
    table = cli("results", "tiny", "--metrics", "gap,ari", cwd=folder,
                env={"COLUMNS": "200"}).stdout
    assert table.splitlines()[2].split() == ["encoder", "clusterer", "gap", "ari"]
    unknown = cli("results", "tiny", "--metrics", "ari,nope", cwd=folder)
    assert unknown.returncode == 1
    assert len(unknown.stderr.splitlines()) == 1
    assert unknown.stderr.startswith("error: --metrics: unknown metric nope (available: ")
    assert "davies_bouldin" in unknown.stderr and "gap" in unknown.stderr


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


def test_plugins_shows_one_component_in_full():
    import inspect

    from clustergrid.plugins.clusterers.kmeans import KMeans

    result = cli("plugins", "kmeans", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["clusterer kmeans", f"plugin: builtin, from clustergrid {_version()}"]
    for name, parameter in KMeans.parameters().items():
        (row,) = [line for line in lines if line.split()[:1] == [name]]
        assert row.split(maxsplit=1)[1].startswith(repr(parameter.default) + "  ")
    assert "Literal['silhouette']" in result.stdout
    assert inspect.getdoc(KMeans) in result.stdout  # the whole docstring, as written
    unknown = cli("plugins", "kmean")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no component named 'kmean' (did you mean: kmeans")


def test_plugins_lists_a_failed_plugin_with_its_traceback(fake_site):
    install_fake_distribution(fake_site, "broken-plugin", "fake_broken",
                              "import os\nraise RuntimeError('needs libfoo')\n")
    result = cli("plugins", env={"COLUMNS": "80"})
    assert result.returncode == 1
    assert "kmeans" in result.stdout  # every other plugin still listed
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "n_clusters=8" in result.stdout and "n_samples=None" in result.stdout  # not cut
    assert ("FAILED TO LOAD plugin 'broken-plugin' (broken-plugin): RuntimeError: needs "
            "libfoo") in result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    assert "fake_broken.py\", line 2" in result.stderr


def test_experiments_lists_what_the_store_holds(tiny_store, tmp_path):
    folder, _ = tiny_store
    result = cli("experiments", cwd=folder)
    assert result.returncode == 0, result.stderr
    (row,) = [line.split() for line in result.stdout.splitlines() if "tiny" in line.split()]
    assert row[:4] == ["tiny", "8", "0", "1"]  # finished, failed, invocations
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", row[4])
    assert f"Store: sqlite:///{folder}/clustergrid-runs/mlflow.db" in result.stdout
    missing = cli("experiments", "--tracking-uri", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == f"error: no MLflow store at {tmp_path}/none/mlflow.db\n"


def _version() -> str:
    from clustergrid import __version__

    return __version__


def test_version_and_every_command_has_an_example():
    from typer.testing import CliRunner

    from clustergrid.cli import app

    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"clustergrid {_version()}\n")
    runner = CliRunner()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        help_text = runner.invoke(app, [name, "--help"], env={"COLUMNS": "100"}).output
        assert "Examples:" in help_text and f"clustergrid {name} " in help_text, name
    # Brackets print as written, not as Rich markup.
    labels = runner.invoke(app, ["labels", "--help"], env={"COLUMNS": "100"}).output
    assert "-p 'pca[n_components=10] / kmeans[n_clusters=10]'" in labels
    report = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "100"}).output
    assert "markdown: the leaderboard as a table" in report


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
