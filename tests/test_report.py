"""The comparison report, built from a real store: what each section says, and that it
agrees with what was logged and cached. (tests/test_report_browser.py opens it.)"""

from __future__ import annotations

import html
import itertools
import re

import fake_components
import numpy as np
import pandas as pd
import pytest
from conftest import INJECTION, payload

from clustergrid import runner
from clustergrid.cache import Cache
from clustergrid.locations import locate
from clustergrid.plan import make_plan
from clustergrid.registry import Registry
from clustergrid.report import collect, html_report, write_report
from clustergrid.results import load_results
from clustergrid.spec import parse_experiment
from clustergrid.stages import gallery, load_thumbnails


def test_summary_lists_datasets_with_classes_and_steps(page):
    assert "<b>16</b> combinations finished, <b>0</b> failed" in page
    assert "0: 15, 1: 15, 2: 15" in page  # digits' first 150 items, classes counted
    assert "other: 20" in page
    steps = re.search(r"<td class='text'>cluster</td><td>(\d+)</td><td>(\d+)</td>", page)
    assert steps.groups() == ("16", "0")  # 2 datasets x 2 reducers x 2 k x 2 seeds


def test_user_text_is_escaped_everywhere(page):
    assert INJECTION not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # In the explorer's data it is JSON that cannot close its script element.
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    assert any(INJECTION in d["classes"] for d in payload(page)["datasets"].values())


def test_leaderboard_marks_the_best_mean_of_each_metric(grid, page):
    folder, experiment, _ = grid
    frame = load_results(str(folder), experiment.name)
    best_ari = frame.groupby(["param.dataset", "param.reducer", "param.clusterer.n_clusters"])[
        "ari"].mean().max()
    marked = re.findall(r"<td class='best' data-value='([^']+)'>", page)
    assert any(abs(float(v) - best_ari) < 1e-12 for v in marked)
    # n_clusters describes a clustering: no best marked in its column.
    assert not any("best" in row["n_clusters"] for row in leaderboard(page))


def leaderboard(page: str) -> list[dict[str, str]]:
    """Each leaderboard row: column name -> the attributes of its cell."""
    header = re.search(r"<table class='sortable' id='leaderboard-table'><thead><tr>(.*?)</tr>",
                       page).group(1)
    columns = re.findall(r"<th[^>]*>([^<]*)</th>", header)
    return [dict(zip(columns, re.findall(r"<td([^>]*)>", row), strict=True))
            for row in re.findall(r"<tr data-run='[^']*'[^>]*>(.*?)</tr>", page)]


def leaderboard_rows(page: str) -> list[tuple[str, str, str]]:
    """Each leaderboard row in the page's order: its run, its own attributes, its cells."""
    table = re.search(r"<table class='sortable' id='leaderboard-table'>.*?</table>", page,
                      re.S).group(0)
    return re.findall(r"<tr data-run='([^']*)'([^>]*)>(.*?)</tr>", table)


def section(page: str, name: str) -> str:
    found = re.search(rf"<section id='{name}'>(.*?)</section>", page, re.S)
    return found.group(1) if found else ""


def shown_view(text: str) -> tuple[str, str]:
    """The one view (``by-metric`` block) of a section that is not hidden: its key and
    its content."""
    views = re.findall(r"<div class='by-metric' data-metric='([^']*)'( hidden)?>(.*?)"
                       r"(?=<div class='by-metric'|$)", text, re.S)
    shown = [(key, body) for key, hidden, body in views if not hidden]
    assert len(shown) == 1, [key for key, _, _ in views]
    return shown[0]


