"""The report's Recommendation section: the label-free verdict (``clustergrid.verdict``)
on each dataset, with the evidence behind each rank."""

from __future__ import annotations

import html

import pandas as pd

from clustergrid.verdict import BARRING, FLAGS, SCORE, DatasetVerdict, recommend

esc = html.escape


def recommendation_section(finished: pd.DataFrame) -> str:
    """The section, or an empty string when no combination carries verdict evidence."""
    verdicts = recommend(finished)
    if not verdicts:
        return ""
    parts = ["<section id='recommendation'><h2>Recommendation</h2>",
             "<p>Without labels: each pipeline's clusters are compared with what the same "
             "pipeline finds in structureless data (a Gaussian with the embedding's "
             "covariance), refitted on subsamples, and checked for degenerate solutions. "
             "A pipeline shows structure when its silhouette (noise counting as 0) beats "
             "its null significantly and no flag in bold bars it. Pipelines are ranked by "
             "structure shown, then unbarred, then by "
             f"<code>{SCORE}</code>, how much tighter its clusters are than on the null "
             "(the gap statistic). Labels, when the data have them, only grade the choice "
             "afterwards.</p>"]
    parts.extend(_dataset(verdict) for verdict in verdicts)
    raised = sorted({flag for v in verdicts for a in v.ranking for flag in a.flags})
    if raised:
        parts.append("<p class='note'>" + "<br>".join(
            f"<b>{esc(flag)}</b>: {esc(FLAGS[flag])}" for flag in raised) + "</p>")
    parts.append("</section>")
    return "".join(parts)


def _dataset(verdict: DatasetVerdict) -> str:
    if verdict.structure:
        headline = (f"<p class='verdict'>Recommended: <b>{esc(verdict.choice.pipeline)}</b>"
                    "</p>")
    else:
        headline = ("<p class='verdict none'><b>No pipeline shows structure beyond its null "
                    "reference</b>: the clusters below are what any clustering finds in "
                    "structureless data of this size and covariance.</p>")
    grade = ""
    if verdict.grade:
        g = verdict.grade
        grade = (f"<p class='note'>Against the labels, which the verdict never uses: "
                 f"{esc(g['metric'])} of the first choice {g['choice']:.3f}; best in the "
                 f"grid {g['best']:.3f} ({esc(g['best_pipeline'])}).</p>")
    rows = []
    for a in verdict.ranking:
        flags = ", ".join(f"<b>{esc(f)}</b>" if f in BARRING else esc(f) for f in a.flags)
        rows.append(
            f"<tr{' class=chosen' if a.rank == 1 and a.structure else ''}><td>{a.rank}</td>"
            f"<td class='text'>{esc(a.pipeline)}</td><td>{'yes' if a.structure else 'no'}</td>"
            f"<td>{_number(a.score, 3)}</td><td>{_number(a.excess, 1)}</td>"
            f"<td>{_number(a.p_value, 2, 'g')}</td><td>{_number(a.stability, 2)}</td>"
            f"<td>{_number(a.seed_stability, 2)}</td><td>{_number(a.coverage, 2)}</td>"
            f"<td>{_number(a.clusters, 1)}</td><td class='text'>{flags}</td></tr>")
    return (f"<h3>{esc(verdict.dataset)}</h3>{headline}{grade}<div class='scroll'><table>"
            "<thead><tr><th>rank</th><th class='text'>pipeline</th><th>structure</th>"
            f"<th title='higher is better'>{SCORE}</th>"
            "<th title='null standard deviations above the null mean'>excess (z)</th>"
            "<th title='one-sided, before the correction over pipelines'>p</th>"
            "<th title='mean clusterwise Jaccard under subsampling'>stability</th>"
            "<th title='ARI between seeds'>seed stability</th>"
            "<th title='share of items not called noise'>coverage</th><th>clusters</th>"
            f"<th class='text'>flags</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</div>")


def _number(value: float, digits: int, kind: str = "f") -> str:
    return "n/a" if value != value else f"{value:.{digits}{kind}}"
