"""The HTML report: one self-contained file (styles, script, data and images inline; no
network request), readable offline. Every user-supplied string is escaped here or
reaches the page as JSON data that the script sets as text.

Sections: summary, recommendation (the label-free verdict), leaderboard, heatmaps, ranking
across datasets, and the explorer of one combination (map, gallery, unusual items,
confusion matrix, curves).
"""

from __future__ import annotations

import html
import time
from importlib import resources

import numpy as np
import pandas as pd

from clustergrid import __version__
from clustergrid.directions import direction
from clustergrid.errors import listing
from clustergrid.ranking import compare_pipelines, critical_difference_svg
from clustergrid.report.cards import cards_panel, nuisance_summary
from clustergrid.report.collect import ReportData
from clustergrid.report.explorer import explorer_data, page_json
from clustergrid.report.formatting import best, comparable, is_number, mean_spread
from clustergrid.report.outliers import unusual_gallery
from clustergrid.report.recommendation import recommendation_section
from clustergrid.results import (
    ROLES,
    by_status,
    component_labels,
    metric_columns,
    split_constant,
    summarize_over_seeds,
)
from clustergrid.verdict import SCORE

esc = html.escape
#: roles that make a pipeline, compared across datasets
PIPELINE_ROLES = ("transforms", "encoder", "reducer", "clusterer")
#: metrics proposed first for heatmaps and ranking, when present: the verdict's label-free
#: score before any score that needs labels
PREFERRED = (SCORE, "ari", "ami", "silhouette", "probe_accuracy")


def html_report(data: ReportData) -> str:
    frame = data.frame
    finished, failed = by_status(frame)
    body = [f"<h1>{esc(data.experiment)}</h1>",
            f"<p class='note'>clustergrid {esc(__version__)} report, built "
            f"{time.strftime('%Y-%m-%d %H:%M')} from the tracking store.</p>",
            _summary(data, finished, failed)]
    if not finished.empty:
        summary = summarize_over_seeds(finished)
        known = data.directions
        directions = {m: direction(m, known) for m in metric_columns(finished)}
        ranked = comparable(directions)
        chosen = next((m for m in PREFERRED if m in ranked), ranked[0] if ranked else None)
        labels = component_labels(finished)
        pipelines = labels.drop(columns="seed").astype(str).agg(" / ".join, axis=1)
        first_run = dict(zip(pipelines[::-1], finished["run_id"][::-1], strict=True))
        body.append(recommendation_section(finished))
        body.append(_leaderboard(summary, directions, first_run))
        if chosen:
            body.append(_metric_picker(ranked, chosen))
            body.append(_heatmaps(summary, {m: directions[m] for m in ranked}, chosen))
            body.append(_ranking(summary, {m: directions[m] for m in ranked}, chosen))
        run_labels = pipelines + labels["seed"].map(
            lambda s: "" if s == "none" else f" / seed={s}")
        body.append(_explorer(data, pd.Series(run_labels.values, index=finished["run_id"])))
    style = _asset("report.css")
    script = _asset("report.js")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(data.experiment)} - clustergrid</title><style>{style}</style>"
            "</head><body>" + "\n".join(body) + f"<script>{script}</script></body></html>")


def _asset(name: str) -> str:
    return resources.files("clustergrid.report").joinpath("assets", name).read_text()