def directed_report(directions: dict[str, str] | None) -> str:
    """The page of three pipelines (clusterers a, b, c) on two datasets, two seeds each,
    scored by ``ari``, ``spread`` and ``clustered_share``; ``directions`` is what the
    invocation recorded (None: an older store that recorded none)."""
    from clustergrid.report.collect import ReportData

    spread = {"a": 3.0, "b": 1.0, "c": 2.0}  # b is best when lower is better
    rows = []
    for dataset, clusterer, seed in itertools.product(("d1", "d2"), "abc", (0, 1)):
        rows.append({"pipeline": f"{dataset}/{clusterer}", "param.dataset": dataset,
                     "param.encoder": "pixels", "param.reducer": "none",
                     "param.clusterer": clusterer, "param.seed": str(seed),
                     "status": "FINISHED", "run_id": f"{dataset}{clusterer}{seed}",
                     "step.data": dataset, "step.map": dataset,
                     "ari": {"a": 0.9, "b": 0.5, "c": 0.7}[clusterer] + 0.01 * seed,
                     "spread": spread[clusterer] + (dataset == "d2") + 0.1 * seed,
                     "clustered_share": {"a": 0.2, "b": 0.9, "c": 0.5}[clusterer]})
    summary = {} if directions is None else {"directions": directions}
    return html_report(ReportData("directed", pd.DataFrame(rows), [summary]))


def test_declared_directions_drive_marks_heatmaps_and_ranking():
    from clustergrid.directions import metric_directions

    registry = Registry.load(extra=[fake_components.DirectedMetrics()])
    assert registry.failures == []
    page = directed_report(metric_directions(info.cls for info in registry.all("metric")))
    rows = leaderboard(page)
    best_spread = [row["spread"] for row in rows if "best" in row["spread"]]
    assert best_spread == [" class='best' data-value='1.05'"]  # the minimum, b on d1
    assert [row["ari"] for row in rows if "best" in row["ari"]] == [
        " class='best' data-value='0.905'", " class='best' data-value='0.905'"]
    assert not any("best" in row["clustered_share"] for row in rows)
    assert "<th title='lower is better'>spread</th>" in page
    assert "<th title='descriptive: no value is better'>clustered_share</th>" in page
    # Descriptive values are offered neither for heatmaps nor for ranking.
    picker = re.search(r"<select id='metric'>(.*?)</select>", page).group(1)
    assert re.findall(r"<option[^>]*>([^<]*)</option>", picker) == ["ari", "spread"]
    assert "data-metric='clustered_share'" not in page
    # Lower is better: b, the smallest spread, is the darkest cell and ranks first.
    heatmap = re.search(r"<section id='heatmaps'>.*?data-metric='spread'[^>]*>(.*?)</div>",
                        page, re.S).group(1)
    darkest = re.findall(r"<td[^>]* style='background:rgb\(8,69,148\)[^']*'>([^<]+)</td>",
                         heatmap)
    assert darkest == ["1.050", "2.050"]  # d1 then d2
    ranking = re.search(r"<section id='ranking'>.*?data-metric='spread'[^>]*>(.*?)</table>",
                        page, re.S).group(1)
    ranks = re.findall(r"<td class='text'>([^<]+)</td><td>([\d.]+)</td>", ranking)
    assert ranks[0] == ("pixels / none / b", "1.00")
    # Without verdict evidence nothing is ranked or marked by a verdict.
    assert "class='barred'" not in page and "<span class='verdict-mark" not in page
    assert "id='recommendation'" not in page and "value='(verdict)'" not in page


def test_stores_without_recorded_directions_use_the_installed_metrics():
    page = directed_report(None)
    # ari is a built-in (higher); the test plugin's metrics are not installed: their
    # direction is unknown, so they are shown but never marked or ranked.
    assert "<th title='higher is better'>ari</th>" in page
    assert "<th title='descriptive: no value is better'>spread</th>" in page
    assert not any("best" in row["spread"] for row in leaderboard(page))
    assert "data-metric='spread'" not in page


