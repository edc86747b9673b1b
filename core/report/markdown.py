"""The report as Markdown: one summary table, for a README or a paper; in the verdict's
order, with its rank and what it bars, when the combinations carry its evidence."""

from __future__ import annotations

import pandas as pd

from clustergrid.report.formatting import mean_spread
from clustergrid.report.recommendation import in_verdict_order
from clustergrid.results import (
    ROLES,
    by_status,
    metric_columns,
    split_constant,
    summarize_over_seeds,
)
from clustergrid.verdict import BARRING, Assessment, assessments, recommend


def markdown_report(experiment: str, frame: pd.DataFrame) -> str:
    finished, failed = by_status(frame)
    lines = [f"# {_md(experiment)}", "",
             f"{len(finished)} combinations finished, {len(failed)} failed.", ""]
    if not finished.empty:
        verdicts = recommend(finished)
        marks = assessments(verdicts)
        summary = summarize_over_seeds(in_verdict_order(finished, verdicts))
        metrics = metric_columns(finished, evidence=False)
        components, constant = split_constant(summary, [r for r in ROLES if r in summary])
        if constant:
            lines += ["Every row: " + "; ".join(f"{k}: {_md(str(v))}" for k, v in
                                                 constant.items()) + ".", ""]
        header = [*components, *(["verdict"] if marks else []), "seeds", *metrics]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, row in summary.iterrows():
            cells = [_md(str(row[c])) for c in components]
            if marks:
                cells.append(_verdict_cell(marks.get(row["pipeline"])))
            cells.append(str(row["seeds"]))
            cells += [mean_spread(row[f"{m} mean"], row[f"{m} std"], "±") for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    for _, row in failed.iterrows():
        lines.append(f"- FAILED {_md(str(row['pipeline']))}: {_md(str(row.get('error', '')))}")
    return "\n".join(lines) + "\n"


def _verdict_cell(a: Assessment | None) -> str:
    """The verdict's rank, and the flags that bar the pipeline when some do."""
    if a is None:
        return ""
    barring = ", ".join(flag for flag in a.flags if flag in BARRING)
    return f"{a.rank} (barred: {_md(barring)})" if a.barred else str(a.rank)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