def _summary(data: ReportData, finished: pd.DataFrame, failed: pd.DataFrame) -> str:
    parts = ["<section id='summary'><h2>Summary</h2>",
             f"<p><b>{len(finished)}</b> combinations finished, <b>{len(failed)}</b> failed, "
             f"over {len(data.invocations)} invocation(s) of <code>clustergrid run</code>.</p>"]
    datasets = data.datasets
    if datasets:
        rows = []
        for d in datasets.values():
            names = d.get("class_names") or [str(k) for k in range(len(d.get("class_counts")
                                                                      or []))]
            counts = d.get("class_counts")
            classes = (", ".join(f"{name}: {count}" for name, count in
                                 zip(names, counts, strict=False)) if counts else "unlabelled")
            rows.append(f"<tr><td class='text'>{esc(d['label'])}</td><td>{d.get('n')}</td>"
                        f"<td class='text'>{esc(classes)}</td><td>{d.get('skipped', 0)}</td>"
                        "</tr>")
        parts.append("<h3>Datasets</h3><table><thead><tr><th class='text'>dataset</th>"
                     "<th>items</th><th class='text'>classes</th><th>skipped files</th></tr>"
                     f"</thead><tbody>{''.join(rows)}</tbody></table>")
    parts.append(nuisance_summary(finished))
    parts.append(_steps_table(data.invocations))
    if not failed.empty:
        # Combinations failed by one step (a dataset that cannot be read) share its
        # error: one row per error, not one per combination.
        by_error: dict[str, list[str]] = {}
        for _, r in failed.iterrows():
            by_error.setdefault(str(r.get("error", "")), []).append(str(r["pipeline"]))
        rows = "".join(f"<tr class='failed'><td class='text'>{esc(_combinations(pipelines))}"
                       f"</td><td class='text'>{esc(error)}</td></tr>"
                       for error, pipelines in by_error.items())
        parts.append("<h3>Failures</h3><table><thead><tr><th class='text'>combination</th>"
                     f"<th class='text'>error</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append("</section>")
    return "".join(parts)


def _combinations(pipelines: list[str]) -> str:
    """One combination's name, or how many share an error and the first of them."""
    if len(pipelines) == 1:
        return pipelines[0]
    return f"{len(pipelines)} combinations: {listing(pipelines, 3, '; ')}"


def _steps_table(invocations: list[dict]) -> str:
    """Unique steps per stage, computed or from the cache, and the time spent on them,
    summed over invocations."""
    if not invocations:
        return ""
    totals: dict[str, dict[str, float]] = {}
    for summary in invocations:
        for stage, counts in summary.get("stages", {}).items():
            entry = totals.setdefault(stage, {})
            for key, value in counts.items():
                entry[key] = entry.get(key, 0) + value
    wall = sum(s.get("wall_time", 0.0) for s in invocations)
    rows = "".join(
        f"<tr><td class='text'>{esc(stage)}</td><td>{int(c.get('computed', 0))}</td>"
        f"<td>{int(c.get('cached', 0))}</td><td>{int(c.get('failed', 0))}</td>"
        f"<td>{int(c.get('skipped', 0))}</td><td>{c.get('wall_time', 0.0):.1f}</td></tr>"
        for stage, c in totals.items())
    return ("<h3>Grid</h3><table><thead><tr><th class='text'>stage</th><th>computed</th>"
            "<th>from cache</th><th>failed</th><th>skipped</th><th>compute time (s)</th></tr>"
            f"</thead><tbody>{rows}</tbody></table><p>Total wall time {wall:.1f} s "
            "(steps run in parallel when there are several workers).</p>")


#: the title of a leaderboard column's header, by the metric's direction
HEADER_TITLES = {"higher": "higher is better", "lower": "lower is better",
                 "descriptive": "descriptive: no value is better"}


def _leaderboard(summary: pd.DataFrame, directions: dict[str, str], first_run: dict) -> str:
    """Every pipeline's mean and spread of each metric (``directions``: metric ->
    direction), the best value of each comparable metric marked."""
    components, constant = split_constant(summary, [r for r in ROLES if r in summary])
    metrics = list(directions)
    marks = {m: best(summary[f"{m} mean"], d) for m, d in directions.items()}
    shared = "; ".join(f"{role}: {value}" for role, value in constant.items())
    filters = "".join(
        f"<label>{esc(c)} <select class='filter' data-column='{i}'><option value=''>all"
        "</option>" + "".join(f"<option>{esc(str(v))}</option>"
                              for v in sorted(summary[c].astype(str).unique()))
        + "</select></label> " for i, c in enumerate(components))
    head = "".join(f"<th class='text'>{esc(c)}</th>" for c in components)
    head += "<th>seeds</th>" + "".join(
        f"<th title='{HEADER_TITLES[d]}'>{esc(m)}</th>" for m, d in directions.items())
    rows = []
    for _, row in summary.iterrows():
        pipeline = " / ".join(str(row[r]) for r in ROLES if r in summary)
        run = first_run.get(pipeline, "")
        cells = [f"<td class='text' data-value='{esc(str(row[c]))}'>{esc(str(row[c]))}</td>"
                 for c in components]
        cells.append(f"<td data-value='{row['seeds']}'>{row['seeds']}</td>")
        for m in metrics:
            mean, std = row[f"{m} mean"], row[f"{m} std"]
            mark = " class='best'" if is_number(mean) and mean == marks[m] else ""
            value = mean if is_number(mean) else ""
            cells.append(f"<td{mark} data-value='{value}'>{mean_spread(mean, std, '&plusmn;')}"
                         "</td>")
        rows.append(f"<tr data-run='{esc(run)}'>" + "".join(cells) + "</tr>")
    caption = f"<p>Every row: {esc(shared)}.</p>" if shared else ""
    descriptive = [m for m, d in directions.items() if d == "descriptive"]
    unmarked = (f" (none for descriptive values: {esc(', '.join(descriptive))})"
                if descriptive else "")
    return ("<section id='leaderboard'><h2>Leaderboard</h2><p>Mean &plusmn; standard "
            "deviation over seeds. Click a column header to sort, a row to explore it; the "
            f"best value of each metric is marked{unmarked}.</p>{caption}"
            f"<p class='filters'>{filters}"
            "</p><div class='scroll'><table class='sortable' id='leaderboard-table'><thead><tr>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")


def _metric_picker(metrics: list[str], chosen: str) -> str:
    options = "".join(f"<option{' selected' if m == chosen else ''}>{esc(m)}</option>"
                      for m in metrics)
    return ("<p class='picker'><label>Metric for heatmaps and ranking: "
            f"<select id='metric'>{options}</select></label></p>")


def _heatmaps(summary: pd.DataFrame, directions: dict[str, str], chosen: str) -> str:
    """Encoder x clusterer tables of a metric's mean, one per dataset and reducer, for
    each comparable metric of ``directions`` (metric -> direction)."""
    dataset = summary["dataset"].astype(str)
    if "transforms" in summary:
        dataset = dataset + " + " + summary["transforms"].astype(str)
    parts = ["<section id='heatmaps'><h2>Heatmaps</h2><p>Mean over seeds of the chosen "
             "metric, encoder against clusterer; the darker, the better.</p>"]
    for metric, metric_direction in directions.items():
        hidden = "" if metric == chosen else " hidden"
        parts.append(f"<div class='by-metric' data-metric='{esc(metric)}'{hidden}>")
        for (name, reducer), group in summary.groupby([dataset, summary["reducer"]],
                                                      sort=False):
            table = group.pivot_table(index="encoder", columns="clusterer",
                                      values=f"{metric} mean", aggfunc="mean", sort=False)
            parts.append(f"<h3>{esc(name)} &middot; reducer {esc(str(reducer))}</h3>")
            parts.append(_heatmap(table, metric_direction))
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _heatmap(table: pd.DataFrame, metric_direction: str) -> str:
    """One table, the darker a cell the better its value (``metric_direction``)."""
    values = table.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    head = "<th class='text'>encoder \\ clusterer</th>" + "".join(
        f"<th class='text'>{esc(str(c))}</th>" for c in table.columns)
    rows = []
    for encoder, row in table.iterrows():
        cells = [f"<th class='text'>{esc(str(encoder))}</th>"]
        for value in row:
            if not np.isfinite(value):
                cells.append("<td>n/a</td>")
                continue
            share = (value - low) / (high - low) if high > low else 1.0
            strength = share if metric_direction == "higher" else 1 - share
            cells.append(f"<td style='{_shade(strength)}'>{value:.3f}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='heatmap'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _shade(strength: float) -> str:
    """A blue from pale (0) to dark (1), with text that stays readable on it."""
    pale, dark = np.array([239, 243, 255]), np.array([8, 69, 148])
    r, g, b = (pale + (dark - pale) * float(strength)).round().astype(int)
    return f"background:rgb({r},{g},{b});color:{'#fff' if strength > 0.55 else '#111'}"


def _ranking(summary: pd.DataFrame, directions: dict[str, str], chosen: str) -> str:
    """Average rank of each pipeline over the datasets, Friedman's test of whether the
    ranks differ at all, and Nemenyi's critical difference between two of them, for each
    comparable metric of ``directions`` (metric -> direction)."""
    pipeline = summary[[r for r in PIPELINE_ROLES if r in summary]].astype(str).agg(
        " / ".join, axis=1)
    parts = ["<section id='ranking'><h2>Ranking across datasets</h2><p>Pipelines ranked on "
             "each dataset by the chosen metric (1 = best), ranks averaged over datasets; "
             "Friedman's test asks whether any pipeline ranks differently from the others, "
             "and in the critical-difference diagram (Nemenyi, &alpha; = 0.05) pipelines "
             "joined by a bar are not significantly different (Dem&scaron;ar 2006).</p>"]
    for metric, metric_direction in directions.items():
        hidden = "" if metric == chosen else " hidden"
        table = pd.DataFrame({"pipeline": pipeline, "dataset": summary["dataset"].astype(str),
                              "score": summary[f"{metric} mean"]})
        scores_table = table.pivot_table(index="pipeline", columns="dataset", values="score",
                                         aggfunc="mean", sort=False)
        parts.append(f"<div class='by-metric' data-metric='{esc(metric)}'{hidden}>")
        if scores_table.empty or scores_table.notna().all(axis=0).sum() == 0:
            parts.append("<p>No dataset where every pipeline has this metric.</p></div>")
            continue
        ranking = compare_pipelines(scores_table, metric_direction == "higher")
        friedman = (f"Friedman &chi;&sup2; = {ranking.friedman_statistic:.2f}, "
                    f"p = {ranking.friedman_p:.3g}"
                    if is_number(ranking.friedman_statistic) else "Friedman test undefined")
        cd = (f"critical difference {ranking.critical_difference:.2f}"
              if is_number(ranking.critical_difference) else "no critical difference")
        reason = f" ({esc(ranking.reason)})" if ranking.reason else ""
        parts.append(f"<p>{ranking.n_pipelines} pipelines on {ranking.n_datasets} dataset(s): "
                     f"{friedman}; {cd}{reason}.</p>")
        parts.append(f"<div class='cd'>{critical_difference_svg(ranking)}</div>")
        rows = "".join(f"<tr><td class='text'>{esc(str(name))}</td><td>{rank:.2f}</td></tr>"
                       for name, rank in ranking.ranks.items())
        parts.append("<table><thead><tr><th class='text'>pipeline</th><th>average rank</th>"
                     f"</tr></thead><tbody>{rows}</tbody></table></div>")
    parts.append("</section>")
    return "".join(parts)


def _explorer(data: ReportData, run_labels: pd.Series) -> str:
    payload = explorer_data(data, run_labels)
    if not payload["runs"]:
        return ("<section id='explorer'><h2>Explore a combination</h2><p>No thumbnails were "
                "logged for these runs.</p></section>")
    options = "".join(f"<option value='{esc(run['id'])}'>{esc(run['label'])}</option>"
                      for run in payload["runs"])
    return (
        "<section id='explorer'><h2>Explore a combination</h2>"
        f"<p><select id='combination'>{options}</select></p>"
        "<div class='panels'><div class='panel'><h3>Map</h3><p class='note'>The encoder "
        "output drawn in 2-D (the experiment's <code>map</code>); hover a point for its "
        "image. <label><input type='radio' name='colour' value='cluster' checked> clusters"
        "</label> <label><input type='radio' name='colour' value='class'> classes</label>"
        "</p><div id='map'></div><div id='legend'></div></div>"
        "<div class='panel'><h3>Confusion matrix</h3><div id='confusion'></div>"
        "<div id='charts'></div></div></div>"
        "<h3>Gallery</h3><p class='note'>Each cluster's members nearest its centre in the "
        "space it was found in; for noise, a random sample.</p><div id='gallery'></div>"
        f"{unusual_gallery(data, payload['runs'])}"
        f"{cards_panel(data, payload['runs'])}"
        "<div id='tooltip' hidden></div>"
        f"<script type='application/json' id='explorer-data'>{page_json(payload)}</script>"
        "</section>")