def test_recommendation_opens_with_the_verdict_on_each_dataset(grid, page):
    from clustergrid.verdict import recommend

    folder, experiment, _ = grid
    verdicts = recommend(load_results(str(folder), experiment.name))
    section = re.search(r"<section id='recommendation'>(.*?)</section>", page, re.S).group(1)
    assert page.index("id='recommendation'") < page.index("id='leaderboard'")
    for verdict in verdicts:
        assert f"<h3>{html.escape(verdict.dataset)}</h3>" in section
        rows = re.findall(r"<tr[^>]*><td>(\d+)</td><td class='text'>([^<]*)</td>",
                          section.split(f"<h3>{html.escape(verdict.dataset)}</h3>")[1])
        assert [html.unescape(p) for _, p in rows[:len(verdict.ranking)]] == [
            a.pipeline for a in verdict.ranking]
        # The same sentence as `results --recommend`, naming the pipeline in full.
        assert html.escape(verdict.headline()) in section
        if verdict.choice.structure:
            assert verdict.choice.name in verdict.headline()
    # Labels grade the choice: digits and the named blobs are labelled.
    assert section.count("Against the labels, which the verdict never uses: ari") == 2
    # Without a choice of metric, heatmaps and ranking show the verdict's own ranks.
    assert re.search(r"<option value='\(verdict\)' selected>", page)


def test_every_view_opens_in_the_verdicts_order(grid, page):
    from clustergrid.results import pipeline_names
    from clustergrid.verdict import recommend

    folder, experiment, _ = grid
    frame = load_results(str(folder), experiment.name)
    verdicts = recommend(frame)
    order = [a.name for verdict in verdicts for a in verdict.ranking]
    assert len(verdicts) == 2 and len(order) == 8
    name_of = dict(zip(frame["run_id"], pipeline_names(frame), strict=True))
    # The leaderboard's rows, dataset by dataset, best first; each row's verdict rank.
    rows = leaderboard_rows(page)
    assert [name_of[run] for run, _, _ in rows] == order
    ranks = [int(re.search(r"<td class='text verdict' data-value='(\d+)'>", cells).group(1))
             for _, _, cells in rows]
    assert ranks == [a.rank for verdict in verdicts for a in verdict.ranking]
    # Heatmaps and ranking open on the verdict's ranks, not on a metric.
    key, heatmaps = shown_view(section(page, "heatmaps"))
    assert key == "(verdict)"
    cells = re.findall(r"<td data-pipeline='([^']*)'[^>]*>(\d+)</td>", heatmaps)
    shown = [html.unescape(name) for name, _ in cells]
    assert sorted(shown) == sorted(order)
    assert shown[0] == verdicts[0].choice.name  # the first table opens on the choice
    rank_of = {a.name: a.rank for verdict in verdicts for a in verdict.ranking}
    assert all(int(rank) == rank_of[html.unescape(name)] for name, rank in cells)
    for table in re.findall(r"<table class='heatmap'>(.*?)</table>", heatmaps, re.S):
        # One encoder here: a table's row lists its clusterers in the verdict's order.
        in_table = [html.unescape(n) for n in re.findall(r"data-pipeline='([^']*)'", table)]
        assert in_table == sorted(in_table, key=order.index)
    key, _ = shown_view(section(page, "ranking"))
    assert key == "(verdict)"
    # The explorer opens on the verdict's choice on the first dataset, its first seed.
    runs = [run["id"] for run in payload(page)["runs"]]
    choice = frame[pipeline_names(frame) == verdicts[0].choice.name]
    first = choice.loc[choice["param.seed"].astype(int).idxmin(), "run_id"]
    assert runs[0] == first
    assert re.search(r"<select id='combination'><option value='([^']*)' selected[ >]",
                     page).group(1) == first
    assert list(dict.fromkeys(name_of[run] for run in runs)) == order
    # Their cards and unusual items open on it too.
    assert re.search(r"<div class='unusual-run' data-run='([^']*)'>", page).group(1) == first


