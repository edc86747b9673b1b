"""The label-free verdict (``clustergrid.verdict``) as the report reads it: the
Recommendation section, with the evidence behind each rank, and the order and marks that
every other view of the report (leaderboard, heatmaps, ranking, explorer) takes from it,
so that the page names one best pipeline per dataset and never calls a barred one best.

Only ``recommend``'s ranking, ``assessments`` and each assessment's rank, flags, ``barred``
and ``reason`` are read here: the rule that ranks is the verdict's alone.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from clustergrid.results import pipeline_names
from clustergrid.verdict import (
    BARRING,
    SCORE,
    Assessment,
    DatasetVerdict,
    flag_text,
)

esc = html.escape


def recommendation_section(verdicts: list[DatasetVerdict]) -> str:
    """The section on ``verdicts`` (``verdict.recommend``'s), or an empty string when
    there are none (no combination carries verdict evidence)."""
    if not verdicts:
        return ""
    parts = ["<section id='recommendation'><h2>Recommendation</h2>",
             "<p>Without labels: each pipeline's clusters are compared with what the same "
             "pipeline finds in structureless data (a Gaussian with the embedding's "
             "covariance), refitted on subsamples and with other seeds, checked for "
             "degenerate solutions and for clusters that follow a nuisance (brightness, "
             "size, orientation, offset, background). A pipeline shows structure when its "
             "density-based validity or its silhouette beats its null significantly and no "
             "flag in bold bars it. Pipelines whose every cluster is density-separated come "
             "first, the finest first; then the larger gap. The order is the verdict's own "
             "(<code>clustergrid results --recommend</code> prints the same); labels, when "
             "the data have them, only grade its choice afterwards. Every other view of this "
             "report follows this order and marks the pipelines it bars.</p>"]
    parts.extend(_dataset(verdict) for verdict in verdicts)
    raised = sorted({flag for v in verdicts for a in v.ranking for flag in a.flags})
    if raised:
        parts.append("<p class='note'>" + "<br>".join(
            f"<b>{esc(flag)}</b>: {esc(flag_text(flag))}" for flag in raised) + "</p>")
    parts.append("</section>")
    return "".join(parts)


def _dataset(verdict: DatasetVerdict) -> str:
    shown = verdict.choice.structure and not verdict.choice.follows
    headline = (f"<p class='verdict{'' if shown else ' none'}'>"
                f"{esc(verdict.headline())}</p>")
    grade = ""
    if verdict.grade:
        g = verdict.grade
        top = next((a for a in verdict.ranking if a.pipeline == g["best_pipeline"]), None)
        grade = (f"<p class='note'>Against the labels, which the verdict never uses: "
                 f"{esc(g['metric'])} of the first choice {g['choice']:.3f}; highest in the "
                 f"grid {g['best']:.3f} ({esc(g['best_pipeline'])}{verdict_mark(top)}).</p>")
    rows = []
    for a in verdict.ranking:
        flags = ", ".join(f"<b>{esc(f)}</b>" if f in BARRING else esc(f) for f in a.flags)
        classes = " ".join(c for c, on in (("chosen", a.rank == 1 and a.structure),
                                           ("barred", a.barred)) if on)
        rows.append(
            f"<tr{f' class={classes!r}' if classes else ''}><td>{a.rank}</td>"
            f"<td class='text'>{esc(a.pipeline)}</td><td>{'yes' if a.structure else 'no'}</td>"
            f"<td>{_number(a.validity, 3)}</td><td>{_number(a.validity_p, 2, 'g')}</td>"
            f"<td>{_number(a.score, 3)}</td><td>{_number(a.p_value, 2, 'g')}</td>"
            f"<td>{_number(a.stability, 2)}</td>"
            f"<td>{_number(a.seed_stability, 2)}</td><td>{_number(a.coverage, 2)}</td>"
            f"<td>{_number(a.clusters, 1)}</td><td class='text'>{flags}</td>"
            f"<td class='text'>{esc(a.reason)}</td></tr>")
    return (f"<h3>{esc(verdict.dataset)}</h3>{headline}{grade}<div class='scroll'><table>"
            "<thead><tr><th>rank</th><th class='text'>pipeline</th><th>structure</th>"
            "<th title='density-based validity (DBCV), higher is better'>validity</th>"
            "<th title='its excess over the null, one-sided, before the correction'>p</th>"
            f"<th title='how much tighter than on the null'>{SCORE}</th>"
            "<th title='the silhouette excess over the null, one-sided, before the "
            "correction'>p (silhouette)</th>"
            "<th title='mean clusterwise Jaccard under subsampling'>stability</th>"
            "<th title='ARI between seeds'>seed stability</th>"
            "<th title='share of items not called noise'>coverage</th><th>clusters</th>"
            "<th class='text'>flags</th><th class='text'>why</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _number(value: float, digits: int, kind: str = "f") -> str:
    return "n/a" if value != value else f"{value:.{digits}{kind}}"


# The verdict's order and marks, for the other views -------------------------------------

def verdict_positions(verdicts: list[DatasetVerdict]) -> dict[str, int]:
    """Full pipeline name (``Assessment.name``) -> its place in the verdict's order: the
    datasets as ``recommend`` lists them, each ranked best first."""
    return {a.name: position for position, a in
            enumerate(a for verdict in verdicts for a in verdict.ranking)}


def in_verdict_order(finished: pd.DataFrame, verdicts: list[DatasetVerdict]) -> pd.DataFrame:
    """The combinations of ``finished`` in the verdict's order, each pipeline's seeds in
    increasing order, so that its first row is the verdict's choice on the first dataset
    at its first seed. Unchanged without verdicts; a pipeline the verdict does not know
    comes last, in its own order."""
    if not verdicts or finished.empty:
        return finished
    position = pipeline_names(finished).map(verdict_positions(verdicts)).astype(float)
    seed = (pd.to_numeric(finished["param.seed"], errors="coerce") if "param.seed" in finished
            else pd.Series(0.0, index=finished.index))
    # lexsort is stable and sorts by its last key first.
    return finished.iloc[np.lexsort((seed.fillna(np.inf).to_numpy(),
                                     position.fillna(np.inf).to_numpy()))]


def verdict_note(a: Assessment) -> str:
    """Plain text on a pipeline's place in the verdict, for a mark's title: its reason
    when the verdict gives one, its rank and its flags with what each means."""
    parts = [a.reason] if a.reason else []
    parts.append(f"verdict rank {a.rank} on {a.dataset}")
    if a.barred and not a.reason:
        parts.append("barred: no structure is claimed for it")
    parts.extend(f"{flag}: {flag_text(flag)}" for flag in a.flags)
    return "; ".join(parts)


def verdict_mark(a: Assessment | None) -> str:
    """A badge for a pipeline the verdict bars ("barred") or recommends ("recommended":
    its choice on a dataset where it finds structure), titled with ``verdict_note``;
    empty otherwise."""
    if a is None:
        return ""
    if a.barred:
        return (f"<span class='verdict-mark barred' title='{esc(verdict_note(a))}'>barred"
                "</span>")
    if a.rank == 1 and a.structure:
        return (f"<span class='verdict-mark chosen' title='{esc(verdict_note(a))}'>"
                "recommended</span>")
    return ""


def verdict_ranks(verdicts: list[DatasetVerdict]) -> pd.DataFrame:
    """The verdict's rank of each pipeline (``Assessment.pipeline``, rows, in the order
    they first appear) on each dataset (columns), NaN where it was not run: the table
    ``ranking.compare_pipelines`` averages over datasets (lower is better)."""
    pipelines = list(dict.fromkeys(a.pipeline for v in verdicts for a in v.ranking))
    table = pd.DataFrame(float("nan"), index=pd.Index(pipelines, name="pipeline"),
                         columns=[v.dataset for v in verdicts])
    for verdict in verdicts:
        for a in verdict.ranking:
            table.loc[a.pipeline, verdict.dataset] = float(a.rank)
    return table
