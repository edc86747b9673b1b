"""The HTML report: one self-contained file (styles, script, data and images inline; no
network request), readable offline. Every user-supplied string is escaped here or
reaches the page as JSON data that the script sets as text.

Sections: summary, recommendation (the label-free verdict), leaderboard, heatmaps, ranking
across datasets, and the explorer of one combination (map, gallery, unusual items,
confusion matrix, curves).

When the combinations carry verdict evidence, every section follows the verdict: rows in
its order, heatmaps and ranking opening on its ranks, the explorer on its choice, and the
pipelines it bars marked as such and never as best.
"""

from __future__ import annotations

import html
import time
from collections import Counter
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
from clustergrid.report.recommendation import (
    in_verdict_order,
    recommendation_section,
    verdict_mark,
    verdict_note,
    verdict_ranks,
)
from clustergrid.results import (
    ROLES,
    by_status,
    component_labels,
    metric_columns,
    pipeline_names,
    split_constant,
    summarize_over_seeds,
)
from clustergrid.verdict import Assessment, DatasetVerdict, assessments, recommend

esc = html.escape
#: roles that make a pipeline, compared across datasets
PIPELINE_ROLES = ("transforms", "encoder", "reducer", "clusterer")
#: metrics proposed first for heatmaps and ranking, when present, without a verdict (with
#: one, they open on the verdict's own ranks)
PREFERRED = ("ari", "ami", "silhouette", "probe_accuracy")
#: the picker's key for the verdict's ranks: parentheses, allowed in no MLflow metric
#: name, keep it apart from every metric
VERDICT_VIEW = "(verdict)"


