"""Rank pipelines across datasets: average ranks, Friedman test, Nemenyi critical difference.

Follows Demšar (2006), "Statistical comparisons of classifiers over multiple data sets",
JMLR 7:1-30. Pipelines are ranked within each dataset (the blocks), and two pipelines whose
average ranks differ by less than the critical difference are not significantly different.
Ranks rather than raw scores are compared because a metric's scale differs between datasets.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: the Friedman test needs this many pipelines and datasets (Demšar, section 3.2.2)
MIN_FRIEDMAN_PIPELINES = 3
MIN_DATASETS = 2

# Text width in the SVG is estimated, not measured: no font metrics without a browser.
_CHAR_PX = 7
_FONT_PX = 13
_ROW_PX = 20
_BAR_GAP_PX = 9


@dataclass(frozen=True)
class Ranking:
    """Pipelines compared over the datasets where every pipeline has a score.

    `ranks` holds the mean rank per pipeline (1 = best), sorted ascending. The statistics
    are NaN when undefined and `reason` then says why; it is None when all are defined.
    """

    ranks: pd.Series
    n_datasets: int
    n_pipelines: int
    friedman_statistic: float
    friedman_p: float
    critical_difference: float
    alpha: float
    dropped_datasets: tuple[str, ...]
    reason: str | None = None

    def cliques(self) -> list[tuple[str, ...]]:
        """Groups of pipelines not significantly different: the bars of the CD diagram."""
        return cliques(self.ranks, self.critical_difference)


def nemenyi_q(n_pipelines: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test for `n_pipelines` (Demšar, table 5a)."""
    _check_alpha(alpha)
    if n_pipelines < 2:
        raise ValueError(f"the Nemenyi test compares at least 2 pipelines, got {n_pipelines}")
    # Demšar's table is the studentized range at infinite degrees of freedom, divided by
    # sqrt(2) because his CD formula uses the standard error of a difference of two ranks.
    return float(stats.studentized_range.ppf(1 - alpha, n_pipelines, np.inf) / math.sqrt(2))