def test_the_verdicts_ranking_across_datasets_averages_its_ranks(grid, page):
    from clustergrid.ranking import compare_pipelines
    from clustergrid.verdict import recommend

    folder, experiment, _ = grid
    verdicts = recommend(load_results(str(folder), experiment.name))
    ranks = pd.DataFrame({v.dataset: {a.pipeline: a.rank for a in v.ranking}
                          for v in verdicts})
    expected = compare_pipelines(ranks, higher_is_better=False).ranks
    _, view = shown_view(section(page, "ranking"))
    shown = re.findall(r"<td class='text'>([^<]+)</td><td>([\d.]+)</td>", view)
    assert {html.unescape(name): float(rank) for name, rank in shown} == pytest.approx(
        expected.to_dict())
    assert [float(rank) for _, rank in shown] == sorted(expected.to_list())
    assert f"4 pipelines on {len(verdicts)} dataset(s)" in view and "<svg" in view


def verdict_report(datasets: tuple[str, ...] = ("d1", "d2")) -> tuple[str, pd.DataFrame]:
    """The page of three pipelines (clusterers dominant, sound and weak) on ``datasets``,
    two seeds each, with the verdict's evidence, and the frame it was built from.
    ``dominant`` has the best gap, silhouette and ari, and one cluster holding 95% of the
    items; ``weak`` the worst of all."""
    from clustergrid.report.collect import ReportData

    evidence = {"dominant": {"gap": 0.9, "excess": 300.0, "calibration.largest_cluster": 0.95,
                             "silhouette": 0.8, "ari": 0.9},
                "sound": {"gap": 0.5, "excess": 40.0, "calibration.largest_cluster": 0.4,
                          "silhouette": 0.4, "ari": 0.6},
                "weak": {"gap": 0.2, "excess": 8.0, "calibration.largest_cluster": 0.4,
                         "silhouette": 0.2, "ari": 0.3}}
    rows = []
    for dataset, clusterer, seed in itertools.product(datasets, evidence, (0, 1)):
        rows.append({"pipeline": f"{dataset} / pixels / none / {clusterer} / seed={seed}",
                     "param.dataset": dataset, "param.encoder": "pixels",
                     "param.reducer": "none", "param.clusterer": clusterer,
                     "param.seed": str(seed), "status": "FINISHED",
                     "run_id": f"{dataset}{clusterer}{seed}", "step.data": dataset,
                     "coverage": 1.0, "resampling_jaccard": 0.95,
                     "calibration.null_draws": 5.0, "calibration.clusters": 3.0,
                     **{k: v + 0.01 * seed for k, v in evidence[clusterer].items()}})
        # The same evidence under the names of the density-based rule.
        rows[-1].update(validity=rows[-1]["gap"], validity_excess=rows[-1]["excess"])
    frame = pd.DataFrame(rows)
    directions = {"gap": "higher", "silhouette": "higher", "ari": "higher"}
    return html_report(ReportData("verdict", frame, [{"directions": directions}])), frame