def html_report(data: ReportData) -> str:
    frame = data.frame
    finished, failed = by_status(frame)
    body = [f"<h1>{esc(data.experiment)}</h1>",
            f"<p class='note'>clustergrid {esc(__version__)} report, built "
            f"{time.strftime('%Y-%m-%d %H:%M')} from the tracking store.</p>",
            _summary(data, finished, failed)]
    if not finished.empty:
        verdicts = recommend(finished)
        # Rows in the verdict's order: every table below, and the explorer, follow it.
        finished = in_verdict_order(finished, verdicts)
        marks = assessments(verdicts)
        summary = summarize_over_seeds(finished)
        known = data.directions
        directions = {m: direction(m, known) for m in metric_columns(finished)}
        ranked = comparable(directions)
        chosen = (VERDICT_VIEW if verdicts else
                  next((m for m in PREFERRED if m in ranked), ranked[0] if ranked else None))
        labels = component_labels(finished)
        names = pipeline_names(finished)
        # A pipeline's first row is its first seed (the verdict's order puts it first).
        first_run = dict(zip(names[::-1], finished["run_id"][::-1], strict=True))
        body.append(recommendation_section(verdicts))
        body.append(_leaderboard(summary, directions, first_run, marks))
        if chosen:
            views = {m: directions[m] for m in ranked}
            body.append(_metric_picker(ranked, chosen, bool(verdicts)))
            body.append(_heatmaps(summary, views, chosen, marks))
            body.append(_ranking(summary, views, chosen, verdicts, marks))
        pipelines = labels.drop(columns="seed").astype(str).agg(" / ".join, axis=1)
        run_labels = pipelines + labels["seed"].map(
            lambda s: "" if s == "none" else f" / seed={s}")
        run_marks = {run: marks[name] for run, name in zip(finished["run_id"], names,
                                                            strict=True) if name in marks}
        body.append(_explorer(data, pd.Series(run_labels.values, index=finished["run_id"]),
                              run_marks))
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
            label = esc(d["label"])
            features = d.get("features")
            if features:  # a table: its features, with their units
                units = d.get("units") or [""] * len(features)
                label += "<br><span class='note'>features: " + esc(", ".join(
                    f"{name} ({unit})" if unit else name
                    for name, unit in zip(features, units, strict=False))) + "</span>"
            rows.append(f"<tr><td class='text'>{label}</td><td>{d.get('n')}</td>"
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


def _leaderboard(summary: pd.DataFrame, directions: dict[str, str], first_run: dict,
                 marks: dict[str, Assessment]) -> str:
    """Every pipeline's mean and spread of each metric (``directions``: metric ->
    direction), in the order of ``summary``; the best value of each comparable metric
    marked among the pipelines the verdict does not bar. With a verdict (``marks``: full
    pipeline name -> its assessment), a column of its rank and marks."""
    components, constant = split_constant(summary, [r for r in ROLES if r in summary])
    metrics = list(directions)
    verdict = {name: marks.get(name) for name in summary["pipeline"]} if marks else {}
    barred = summary["pipeline"].map(lambda n: verdict.get(n) is not None
                                     and verdict[n].barred)
    best_values = {m: best(summary.loc[~barred, f"{m} mean"], d)
                   for m, d in directions.items()}
    shared = "; ".join(f"{role}: {value}" for role, value in constant.items())
    filters = "".join(
        f"<label>{esc(c)} <select class='filter' data-column='{i}'><option value=''>all"
        "</option>" + "".join(f"<option>{esc(str(v))}</option>"
                              for v in sorted(summary[c].astype(str).unique()))
        + "</select></label> " for i, c in enumerate(components))
    head = "".join(f"<th class='text'>{esc(c)}</th>" for c in components)
    if verdict:
        head += ("<th class='text' title=\"the label-free verdict's rank on the pipeline's "
                 "dataset (1 = first)\">verdict</th>")
    head += "<th>seeds</th>" + "".join(
        f"<th title='{HEADER_TITLES[d]}'>{esc(m)}</th>" for m, d in directions.items())
    rows = []
    for _, row in summary.iterrows():
        run = first_run.get(row["pipeline"], "")
        cells = [f"<td class='text' data-value='{esc(str(row[c]))}'>{esc(str(row[c]))}</td>"
                 for c in components]
        assessment = verdict.get(row["pipeline"])
        if verdict:
            rank = "" if assessment is None else assessment.rank
            cells.append(f"<td class='text verdict' data-value='{rank}'>{rank}"
                         f"{verdict_mark(assessment)}</td>")
        cells.append(f"<td data-value='{row['seeds']}'>{row['seeds']}</td>")
        for m in metrics:
            mean, std = row[f"{m} mean"], row[f"{m} std"]
            mark = (" class='best'" if is_number(mean) and mean == best_values[m]
                    and not (assessment is not None and assessment.barred) else "")
            value = mean if is_number(mean) else ""
            cells.append(f"<td{mark} data-value='{value}'>{mean_spread(mean, std, '&plusmn;')}"
                         "</td>")
        marked = ("" if assessment is None or not assessment.barred else
                  f" class='barred' title='{esc(verdict_note(assessment))}'")
        rows.append(f"<tr data-run='{esc(run)}'{marked}>" + "".join(cells) + "</tr>")
    caption = f"<p>Every row: {esc(shared)}.</p>" if shared else ""
    descriptive = [m for m, d in directions.items() if d == "descriptive"]
    unmarked = (f" (none for descriptive values: {esc(', '.join(descriptive))})"
                if descriptive else "")
    order = ("Rows follow the verdict's order, dataset by dataset; the best value of each "
             f"metric is marked among the pipelines it does not bar{unmarked}, and those it "
             "bars are marked as such. " if verdict else
             f"The best value of each metric is marked{unmarked}. ")
    return ("<section id='leaderboard'><h2>Leaderboard</h2><p>Mean &plusmn; standard "
            f"deviation over seeds. {order}Click a column header to sort, a row to explore "
            f"it.</p>{caption}<p class='filters'>{filters}"
            "</p><div class='scroll'><table class='sortable' id='leaderboard-table'><thead><tr>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")


def _metric_picker(metrics: list[str], chosen: str, verdict: bool) -> str:
    keys = [VERDICT_VIEW, *metrics] if verdict else metrics
    options = "".join(
        f"<option value='{esc(m)}'{' selected' if m == chosen else ''}>"
        f"{'verdict (label-free rank)' if m == VERDICT_VIEW else esc(m)}</option>"
        for m in keys)
    return ("<p class='picker'><label>Metric for heatmaps and ranking: "
            f"<select id='metric'>{options}</select></label></p>")


def _heatmaps(summary: pd.DataFrame, directions: dict[str, str], chosen: str,
              marks: dict[str, Assessment]) -> str:
    """Encoder x clusterer tables of a metric's mean, one per dataset and reducer, for
    each comparable metric of ``directions`` (metric -> direction), rows, columns and
    tables in the order of ``summary``; with a verdict (``marks``: full pipeline name ->
    its assessment), first its ranks, and the pipelines it bars marked in every table."""
    dataset = summary["dataset"].astype(str)
    if _transformed(summary):
        dataset = dataset + " + " + summary["transforms"].astype(str)
    views = {m: (summary[f"{m} mean"], d, 3) for m, d in directions.items()}
    if marks:
        # A rank's shade is its place among its dataset's pipelines: the first is darkest
        # in whichever table it falls.
        ranks = summary["pipeline"].map(lambda n: marks[n].rank if n in marks else np.nan)
        views = {VERDICT_VIEW: (ranks.astype(float), "lower", 0), **views}
        counts = Counter(a.dataset for a in marks.values())
        scale = {name: (1.0, float(counts[a.dataset])) for name, a in marks.items()}
    barred = " Pipelines the verdict bars are crossed out and never shaded." if marks else ""
    parts = ["<section id='heatmaps'><h2>Heatmaps</h2><p>Mean over seeds of the chosen "
             f"metric (or the verdict's rank on the dataset), encoder against clusterer; "
             f"the darker, the better.{barred}</p>"]
    for view, (values, metric_direction, digits) in views.items():
        hidden = "" if view == chosen else " hidden"
        parts.append(f"<div class='by-metric' data-metric='{esc(view)}'{hidden}>")
        cells = summary[["encoder", "clusterer", "pipeline"]].assign(value=values.to_numpy())
        for (name, reducer), group in cells.groupby([dataset, summary["reducer"]],
                                                    sort=False):
            parts.append(f"<h3>{esc(name)} &middot; reducer {esc(str(reducer))}</h3>")
            fixed = (scale.get(group["pipeline"].iloc[0]) if view == VERDICT_VIEW
                     else None)
            parts.append(_heatmap(group, metric_direction, marks, digits, fixed))
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _transformed(summary: pd.DataFrame) -> bool:
    """Whether any pipeline transforms its images: without, "none" names no pipeline."""
    return "transforms" in summary and bool(
        (summary["transforms"].fillna("none").astype(str) != "none").any())


def _heatmap(cells: pd.DataFrame, metric_direction: str, marks: dict[str, Assessment],
             digits: int = 3, scale: tuple[float, float] | None = None) -> str:
    """One table of ``cells`` (encoder, clusterer, pipeline, value), in their order; the
    darker a cell the better its value (``metric_direction``) between the worst and the
    best of the pipelines the verdict (``marks``) does not bar, or within ``scale``."""
    table = cells.pivot_table(index="encoder", columns="clusterer", values="value",
                              aggfunc="mean", sort=False, dropna=False)
    names = cells.drop_duplicates(["encoder", "clusterer"]).set_index(
        ["encoder", "clusterer"])["pipeline"]

    def barred(name) -> bool:
        return name in marks and marks[name].barred

    shaded = [v for v, n in zip(cells["value"], cells["pipeline"], strict=True)
              if np.isfinite(v) and not barred(n)]
    low, high = scale or ((min(shaded), max(shaded)) if shaded else (0.0, 1.0))
    head = "<th class='text'>encoder \\ clusterer</th>" + "".join(
        f"<th class='text'>{esc(str(c))}</th>" for c in table.columns)
    rows = []
    for encoder, row in table.iterrows():
        parts = [f"<th class='text'>{esc(str(encoder))}</th>"]
        for clusterer, value in row.items():
            name = names.get((encoder, clusterer))
            about = "" if name is None else f" data-pipeline='{esc(str(name))}'"
            if name is not None and barred(name):
                about += f" class='barred' title='{esc(verdict_note(marks[name]))}'"
            if not np.isfinite(value):
                parts.append(f"<td{about}>n/a</td>")
                continue
            style = ""
            if not barred(name):
                share = (value - low) / (high - low) if high > low else None
                # A value alone on its scale is the best of it, whichever the direction.
                strength = (1.0 if share is None else
                            share if metric_direction == "higher" else 1 - share)
                style = f" style='{_shade(strength)}'"
            parts.append(f"<td{about}{style}>{value:.{digits}f}</td>")
        rows.append("<tr>" + "".join(parts) + "</tr>")
    return (f"<table class='heatmap'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _shade(strength: float) -> str:
    """A blue from pale (0) to dark (1), with text that stays readable on it."""
    pale, dark = np.array([239, 243, 255]), np.array([8, 69, 148])
    r, g, b = (pale + (dark - pale) * float(strength)).round().astype(int)
    return f"background:rgb({r},{g},{b});color:{'#fff' if strength > 0.55 else '#111'}"


def _ranking(summary: pd.DataFrame, directions: dict[str, str], chosen: str,
             verdicts: list[DatasetVerdict], marks: dict[str, Assessment]) -> str:
    """Average rank of each pipeline over the datasets, Friedman's test of whether the
    ranks differ at all, and Nemenyi's critical difference between two of them: first by
    the verdict's ranks (``verdicts``, ``marks``: full pipeline name -> its assessment)
    when there is a verdict, then by each comparable metric of ``directions`` (metric ->
    direction). Empty with fewer than two datasets: one dataset has no ranks to average."""
    datasets = len(verdicts) if verdicts else summary["dataset"].astype(str).nunique()
    if datasets < 2:
        return ""
    roles = [r for r in PIPELINE_ROLES if r in summary
             and (r != "transforms" or _transformed(summary))]
    pipeline = summary[roles].astype(str).agg(" / ".join, axis=1)
    parts = ["<section id='ranking'><h2>Ranking across datasets</h2><p>Pipelines ranked on "
             "each dataset by the chosen metric, or by the verdict (1 = best), ranks averaged "
             "over datasets; Friedman's test asks whether any pipeline ranks differently "
             "from the others, and in the critical-difference diagram (Nemenyi, &alpha; = "
             "0.05) pipelines joined by a bar are not significantly different "
             "(Dem&scaron;ar 2006).</p>"]
    if verdicts:
        # Where the verdict bars a pipeline it ranks it below every pipeline it does not:
        # the bar is in its ranks, and named beside them.
        by_pipeline: dict[str, list[Assessment]] = {}
        for a in (a for v in verdicts for a in v.ranking):
            by_pipeline.setdefault(a.pipeline, []).append(a)
        table = verdict_ranks(verdicts)
        parts.append(_ranks(VERDICT_VIEW, table, False, chosen,
                            _bars(by_pipeline, len(verdicts))))
    for metric, metric_direction in directions.items():
        by_pipeline = {}
        for key, name in zip(pipeline, summary["pipeline"], strict=True):
            if name in marks:
                by_pipeline.setdefault(key, []).append(marks[name])
        table = pd.DataFrame({"pipeline": pipeline, "dataset": summary["dataset"].astype(str),
                              "score": summary[f"{metric} mean"]}).pivot_table(
            index="pipeline", columns="dataset", values="score", aggfunc="mean", sort=False)
        parts.append(_ranks(metric, table, metric_direction == "higher", chosen,
                            _bars(by_pipeline, table.shape[1])))
    parts.append("</section>")
    return "".join(parts)


def _bars(by_pipeline: dict[str, list[Assessment]], datasets: int) -> dict[str, list[str]]:
    """Pipeline -> where and why the verdict bars it (one line per dataset), for the
    pipelines it bars on any of the ``datasets``."""
    notes = {}
    for pipeline, found in by_pipeline.items():
        barred = [f"{a.dataset}: {a.reason or ', '.join(a.flags)}" for a in found if a.barred]
        if barred:
            notes[pipeline] = [f"barred on {len(barred)} of {datasets} datasets", *barred]
    return notes


def _ranks(view: str, scores_table: pd.DataFrame, higher_is_better: bool, chosen: str,
           barred: dict[str, list[str]]) -> str:
    """One view of the ranking: pipelines (rows of ``scores_table``) ranked on each dataset
    (its columns), those of ``barred`` (``_bars``) marked."""
    hidden = "" if view == chosen else " hidden"
    parts = [f"<div class='by-metric' data-metric='{esc(view)}'{hidden}>"]
    if scores_table.empty or scores_table.notna().all(axis=0).sum() == 0:
        parts.append("<p>No dataset where every pipeline has this metric.</p></div>")
        return "".join(parts)
    # Of pipelines with equal average ranks, those barred on fewer datasets come first.
    scores_table = scores_table.loc[sorted(scores_table.index,
                                           key=lambda p: len(barred.get(str(p), [])))]
    notes = {pipeline: "; ".join(lines) for pipeline, lines in barred.items()}
    ranking = compare_pipelines(scores_table, higher_is_better)
    friedman = (f"Friedman &chi;&sup2; = {ranking.friedman_statistic:.2f}, "
                f"p = {ranking.friedman_p:.3g}"
                if is_number(ranking.friedman_statistic) else "Friedman test undefined")
    cd = (f"critical difference {ranking.critical_difference:.2f}"
          if is_number(ranking.critical_difference) else "no critical difference")
    reason = f" ({esc(ranking.reason)})" if ranking.reason else ""
    parts.append(f"<p>{ranking.n_pipelines} pipelines on {ranking.n_datasets} dataset(s): "
                 f"{friedman}; {cd}{reason}.</p>")
    parts.append(f"<div class='cd'>{critical_difference_svg(ranking, notes)}</div>")
    rows = []
    for name, rank in ranking.ranks.items():
        note = notes.get(str(name))
        mark = ("<td class='text'></td>" if note is None else
                f"<td class='text'><span class='verdict-mark barred' title='{esc(note)}'>"
                "barred</span></td>")
        rows.append(f"<tr{'' if note is None else ' class=barred'}><td class='text'>"
                    f"{esc(str(name))}</td><td>{rank:.2f}</td>{mark}</tr>")
    parts.append("<table><thead><tr><th class='text'>pipeline</th><th>average rank</th>"
                 f"<th class='text'>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody>"
                 "</table></div>")
    return "".join(parts)


def _explorer(data: ReportData, run_labels: pd.Series,
              run_marks: dict[str, Assessment]) -> str:
    """The explorer of the combinations of ``run_labels`` (run id -> label), in its order,
    opening on the first; those the verdict bars (``run_marks``: run id -> assessment)
    marked."""
    payload = explorer_data(data, run_labels)
    if not payload["runs"]:
        return ("<section id='explorer'><h2>Explore a combination</h2><p>No thumbnails were "
                "logged for these runs.</p></section>")
    options = []
    for position, run in enumerate(payload["runs"]):
        a = run_marks.get(run["id"])
        barred = a is not None and a.barred
        options.append(
            f"<option value='{esc(run['id'])}'{' selected' if position == 0 else ''}"
            + (f" class='barred' title='{esc(verdict_note(a))}'" if barred else "")
            + f">{esc(run['label'])}{' (barred)' if barred else ''}</option>")
    order = ("<p class='note'>In the verdict's order: the first is its choice on the first "
             "dataset.</p>" if run_marks else "")
    return (
        f"<section id='explorer'><h2>Explore a combination</h2>{order}"
        f"<p><select id='combination'>{''.join(options)}</select></p>"
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