def critical_difference(n_pipelines: int, n_datasets: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference q_alpha * sqrt(k (k+1) / (6 N)) between average ranks."""
    if n_datasets < 1:
        raise ValueError(f"the critical difference needs at least 1 dataset, got {n_datasets}")
    q = nemenyi_q(n_pipelines, alpha)
    return q * math.sqrt(n_pipelines * (n_pipelines + 1) / (6 * n_datasets))


def complete_datasets(scores: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Split `scores` into the datasets where every pipeline has a value, and the others."""
    _check_scores(scores)
    missing = scores.isna().any(axis=0)
    dropped = tuple(str(column) for column in scores.columns[missing])
    return scores.loc[:, ~missing], dropped


def average_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Mean rank per pipeline (1 = best, ties averaged) over complete datasets, ascending.

    `scores` has one row per pipeline and one column per dataset. Datasets where any
    pipeline is NaN are left out (see `complete_datasets`); with none left, ranks are NaN.
    """
    complete, _ = complete_datasets(scores)
    values = complete.to_numpy(dtype=float)
    # rankdata gives rank 1 to the smallest value, so negate when larger is better.
    per_dataset = stats.rankdata(-values if higher_is_better else values, axis=0)
    index = pd.Index([str(label) for label in scores.index], name=scores.index.name)
    if values.shape[1] == 0:
        return pd.Series(np.nan, index=index, name="average_rank")
    mean = pd.Series(per_dataset.mean(axis=1), index=index, name="average_rank")
    # A stable sort keeps the caller's order among pipelines with equal mean rank.
    return mean.sort_values(kind="stable")


def compare_pipelines(
    scores: pd.DataFrame, higher_is_better: bool = True, alpha: float = 0.05
) -> Ranking:
    """Average ranks, Friedman test and Nemenyi critical difference of `scores`.

    Never raises for too few pipelines or datasets: the undefined statistics are NaN and
    `Ranking.reason` explains. Raises ValueError for duplicate pipeline labels.
    """
    _check_alpha(alpha)
    complete, dropped = complete_datasets(scores)
    ranks = average_ranks(scores, higher_is_better)
    n_pipelines, n_datasets = complete.shape
    reasons: list[str] = []

    statistic = p_value = math.nan
    if n_pipelines < MIN_FRIEDMAN_PIPELINES:
        reasons.append(
            f"the Friedman test needs at least {MIN_FRIEDMAN_PIPELINES} pipelines, "
            f"got {n_pipelines}"
        )
    elif n_datasets < MIN_DATASETS:
        reasons.append(
            f"the Friedman test needs at least {MIN_DATASETS} datasets where every pipeline "
            f"has a score, got {n_datasets}"
        )
    elif _all_tied(complete):
        # scipy divides by zero here; the test says nothing when no pipeline differs.
        reasons.append("the Friedman test is undefined: all pipelines tie on every dataset")
    else:
        result = stats.friedmanchisquare(*complete.to_numpy(dtype=float))
        statistic, p_value = float(result.statistic), float(result.pvalue)

    cd = math.nan
    if n_pipelines < 2:
        reasons.append(f"the critical difference needs at least 2 pipelines, got {n_pipelines}")
    elif n_datasets < MIN_DATASETS:
        # One dataset gives one ordering, not evidence about which differences are real.
        reasons.append(
            f"the critical difference needs at least {MIN_DATASETS} datasets where every "
            f"pipeline has a score, got {n_datasets}"
        )
    else:
        cd = critical_difference(n_pipelines, n_datasets, alpha)

    return Ranking(
        ranks=ranks,
        n_datasets=n_datasets,
        n_pipelines=n_pipelines,
        friedman_statistic=statistic,
        friedman_p=p_value,
        critical_difference=cd,
        alpha=alpha,
        dropped_datasets=dropped,
        reason="; ".join(reasons) or None,
    )


def cliques(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of pipelines, in rank order, whose rank range is at most `cd`.

    A run contained in another is left out, and so is a lone pipeline: it has no bar.
    An undefined (NaN) `cd` gives no cliques.
    """
    if math.isnan(cd) or ranks.isna().any():
        return []
    ordered = ranks.sort_values(kind="stable")
    names = [str(label) for label in ordered.index]
    values = ordered.to_numpy(dtype=float)
    groups: list[tuple[str, ...]] = []
    previous_end = -1
    for start in range(len(values)):
        end = start
        while end + 1 < len(values) and values[end + 1] - values[start] <= cd:
            end += 1
        # Runs are intervals whose ends never move left, so a run is inside the previous
        # one exactly when it ends at the same pipeline.
        if end > previous_end and end > start:
            groups.append(tuple(names[start : end + 1]))
        previous_end = max(previous_end, end)
    return groups


def critical_difference_svg(ranking: Ranking, marked: Mapping[str, str] | None = None) -> str:
    """The critical-difference diagram of `ranking` as a self-contained inline SVG.

    A rank axis from 1 to k, each pipeline's name joined to its average rank (best half on
    the left), a thick bar under each clique and a "CD" scale bar on top. When the critical
    difference is undefined the ranks are still drawn, with no CD scale and no bars; the
    caller shows `ranking.reason`. `marked` (pipeline -> a note) gives those pipelines'
    labels the class "marked" and the note in their title. Raises ValueError when no
    dataset is complete.
    """
    if ranking.n_datasets == 0 or ranking.ranks.isna().any():
        raise ValueError("no dataset has a score for every pipeline: there are no ranks to draw")

    names = [str(label) for label in ranking.ranks.index]
    values = [float(value) for value in ranking.ranks]
    k = len(names)
    n_left = (k + 1) // 2
    left, right = list(range(n_left)), list(range(n_left, k))
    bars = ranking.cliques()
    cd = ranking.critical_difference

    left_text_px = max((len(names[i]) for i in left), default=0) * _CHAR_PX
    right_text_px = max((len(names[i]) for i in right), default=0) * _CHAR_PX
    axis_left = left_text_px + 30
    axis_px = max(240, 60 * (k - 1))
    axis_y = 55

    def x_of(rank: float) -> float:
        return axis_left + (rank - 1) / max(k - 1, 1) * axis_px

    cd_right = x_of(1 + cd) if not math.isnan(cd) else axis_left
    width = max(axis_left + axis_px, cd_right) + right_text_px + 30
    first_row_y = axis_y + 20 + len(bars) * _BAR_GAP_PX + 10
    height = first_row_y + max(len(left), len(right)) * _ROW_PX + 5

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" font-family="sans-serif" '
        f'font-size="{_FONT_PX}" aria-label="Critical difference diagram of average ranks">',
        f'<line x1="{axis_left}" y1="{axis_y}" x2="{x_of(k):.1f}" y2="{axis_y}" stroke="black"/>',
    ]
    for tick in range(1, k + 1):
        x = x_of(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{axis_y - 6}" x2="{x:.1f}" y2="{axis_y}" stroke="black"/>'
            f'<text class="tick" x="{x:.1f}" y="{axis_y - 10}" text-anchor="middle">{tick}</text>'
        )
    if not math.isnan(cd):
        parts.append(
            f'<g class="cd-scale"><line x1="{axis_left}" y1="20" x2="{cd_right:.1f}" y2="20" '
            'stroke="black" stroke-width="2"/>'
            f'<line x1="{axis_left}" y1="15" x2="{axis_left}" y2="25" stroke="black"/>'
            f'<line x1="{cd_right:.1f}" y1="15" x2="{cd_right:.1f}" y2="25" stroke="black"/>'
            f'<text x="{(axis_left + cd_right) / 2:.1f}" y="12" text-anchor="middle">'
            f"CD = {cd:.2f}</text></g>"
        )

    # The pipelines nearest each end take the top rows, so that connector lines never cross.
    sides = [(left, axis_left - 10, "end"), (right[::-1], x_of(k) + 10, "start")]
    for side, x_text, anchor in sides:
        for row, i in enumerate(side):
            at = (x_text, first_row_y + row * _ROW_PX)
            parts.append(_name_label(names[i], values[i], (x_of(values[i]), axis_y), at, anchor,
                                     (marked or {}).get(names[i])))

    rank_of = dict(zip(names, values, strict=True))
    for row, group in enumerate(bars):
        y = axis_y + 15 + row * _BAR_GAP_PX
        x1, x2 = x_of(rank_of[group[0]]) - 4, x_of(rank_of[group[-1]]) + 4
        parts.append(
            f'<line class="clique" x1="{x1:.1f}" y1="{y}" x2="{x2:.1f}" y2="{y}" '
            'stroke="black" stroke-width="4" stroke-linecap="round"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _name_label(
    name: str, rank: float, on_axis: tuple[float, float], at: tuple[float, float], anchor: str,
    note: str | None = None,
) -> str:
    """One pipeline: a line from its rank on the axis down and across to its escaped name;
    with a `note`, marked and the note in its title."""
    safe = html.escape(name)
    (x_rank, axis_y), (x_text, y) = on_axis, at
    mark = "" if note is None else " marked"
    title = f"{safe}: average rank {rank:.2f}" + ("" if note is None else
                                                   f"; {html.escape(note)}")
    return (
        f'<g class="pipeline-label{mark}"><title>{title}</title>'
        f'<polyline points="{x_rank:.1f},{axis_y} {x_rank:.1f},{y} {x_text:.1f},{y}" '
        'fill="none" stroke="#555"/>'
        f'<text class="pipeline" x="{x_text + (-3 if anchor == "end" else 3):.1f}" '
        f'y="{y + 4}" text-anchor="{anchor}">{safe}</text></g>'
    )


def _all_tied(complete: pd.DataFrame) -> bool:
    return bool((complete.nunique(axis=0) <= 1).all())


def _check_scores(scores: pd.DataFrame) -> None:
    duplicated = scores.index[scores.index.duplicated()].unique()
    if len(duplicated):
        # Merging two pipelines under one label would silently corrupt the comparison.
        raise ValueError(f"duplicate pipeline labels in scores: {list(map(str, duplicated))}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