def test_a_pipeline_the_verdict_bars_is_marked_and_never_called_best():
    from clustergrid.verdict import FLAGS, assessments, recommend

    page, frame = verdict_report()
    marks = assessments(recommend(frame))
    barred = {name for name, a in marks.items() if a.barred}
    assert barred == {"d1 / pixels / none / dominant", "d2 / pixels / none / dominant"}
    assert all(marks[name].flags == ["dominant_cluster"] for name in barred)
    # Leaderboard: its rows are marked, with the flag and what it means; the best value of
    # each metric, its own on all of them, goes to the best pipeline it does not bar.
    rows = leaderboard_rows(page)
    assert len(rows) == 6
    sentence = html.escape(FLAGS["dominant_cluster"])
    for run, attributes, cells in rows:
        if run.removesuffix("0").endswith("dominant"):
            assert "class='barred'" in attributes and sentence in attributes
            assert "<span class='verdict-mark barred'" in cells and "class='best'" not in cells
        else:
            assert "barred" not in attributes + cells
    best = [(run, cells.count("class='best'")) for run, _, cells in rows
            if "class='best'" in cells]
    assert best == [("d1sound0", 3), ("d2sound0", 3)]
    values = sorted(float(v) for _, _, cells in rows
                    for v in re.findall(r"<td class='best' data-value='([^']*)'>", cells))
    # sound's silhouette, gap and ari (means over seeds), not dominant's 0.805, 0.905, 0.905
    assert values == pytest.approx([0.405, 0.405, 0.505, 0.505, 0.605, 0.605])
    # Heatmaps: open on the verdict; in every view its cells are marked and never shaded,
    # and the darkest cell of each table is the best the verdict does not bar.
    key, _ = shown_view(section(page, "heatmaps"))
    assert key == "(verdict)"
    cells = re.findall(r"<td data-pipeline='([^']*)'([^>]*)>([^<]*)</td>",
                       section(page, "heatmaps"))
    assert len(cells) == 6 * 4  # (verdict), gap, silhouette, ari
    for name, attributes, _ in cells:
        if name in barred:
            assert "class='barred'" in attributes and "dominant_cluster" in attributes
            assert "style=" not in attributes
        else:
            assert "barred" not in attributes
    darkest = {name for name, attributes, _ in cells if "rgb(8,69,148)" in attributes}
    assert darkest == {"d1 / pixels / none / sound", "d2 / pixels / none / sound"}
    # Ranking across datasets: opens on the verdict, the barred pipeline last and marked.
    key, view = shown_view(section(page, "ranking"))
    assert key == "(verdict)"
    ranked = re.findall(r"<tr( class=barred)?><td class='text'>([^<]+)</td><td>([\d.]+)</td>",
                        view)
    assert [(name, rank) for _, name, rank in ranked] == [
        ("pixels / none / sound", "1.00"), ("pixels / none / weak", "2.00"),
        ("pixels / none / dominant", "3.00")]
    assert [bool(mark) for mark, _, _ in ranked] == [False, False, True]
    assert "title='barred on 2 of 2 datasets" in view
    assert re.search(r'<g class="pipeline-label marked"><title>pixels / none / dominant:', view)
    # On a metric the barred pipeline would lead, it is still marked there.
    metric_view = re.search(r"data-metric='gap' hidden>(.*?)</table>", section(page, "ranking"),
                            re.S).group(1)
    assert re.search(r"<tr class=barred><td class='text'>(none / )?pixels / none / dominant"
                     r"</td><td>1.00</td>", metric_view)
    # Recommendation: never it; where the labels rate it highest, it is marked there too.
    recommendation = section(page, "recommendation")
    assert re.findall(r"Recommended: [^<]*/ pixels / none / (\w+)\.", recommendation) == [
        "sound", "sound"]
    assert re.findall(r"highest in the grid [\d.]+ \(([^<]*)<span class='verdict-mark "
                      r"barred'", recommendation) == ["pixels / none / dominant"] * 2
    assert not re.search(r"best[^<]{0,80}dominant", page)


def test_one_dataset_has_no_ranking_across_datasets():
    page, _ = verdict_report(("d1",))
    assert "id='heatmaps'" in page and "id='recommendation'" in page
    assert "id='ranking'" not in page and "Ranking across datasets" not in page
    assert "Critical difference diagram" not in page and "<svg" not in page
    # Without a verdict either.
    from clustergrid.report.collect import ReportData

    frame = pd.DataFrame([{"pipeline": f"d / pixels / none / {c}", "param.dataset": "d",
                           "param.encoder": "pixels", "param.reducer": "none",
                           "param.clusterer": c, "param.seed": "none", "status": "FINISHED",
                           "run_id": c, "ari": score} for c, score in (("a", 0.5), ("b", 0.7))])
    plain = html_report(ReportData("plain", frame, [{"directions": {"ari": "higher"}}]))
    assert "<section id='heatmaps'>" in plain and "id='ranking'" not in plain


def test_heatmaps_one_per_dataset_and_reducer(page):
    ari = re.search(r"<section id='heatmaps'>.*?<div class='by-metric' data-metric='ari'[^>]*>"
                    r"(.*?)</div>", page, re.S).group(1)
    assert len(re.findall("<table class='heatmap'>", ari)) == 4  # 2 datasets x 2 reducers


