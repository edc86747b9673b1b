"""The command line: run, results, report and ui as a user types them."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import statistics
import tempfile
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
    # encoder output; the verdict's evidence: a null reference per encoder output, the
    # reducer's null and subsample fits per encoder output, the clusterer's per pipeline,
    # resampling and calibration per combination; the data described once and each
    # clustering's cards.
    assert "Steps: 66 computed, 0 from cache, 0 failed, 0 skipped." in out
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
    header = re.split(r"\s{2,}", table.splitlines()[0].strip())
    assert header[:3] == ["#", "verdict", "encoder / clusterer"]
    assert "silhouette" in header and "kmeans[n_clusters=4,n_init=1]" in table
    # A row per pipeline, one line each when the terminal is wide enough, then each
    # pipeline's full name, as the json's.
    rows = table_rows(table)
    assert len(rows) == 4
    assert all(row["encoder / clusterer"].startswith("pixels[downsample=") for row in
               rows.values())
    pipelines = {r["pipeline"].removesuffix(f" / seed={r['param.seed']}") for r in records}
    assert {line.split("  ", 1)[1] for line in table.splitlines()
            if re.match(r"\d  digits", line)} == pipelines
    assert "mean ± std over 2 seeds; --per-seed for each combination" in table


@pytest.fixture(scope="module")
def tiny_records(tiny_store):
    folder, _ = tiny_store
    return json.loads(cli("results", "tiny", "--format", "json", cwd=folder).stdout)


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The rows of the table(s) of ``results``, by their number (and ``/seed``, one row
    per combination), each as ``{header: cell}`` gathered from every table it is split
    into; cells are at least two spaces apart."""
    lines = text.splitlines()
    rows: dict[str, dict[str, str]] = {}
    for at, line in enumerate(lines):
        if not re.fullmatch(r"─+", line.strip()):
            continue
        header = re.split(r"\s{2,}", lines[at - 1].strip())
        for row in lines[at + 1:]:
            if not re.match(r"\s*\d+\s", row):
                break
            cells = dict(zip(header, re.split(r"\s{2,}", row.strip()), strict=True))
            key = cells["#"] + (f"/{cells['seed']}" if "seed" in cells else "")
            rows.setdefault(key, {}).update(cells)
    return rows


def legend(text: str, width: int) -> dict[str, str]:
    """The full names under the table, by number, each joined from its wrapped lines
    (a line broken between parameters reads back with a space after the comma)."""
    from clustergrid.names import canonical

    entries: dict[str, list[str]] = {}
    block = text.rstrip("\n").split("\n\n")[-1].splitlines()
    for line in block:
        assert len(line) <= width, line
        found = re.match(r"\s*(\d+)  (\S.*)", line)
        if found and not line.startswith("   "):
            entries[found.group(1)] = [found.group(2)]
        else:
            entries[list(entries)[-1]].append(line.strip())
    return {number: canonical(" ".join(lines)) for number, lines in entries.items()}


