"""The comparison report: one self-contained HTML file, or a Markdown summary table,
built from the MLflow runs of an experiment.

Built from the tracking store rather than in-memory state, so a report can be rebuilt at
any time, against a remote server too (``collect``); ``page`` writes the HTML and
``markdown`` the table for a README or paper.
"""

from __future__ import annotations

from pathlib import Path

from clustergrid.report.collect import collect
from clustergrid.report.markdown import markdown_report
from clustergrid.report.page import html_report

__all__ = ["collect", "html_report", "markdown_report", "write_report"]


def write_report(tracking_uri: str | None, experiment: str, path: Path,
                 fmt: str = "html") -> Path:
    """Write the report of ``experiment`` to ``path``, as ``html`` or ``markdown``."""
    if fmt == "markdown":
        from clustergrid.results import load_results

        text = markdown_report(experiment, load_results(tracking_uri, experiment,
                                                        include_failed=True))
    else:
        text = html_report(collect(tracking_uri, experiment))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