def test_ranking_uses_scipys_friedman_test(grid, page):
    from scipy.stats import friedmanchisquare

    folder, experiment, _ = grid
    frame = load_results(str(folder), experiment.name)
    frame["pipeline"] = frame["param.reducer"] + frame["param.clusterer.n_clusters"]
    table = frame.pivot_table(index="pipeline", columns="param.dataset", values="ari",
                              aggfunc="mean")
    # 4 pipelines on 2 datasets
    statistic, p = friedmanchisquare(*table.to_numpy())
    section = re.search(r"data-metric='ari'[^>]*>\s*<p>4 pipelines on 2 dataset\(s\): Friedman "
                        r"&chi;&sup2; = ([\d.]+), p = ([\d.e-]+)", page)
    assert section, "no ranking of 4 pipelines over 2 datasets"
    assert float(section.group(1)) == pytest.approx(statistic, abs=0.005)
    assert float(section.group(2)) == pytest.approx(p, rel=1e-2)
    assert "<svg" in page[page.index("<section id='ranking'>"):]


def test_explorer_data_matches_the_cache(grid, page):
    folder, experiment, registry = grid
    data = payload(page)
    cache = Cache(locate(experiment).cache)
    plan = make_plan(experiment, registry)
    by_label = {c.label(): c for c in plan.combinations}
    frame = load_results(str(folder), experiment.name)
    assert len(data["runs"]) == len(frame) == 16
    for run in data["runs"]:
        pipeline = frame.loc[frame["run_id"] == run["id"], "pipeline"].item()
        combination = by_label[pipeline]
        thumbs = load_thumbnails(cache, combination.steps["data"])
        labels = cache.load(combination.steps["cluster"], "labels")
        assert run["clusters"] == labels[thumbs["index"]].tolist()
        dataset = data["datasets"][run["data"]]
        assert dataset["ids"] == thumbs["ids"].tolist()
        assert dataset["truth"] == thumbs["labels"].tolist()
        # The map is the cached one, moved and scaled into the unit square.
        from scipy.spatial.distance import pdist

        drawn = np.asarray(data["maps"][run["map"]])
        cached = cache.load(combination.steps["map"], "X")[thumbs["index"]]
        assert drawn.min() == 0 and drawn.max() == 1
        scale = (cached.max(axis=0) - cached.min(axis=0)).max()
        np.testing.assert_allclose(pdist(drawn) * scale, pdist(cached), atol=2e-4 * scale)
        # Confusion counts add up to the items; ROC curves come from the linear probe.
        assert sum(map(sum, run["confusion"]["counts"])) == len(labels)
        (roc,) = [c for c in run["charts"] if c["title"].startswith("Linear probe ROC")]
        assert len(roc["series"]) == len(dataset["classes"])
        assert all(s["y"][-1] == 1.0 for s in roc["series"])


def test_gallery_shows_the_members_nearest_each_centre():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    labels = np.repeat([0, 1, -1], 20)
    shown = np.arange(0, 60, 2)  # only even items have thumbnails
    rows = gallery(X, labels, shown, per_cluster=3)
    for cluster in (0, 1):
        picked = rows[rows[:, 0] == cluster, 1]
        members = shown[labels[shown] == cluster]
        distance = ((X[members] - X[labels == cluster].mean(axis=0)) ** 2).sum(axis=1)
        assert picked.tolist() == members[np.argsort(distance)[:3]].tolist()
    noise = rows[rows[:, 0] == -1, 1]
    assert len(noise) == 3 and set(noise) <= set(shown[labels[shown] == -1])


def test_a_failed_map_leaves_the_combination_finished(registry, workdir):
    text = """\
name: nomap
datasets:
  - plugin: digits
    n_samples: 60
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: 3
    random_state: 0
map: {plugin: first, k: 1}
"""
    registry = Registry.load(extra=[fake_components])
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.finished == 1 and summary.step_status["failed"] == 1
    run = load_results(None, "nomap").iloc[0]
    assert run["status"] == "FINISHED"
    data = collect(None, "nomap")
    assert data.maps == {}
    assert payload(html_report(data))["runs"][0]["map"] is None


