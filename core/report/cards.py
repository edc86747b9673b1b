"""The report's cluster cards: beside the explorer's gallery, what sets each cluster of
the combination shown apart (``clustergrid.cards``), and a warning, there and in the
summary, when a clustering mostly follows a nuisance (brightness, size, orientation).

Rendered here as escaped HTML, one block per combination; a few lines of script show the
block of the combination the explorer shows.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from clustergrid.cards import nuisance_sentence
from clustergrid.errors import listing
from clustergrid.report.collect import ReportData

esc = html.escape
#: descriptors named per cluster at most
SHOWN_APART = 4

# Shows the cards of the combination chosen in the explorer (its select, or a leaderboard
# row, which the explorer's own script selects).
_TOGGLE = """<script>(function () {
  var select = document.getElementById('combination');
  if (!select) { return; }
  function show(id) {
    document.querySelectorAll('.cluster-cards').forEach(function (div) {
      div.hidden = div.dataset.run !== id;
    });
  }
  select.addEventListener('change', function () { show(select.value); });
  document.querySelectorAll('#leaderboard-table tbody tr').forEach(function (row) {
    row.addEventListener('click', function () { show(row.dataset.run); });
  });
})();</script>"""


def cards_panel(data: ReportData, runs: list[dict[str, Any]]) -> str:
    """The cards of every combination in ``runs`` (the explorer's, by ``id``), the first
    shown; empty when none was logged."""
    blocks = []
    for position, run in enumerate(runs):
        files = data.files.get(run["id"])
        logged = files.cards if files is not None else None
        if logged is None:
            continue
        hidden = "" if position == 0 else " hidden"
        blocks.append(f"<div class='cluster-cards' data-run='{esc(run['id'])}'{hidden}>"
                      f"{combination_cards(logged)}</div>")
    if not blocks:
        return ""
    return ("<h3>Cluster cards</h3><p class='note'>What sets each cluster apart: the "
            "descriptors of its images (measured after the transforms) against the rest, "
            "by the Mann-Whitney U test, Holm-corrected; Cliff's delta from -1 to +1. "
            "Typical members are nearest the cluster's centre in the space it was found "
            "in.</p>" + "".join(blocks) + _TOGGLE)


def combination_cards(logged: dict[str, Any]) -> str:
    """One combination's cards: its nuisance warning, then a row per cluster."""
    warning = nuisance_sentence(_numbers(logged.get("nuisance") or {}))
    rows = []
    for card in logged.get("clusters", []):
        name = "noise" if card["cluster"] == -1 else f"cluster {card['cluster']}"
        apart = card.get("apart") or []
        shown = "; ".join(apart[:SHOWN_APART]) + (
            f"; and {len(apart) - SHOWN_APART} more" if len(apart) > SHOWN_APART else "")
        classes = card.get("classes")
        mix = (", ".join(f"{label}: {count}" for label, count in classes.items())
               if classes else "")
        rows.append(f"<tr><td class='text'>{esc(name)}</td><td>{card['size']} "
                    f"({100 * card['fraction']:.0f}%)</td>"
                    f"<td class='text'>{esc(shown) or 'nothing measured'}</td>"
                    f"<td class='text'>{esc(mix)}</td>"
                    f"<td class='text'>{esc(', '.join(map(str, card.get('typical', []))))}</td>"
                    f"<td class='text'>{esc(', '.join(map(str, card.get('atypical', []))))}"
                    "</td></tr>")
    head = ("<tr><th class='text'>cluster</th><th>size</th><th class='text'>sets it apart"
            "</th><th class='text'>classes</th><th class='text'>most typical</th>"
            "<th class='text'>least typical</th></tr>")
    note = f"<p><b>Warning:</b> {esc(warning)}</p>" if warning else ""
    return f"{note}<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def nuisance_summary(finished: pd.DataFrame) -> str:
    """A line for the report's summary naming the combinations whose clusters mostly
    follow a nuisance (``nuisance.flag``); empty when none does."""
    if "nuisance.flag" not in finished:
        return ""
    flagged = finished[finished["nuisance.flag"] == 1]
    if flagged.empty:
        return ""
    names = [str(p) for p in flagged["pipeline"]]
    return (f"<p><b>Warning:</b> {len(names)} of {len(finished)} combinations have "
            "clusters that mostly follow brightness, apparent size or orientation rather "
            f"than the classes or shapes (see their cluster cards): "
            f"{esc(listing(names, 3, '; '))}.</p>")


def _numbers(check: dict[str, Any]) -> dict[str, Any]:
    """The logged check with nulls (NaN in JSON) back as NaN."""
    return {key: float("nan") if value is None else value for key, value in check.items()}
