"""The comparison report: one self-contained HTML file (or Markdown) built from MLflow runs.

Built from the tracking store rather than in-memory state, so a report can be rebuilt at
any time, against a remote server too. Every user-supplied string is escaped.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from clustergrid.results import (
    ROLES,
    load_results,
    metric_columns,
    split_constant,
    summarize_over_seeds,
)

#: metrics where a lower value is better; all others are higher-is-better
LOWER_IS_BETTER = {"davies_bouldin"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f0f0f0;cursor:pointer;user-select:none}
td.text,th.text{text-align:left}
td.best{font-weight:bold;background:#e5f5e0}
.failed td{background:#fde0dd}
"""

# Sort a table by the clicked header; numbers numerically, text alphabetically.
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var asc = th.dataset.order !== 'asc';
    th.dataset.order = asc ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def write_report(tracking_uri: str | None, experiment: str, path: Path,
                 fmt: str = "html") -> Path:
    frame = load_results(tracking_uri, experiment, include_failed=True)
    text = markdown_report(experiment, frame) if fmt == "markdown" else html_report(
        experiment, frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame.empty:
        return frame, frame
    return frame[frame["status"] == "FINISHED"], frame[frame["status"] == "FAILED"]


def html_report(experiment: str, frame: pd.DataFrame) -> str:
    finished, failed = _split(frame)
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{esc(experiment)} - clustergrid</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(experiment)}</h1>",
        f"<p>{len(finished)} combinations finished, {len(failed)} failed.</p>",
    ]
    if not finished.empty:
        summary = summarize_over_seeds(finished)
        parts.append("<h2>Leaderboard</h2><p>Mean &plusmn; standard deviation over seeds. "
                     "Click a column to sort; the best value of each metric is marked.</p>")
        parts.append(_html_table(summary, metric_columns(finished)))
    if not failed.empty:
        parts.append("<h2>Failures</h2><table><tr><th class='text'>pipeline</th>"
                     "<th class='text'>error</th></tr>")
        for _, row in failed.iterrows():
            parts.append(f"<tr class='failed'><td class='text'>{esc(str(row['pipeline']))}</td>"
                         f"<td class='text'>{esc(str(row.get('error', '')))}</td></tr>")
        parts.append("</table>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _html_table(summary: pd.DataFrame, metrics: list[str]) -> str:
    esc = html.escape
    components, constant = split_constant(summary, [r for r in ROLES if r in summary])
    best = {m: _best(summary[f"{m} mean"], m) for m in metrics}
    shared = "; ".join(f"{role}: {value}" for role, value in constant.items())
    head = "".join(f"<th class='text'>{esc(c)}</th>" for c in components)
    head += "<th>seeds</th>" + "".join(f"<th>{esc(m)}</th>" for m in metrics)
    rows = []
    for _, row in summary.iterrows():
        cells = [f"<td class='text' data-value='{esc(str(row[c]))}'>{esc(str(row[c]))}</td>"
                 for c in components]
        cells.append(f"<td data-value='{row['seeds']}'>{row['seeds']}</td>")
        for m in metrics:
            mean, std = row[f"{m} mean"], row[f"{m} std"]
            mark = " class='best'" if _is_number(mean) and mean == best[m] else ""
            cells.append(f"<td{mark} data-value='{mean}'>{_fmt(mean, std, '&plusmn;')}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<p>Every row: {esc(shared)}.</p>" if shared else ""
    return (f"{caption}<table class='sortable'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def markdown_report(experiment: str, frame: pd.DataFrame) -> str:
    finished, failed = _split(frame)
    lines = [f"# {experiment}", "",
             f"{len(finished)} combinations finished, {len(failed)} failed.", ""]
    if not finished.empty:
        summary = summarize_over_seeds(finished)
        metrics = metric_columns(finished)
        components, constant = split_constant(summary, [r for r in ROLES if r in summary])
        if constant:
            lines += ["Every row: " + "; ".join(f"{k}: {_md(str(v))}" for k, v in
                                                 constant.items()) + ".", ""]
        header = [*components, "seeds", *metrics]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, row in summary.iterrows():
            cells = [_md(str(row[c])) for c in components] + [str(row["seeds"])]
            cells += [_fmt(row[f"{m} mean"], row[f"{m} std"], "±") for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    for _, row in failed.iterrows():
        lines.append(f"- FAILED {_md(str(row['pipeline']))}: {_md(str(row.get('error', '')))}")
    return "\n".join(lines) + "\n"


def _best(values: pd.Series, metric: str) -> float:
    values = values.dropna()
    if values.empty:
        return math.nan
    return values.min() if metric in LOWER_IS_BETTER else values.max()


def _is_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _fmt(mean, std, plus_minus: str) -> str:
    if not _is_number(mean):
        return "n/a"
    # One seed, or a value shared by all seeds (stability): no spread to show.
    if not _is_number(std) or std == 0:
        return f"{mean:.3f}"
    return f"{mean:.3f} {plus_minus} {std:.3f}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