def test_results_table_reads_in_80_columns_a_row_per_pipeline(tiny_store, tiny_records):
    folder, _ = tiny_store
    table = cli("results", "tiny", cwd=folder, env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "mean ± std over each pipeline's seeds; --per-seed for each combination" in table \
        or "mean ± std over 2 seeds; --per-seed for each combination" in table
    metrics = ["ari", "davies_bouldin", "silhouette", "stability_ari"]
    pipelines: dict[str, list[dict]] = {}
    for record in tiny_records:
        pipelines.setdefault(record["pipeline"].rsplit(" / seed=", 1)[0], []).append(record)
    assert len(pipelines) == 4 and all(len(seeds) == 2 for seeds in pipelines.values())
    # One row per pipeline, numbered; its full name under the table by its number.
    rows, names = table_rows(table), legend(table, 80)
    assert sorted(rows) == sorted(names) == ["1", "2", "3", "4"]
    assert sorted(names.values()) == sorted(pipelines)
    for number, name in names.items():
        seeds = pipelines[name]
        for metric in metrics:
            mean = statistics.mean(r[metric] for r in seeds)
            assert rows[number][metric].startswith(f"{mean:.3f}")
        spread = statistics.stdev(r["ari"] for r in seeds)
        assert rows[number]["ari"] == f"{statistics.mean(r['ari'] for r in seeds):.3f} ± " \
                                      f"{spread:.3f}"
    per_seed = cli("results", "tiny", "--per-seed", cwd=folder, env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in per_seed.splitlines()) <= 80
    rows, numbers = table_rows(per_seed), {name: n for n, name in legend(per_seed, 80).items()}
    assert len(rows) == 8
    for record in tiny_records:
        name, seed = record["pipeline"].rsplit(" / seed=", 1)
        row = rows[f"{numbers[name]}/{seed}"]
        assert [row[m] for m in metrics] == [f"{record[m]:.3f}" for m in metrics]


def test_results_metrics_chooses_the_columns(tiny_store):
    folder, _ = tiny_store
    table = cli("results", "tiny", "--metrics", "gap,ari", cwd=folder,
                env={"COLUMNS": "200"}).stdout
    assert re.split(r"\s{2,}", table.splitlines()[0].strip()) == [
        "#", "verdict", "encoder / clusterer", "gap", "ari"]
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
    # Not barred first, then following no nuisance, then showing structure.
    order = [(r["barred"], bool(r["follows"]), not r["structure"]) for r in records]
    assert order == sorted(order)
    # The score is the mean over seeds of the logged gap.
    runs = json.loads(cli("results", "tiny", "--format", "json", cwd=folder).stdout)
    seeds = [r["gap"] for r in runs if f" / {records[0]['pipeline']} / "
             in r["pipeline"]]
    assert len(seeds) == 2 and records[0]["score"] == pytest.approx(sum(seeds) / 2)
    text = cli("results", "tiny", "--recommend", cwd=folder).stdout
    assert records[0]["pipeline"] in text
    # The full name (the key that joins results' json), numbered as results numbers it.
    assert {r["name"] for r in records} == {r["pipeline"].removesuffix(" / seed=0")
                                           .removesuffix(" / seed=1") for r in runs}
    assert f"  #1 {records[0]['pipeline']}\n" in text
    for record in records:
        assert record["reason"] in " ".join(text.split())
    if records[0]["structure"]:
        assert "Recommended" in text and records[0]["name"] in " ".join(text.split())
    assert "Against the labels (never used by the verdict): ari of the first choice" in text
    assert cli("results", "tiny", "--recommend", "--format", "csv", cwd=folder).returncode == 1


def test_results_of_an_unknown_experiment_is_one_line(tiny_store):
    folder, _ = tiny_store
    result = cli("results", "nope", cwd=folder)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no experiment named 'nope' in sqlite:///")


# Long names: a real dataset's path, transforms, parameters in several components ------

LONG = """\
name: long
seeds: [0]
datasets:
  - plugin: images
    path: {images}
    labels_from: folders
    on_error: skip
    transforms:
      - plugin: resize
        size: 8
      - plugin: normalize
encoders:
  - plugin: pixels
reducers:
  - plugin: pca
    n_components: [3, 5]
clusterers:
  - plugin: kmeans
    n_clusters: 2
    n_init: 1
  - plugin: gmm
    n_clusters: auto
    k_range: [[2, 4]]
    criterion: bic
metrics: [silhouette, davies_bouldin, calinski_harabasz, ari, homogeneity, nmi]
map: null
verdict: {{null_draws: 2, resamples: 2}}
tracking: {{uri: "{store}"}}
cache: "{store}/cache"
"""


@pytest.fixture(scope="module")
def long_store(tmp_path_factory, request):
    """A grid of 4 pipelines on images in a deep folder, its names over 170 characters;
    returns the store and the json records of ``results``."""
    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from clustergrid import runner
    from clustergrid.cli import app
    from clustergrid.registry import Registry
    from clustergrid.spec import parse_experiment

    folder = tmp_path_factory.mktemp("long")
    # A real-length path, but one of the same length wherever the tests run (the
    # temporary folders of parallel test workers are deeper): a value wider than a line
    # is the one place a name may break inside a word.
    outside = Path(tempfile.mkdtemp(prefix="clustergrid-long-"))
    request.addfinalizer(lambda: shutil.rmtree(outside, ignore_errors=True))
    images = outside / "data" / "surveys" / "first" / "frdeep" / "images"
    rng = np.random.default_rng(0)
    for kind, level in (("FRI", 60), ("FRII", 180)):
        (images / kind).mkdir(parents=True)
        for index in range(20):
            pixels = np.clip(rng.normal(level, 30, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(images / kind / f"{kind}_{index:03d}.png")
    store = folder / "store"
    registry = Registry.load()
    summary = runner.run(parse_experiment(LONG.format(images=images, store=store), registry),
                         registry)
    assert summary.finished == 4 and not summary.failed
    output = CliRunner().invoke(app, ["results", "long", "--format", "json", "--tracking-uri",
                                      str(store)]).output
    return str(store), json.loads(output)


def _results(store: str, width: int, monkeypatch, *options: str) -> str:
    """``clustergrid results long`` as a terminal (or a file) ``width`` columns wide."""
    from typer.testing import CliRunner

    from clustergrid import cli as module

    monkeypatch.setattr(module.console, "width", width)
    result = CliRunner().invoke(module.app, ["results", "long", "--tracking-uri", store,
                                             *options])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_the_verdict_reads_on_whole_lines_at_any_width(long_store, width, monkeypatch):
    from clustergrid.names import canonical, split_pipeline

    store, records = long_store
    full = {r["pipeline"].removesuffix(" / seed=0") for r in records}
    text = _results(store, width, monkeypatch, "--recommend")
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    assert not [line for line in lines if len(line.strip()) == 1]
    # The dataset heads its block, whole once its lines are joined; every pipeline is
    # numbered as `results` numbers it, its name whole once its lines are joined.
    joined = " ".join(text.split())
    (dataset,) = {" > ".join(split_pipeline(name).chain) for name in full}
    head = lines[1:lines.index(next(line for line in lines if line.startswith(
        ("Recommended", "No pipeline"))))]
    assert canonical(" ".join(head)) == dataset
    numbers = legend(_results(store, width, monkeypatch), width)
    for number, name in numbers.items():
        part = name.removeprefix(dataset + " / ")
        assert f"#{number} {part}" in joined
        # Lines break between components: each that fits stands whole on one line.
        for component in part.split(" / "):
            if len(component) <= width - 5:
                assert any(component in line for line in lines), (component, text)


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_long_names_read_on_whole_lines_at_any_width(long_store, width, monkeypatch):
    from clustergrid.names import split_pipeline
    from clustergrid.results import load_results
    from clustergrid.verdict import assessments, recommend

    store, records = long_store
    names = {r["pipeline"].removesuffix(" / seed=0") for r in records}
    assert len(names) == 4 and min(len(name) for name in names) > 170
    for options in ((), ("--per-seed",)):
        text = _results(store, width, monkeypatch, *options)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines)
        assert not [line for line in lines if len(line.strip()) == 1]
        # Every pipeline's full name, on whole lines under the table, by its number.
        legend_names = legend(text, width)
        assert sorted(legend_names.values()) == sorted(names)
        for name in names:
            (number,) = [n for n, legend_name in legend_names.items() if legend_name == name]
            entry = text.split("\n\n")[-1].split(f"\n{number}  ", 1)[-1]
            parts = split_pipeline(name)
            for component in (*parts.chain, parts.encoder, parts.reducer, parts.clusterer):
                if len(component) <= width - 3:  # a component that fits is not broken
                    assert any(component in line for line in entry.splitlines()[:4]), \
                        (component, text)
        # Every metric, its header whole, in some table; a row for every pipeline.
        rows = table_rows(text)
        assert sorted(rows) == (["1", "2", "3", "4"] if not options else
                                ["1/0", "2/0", "3/0", "4/0"])
        for row in rows.values():
            assert set(row) >= {"ari", "calinski_harabasz", "davies_bouldin", "homogeneity",
                                "nmi", "silhouette"}
    # In the verdict's order: by rank, a barred pipeline never the first choice.
    judged = assessments(recommend(load_results(store, "long")))
    by_number = {number: judged[name] for number, name in legend_names.items()}
    assert [by_number[n].rank for n in sorted(by_number)] == [1, 2, 3, 4]
    for number, row in table_rows(_results(store, width, monkeypatch)).items():
        if by_number[number].barred:
            assert row["verdict"].startswith("barred: ")
        assert row["verdict"] != "1st" or (by_number[number].rank == 1
                                            and not by_number[number].barred)


def test_labels_takes_a_name_as_results_prints_it_in_any_spelling_or_its_number(
        long_store, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from clustergrid.cli import app
    from clustergrid.errors import ClustergridError
    from clustergrid.export import choose

    store, records = long_store
    printed = legend(_results(store, 100, monkeypatch), 100)
    for number, name in printed.items():
        assert choose(store, "long", number).row["pipeline"] == f"{name} / seed=0"
        assert choose(store, "long", f"#{number}").row["pipeline"] == f"{name} / seed=0"
    gmm = next(r["pipeline"] for r in records if "gmm[" in r["pipeline"])
    assert "gmm[criterion=bic,k_range=[2, 4],n_clusters=auto]" in gmm
    chain, rest = gmm.split(" / ", 1)
    dataset, *transforms = chain.split(" > ")
    plugin, inner = dataset[:-1].split("[", 1)
    reordered = f"{plugin}[{', '.join(reversed(inner.split(',')))}]"
    spellings = [
        gmm, gmm.removesuffix(" / seed=0"),
        "+".join([reordered, *transforms]) + " / " + rest.replace(
            "gmm[criterion=bic,k_range=[2, 4],n_clusters=auto]",
            "gmm[n_clusters=auto, k_range=(2, 4), criterion='bic']"),
    ]
    for spelling in spellings:
        assert choose(store, "long", spelling).row["pipeline"] == gmm, spelling
    output = tmp_path / "clusters.csv"
    done = CliRunner().invoke(app, ["labels", "long", "-p", spellings[-1], "-o", str(output),
                                    "--tracking-uri", store])
    assert done.exit_code == 0, done.output
    assert output.read_text().count("\n") >= 40
    for unknown in ("spectral", "99", "images[path=/" + "x" * 1500 + "]"):
        failed = CliRunner().invoke(app, ["labels", "long", "-p", unknown, "-o", str(output),
                                          "--tracking-uri", store])
        assert isinstance(failed.exception, ClustergridError), failed.output
        message = str(failed.exception)
        assert "\n" not in message and len(message) < 500, message


def test_results_rows_follow_the_verdict_and_mark_barred_pipelines(monkeypatch, capsys):
    from types import SimpleNamespace

    import pandas as pd

    from clustergrid import cli as module
    from clustergrid import verdict
    from clustergrid.export import find_combination

    monkeypatch.setattr(module.console, "width", 80)
    ran = [("d1", "dominant"), ("d1", "sound"), ("d2", "kmeans"), ("d1", "noisy"), ("d2", "gmm"),
           ("d2", "bright")]
    frame = pd.DataFrame([{"pipeline": f"{data}[n=1] / pixels / none / {clusterer} / seed=0",
                           "param.seed": "0", "status": "FINISHED", "ari": 0.5}
                          for data, clusterer in ran])
    # The verdict's assessments, as ``clustergrid.verdict`` gives them: each dataset's
    # pipelines ranked, a barred one with its flags.
    judged = {
        "d1[n=1] / pixels / none / sound": (1, True, []),
        "d1[n=1] / pixels / none / dominant": (2, False, ["k_at_edge", "dominant_cluster"]),
        "d1[n=1] / pixels / none / noisy": (3, False, ["mostly_noise"]),
        "d2[n=1] / pixels / none / gmm": (1, True, []),
        "d2[n=1] / pixels / none / kmeans": (2, False, []),
        "d2[n=1] / pixels / none / bright": (3, True, ["follows_brightness"]),
    }
    fakes = {name: SimpleNamespace(name=name, dataset=name.split(" /")[0], rank=rank,
                                   structure=structure, flags=flags, reason="",
                                   follows="brightness" if "follows_brightness" in flags
                                   else "", barred=bool(set(flags) & set(verdict.BARRING)))
             for name, (rank, structure, flags) in judged.items()}
    with monkeypatch.context() as patched:
        patched.setattr(verdict, "recommend", lambda finished, *args: ["verdicts"])
        patched.setattr(verdict, "assessments", lambda verdicts: fakes)
        module._print_results("x", frame, None, per_seed=False)
        text = capsys.readouterr().out
        rows, names = table_rows(text), legend(text, 80)
        assert {number: (name.split("[")[0], name.rsplit(" / ", 1)[1], rows[number]["verdict"])
                for number, name in names.items()} == {
            "1": ("d1", "sound", "1st"), "2": ("d1", "dominant", "barred: dominant_cluster"),
            "3": ("d1", "noisy", "barred: mostly_noise"), "4": ("d2", "gmm", "1st"),
            "5": ("d2", "kmeans", "no structure"), "6": ("d2", "bright", "follows brightness")}
        assert find_combination(frame, "x", "4", None)["pipeline"].startswith("d2[n=1]")
        assert find_combination(frame, "x", "4", None)["pipeline"].endswith("/ gmm / seed=0")
    # Without the verdict's evidence: no verdict, the order the pipelines ran in.
    module._print_results("x", frame, None, per_seed=False)
    text = capsys.readouterr().out
    assert "verdict" not in text
    assert [name.rsplit(" / ", 1)[1] for name in legend(text, 80).values()] == [
        clusterer for _, clusterer in ran]
    assert find_combination(frame, "x", "1", None)["pipeline"].endswith("/ dominant / seed=0")


def test_report_command_writes_html_and_markdown(tiny_store):
    folder, _ = tiny_store
    assert cli("report", "tiny", "-o", "out.html", cwd=folder).returncode == 0
    html = (folder / "out.html").read_text()
    assert "id='leaderboard-table'" in html and "<b>8</b> combinations finished" in html
    assert cli("report", "tiny", "--format", "markdown", "-o", "out.md", cwd=folder).returncode == 0
    lines = (folder / "out.md").read_text().splitlines()
    assert "Every row: dataset: digits[n_samples=200]; transforms: none; reducer: none." in lines
    assert lines[lines.index("| encoder | clusterer | verdict | seeds | ari | davies_bouldin | "
                             "silhouette | stability_ari |") + 1].startswith("|---|")
    table = [line for line in lines if line.startswith("| pixels[downsample=")]
    assert len(table) == 4  # 2 downsamples x 2 k, each averaged over the 2 seeds
    assert all(" | 2 | " in line and " ± " in line for line in table)
    # In the verdict's order: its rank leads each row's verdict cell.
    assert [line.split(" | ")[2].split()[0] for line in table] == ["1", "2", "3", "4"]


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