def test_markdown_table_has_a_row_per_pipeline(grid):
    folder, experiment, _ = grid
    text = write_report(str(folder), experiment.name, folder / "r.md", "markdown").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| digits")]
    assert len(rows) == 4  # 2 reducers x 2 k, averaged over seeds
    assert "&lt;script&gt;" in text and INJECTION not in text
    # In the verdict's order, with its rank and what it bars.
    from clustergrid.verdict import recommend

    (digits, _) = recommend(load_results(str(folder), experiment.name))
    lines = text.splitlines()
    header = lines[lines.index(next(line for line in lines if line.startswith("|---"))) - 1]
    header = [c.strip() for c in header.strip("|").split("|")]
    column = header.index("verdict")
    shown = [row.strip("|").split("|")[column].strip() for row in rows]
    assert [cell.split()[0] for cell in shown] == [str(a.rank) for a in digits.ranking]
    assert ["(barred:" in cell for cell in shown] == [a.barred for a in digits.ranking]


def test_results_can_be_written_as_parquet_and_csv(grid, tmp_path):
    from conftest import cli

    folder, experiment, _ = grid
    for suffix in ("parquet", "csv"):
        out = tmp_path / f"results.{suffix}"
        result = cli("results", experiment.name, "--tracking-uri", str(folder), "-o", str(out))
        assert result.returncode == 0, result.stderr
        frame = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
        assert len(frame) == 16 and "ari" in frame and "param.encoder" in frame


def test_thumbnails_are_rgb_with_the_last_band_red_and_a_fixed_sample():
    from clustergrid.thumbnails import thumbnail_index, thumbnails

    images = np.zeros((2, 3, 16, 16), dtype=np.float32)
    images[0, 2, 4:12, 4:12] = 1.0  # the reddest band (e.g. i of g, r, i) is shown red
    images[1, 0, 4:12, 4:12] = 1.0  # the bluest, blue
    out = thumbnails(images, size=8)
    assert out.shape == (2, 8, 8, 3) and out.dtype == np.uint8
    assert out[0, 4, 4].tolist() == [255, 0, 0] and out[1, 4, 4].tolist() == [0, 0, 255]
    gray = thumbnails(np.random.default_rng(0).normal(size=(1, 1, 20, 20)), size=8)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert thumbnail_index(10, limit=20).tolist() == list(range(10))
    sample = thumbnail_index(10_000, limit=100)
    assert len(np.unique(sample)) == 100 and (np.diff(sample) > 0).all()
    assert np.array_equal(sample, thumbnail_index(10_000, limit=100))


def test_curves_become_k_selection_roc_and_training_charts():
    from clustergrid.report.explorer import charts

    curves = {"cluster.k_curve_k": [2, 3, 4], "cluster.k_curve_score": [0.1, float("nan"), 0.3],
              "encode.train_loss": [3.0, 2.0], "encode.val_loss": [3.5, 2.5],
              "probe.roc_tpr.1": [0.0] * 50 + [1.0], "probe.roc_tpr.0": [0.5] * 50 + [1.0]}
    k, roc, training = charts(curves, ["star", "galaxy"], criterion="bic", chosen_k=4.0)
    assert k["series"][0]["x"] == [2, 3, 4] and k["series"][0]["y"] == [0.1, None, 0.3]
    assert k["y"] == "bic" and k["series"][1] == {"name": "chosen k = 4", "x": [4.0, 4.0],
                                                  "y": [0.1, 0.3]}
    assert [s["name"] for s in roc["series"]] == ["star", "galaxy"]
    assert roc["limits"] == [0, 1] and len(roc["series"][0]["x"]) == 51
    assert [(s["name"], s["x"]) for s in training["series"]] == [
        ("train_loss", [1, 2]), ("val_loss", [1, 2])]
    assert charts({}, []) == []
